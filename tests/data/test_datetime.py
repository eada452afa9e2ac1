"""A datetime input: its calendar parts train an MLP, export, predict without torch, explain and drift."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import seekforge
from seekforge.core.errors import DataError
from seekforge.data import Preprocessor
from seekforge.data.config import FeaturesConfig


def _visits(rows: int = 240, seed: int = 0) -> pd.DataFrame:
    """Shop visits: buyers come at weekends; the time is ISO text in several zones, a few missing."""
    rng = np.random.default_rng(seed)
    start = np.datetime64("2024-01-01T00:00")
    minutes = rng.integers(0, 60 * 24 * 120, size=rows)
    times = [str(start + np.timedelta64(int(m), "m")) + "Z" for m in minutes]
    weekend = [pd.Timestamp(t).day_of_week >= 5 for t in times]
    spend = rng.normal(size=rows).round(3)
    label = np.where(np.array(weekend) ^ (rng.random(rows) < 0.05), "buy", "look")
    frame = pd.DataFrame({"when": times, "spend": spend, "label": label})
    frame.loc[[3, 10], "when"] = None
    return frame


def test_a_datetime_feeds_its_calendar_parts_and_the_whole_chain_reads_them(tmp_path: Path) -> None:
    from seekforge.explain import explain
    from seekforge.export import export_package
    from seekforge.runtime import load as load_runtime

    _visits().to_csv(tmp_path / "visits.csv", index=False)
    recipe = {
        "name": "visits",
        "seed": 0,
        "data": {"source": str(tmp_path / "visits.csv"), "split": {"train": 0.7, "validation": 0.15, "test": 0.15}},
        "features": {
            "inputs": [{"name": "when", "type": "datetime", "parts": ["day_of_week", "weekend", "elapsed"]},
                       {"name": "spend", "type": "numeric"}],
            "output": {"name": "label", "type": "binary"},
        },
        "model": {"type": "mlp", "hidden": [16]},
        "train": {"epochs": 30, "batch_size": 16, "lr": 0.01},
    }  # fmt: skip
    result = seekforge.run(recipe, runs_dir=tmp_path / "runs")
    assert result.metrics["accuracy"] >= 0.85  # the weekend decides, and only the time tells it
    package = result.package
    pre = seekforge.load(package, backend="torch").preprocessor
    assert pre.numeric_columns() == ["spend", "when.day_of_week_sin", "when.day_of_week_cos", "when.weekend",
                                     "when.elapsed"]  # fmt: skip
    exported = export_package(package)
    assert exported.parity.passed and exported.record["inputs"] == "raw"
    onnx = pytest.importorskip("onnx")
    graph = onnx.shape_inference.infer_shapes(onnx.load(str(exported.path)), strict_mode=True).graph
    shapes = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    assert shapes == {"when": ["batch", 4], "spend": ["batch"]}  # the parts, encoded; the number, raw
    rows = [{"when": "2024-06-01T12:00:00+02:00", "spend": 0.1}, {"when": 1717405200, "spend": 0.1}]  # Sat, Mon
    assert load_runtime(package).predict(rows)["prediction"] == ["buy", "look"]
    found = explain(package, _visits(40, seed=1), rows=5, background=20, faithfulness=False)
    top = found.importance()[0][0]
    assert top.startswith("when.") and list(found.extras["raw"].columns) == pre.numeric_columns()


def test_a_datetime_that_is_no_time_is_refused_with_its_row() -> None:
    features = FeaturesConfig.model_validate({
        "inputs": [{"name": "when", "type": "datetime"}], "output": {"name": "y", "type": "binary"}})  # fmt: skip
    frame = pd.DataFrame({"when": ["2024-01-01", "next tuesday", None], "y": ["a", "b", "a"]})
    with pytest.raises(DataError, match="data row 2: datetime column 'when' holds 'next tuesday'"):
        Preprocessor(features).fit(frame)
    with pytest.raises(DataError, match="the datetime input 'when' is empty in every row"):
        Preprocessor(features).fit(frame.assign(when=None))
    with pytest.raises(ValueError, match="parts lists a part twice"):
        FeaturesConfig.model_validate({"inputs": [{"name": "when", "type": "datetime", "parts": ["hour", "hour"]}],
                                       "output": {"name": "y", "type": "binary"}})  # fmt: skip
