from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seekforge.core.errors import ConfigError, DataError
from seekforge.data._balance import balance_frame
from seekforge.data.clean_config import BalanceConfig
from seekforge.data.quality import balance


def skewed(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    """About 10% 'rare' rows; a number, a count, a category and a flag."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "x": rng.normal(size=rows),
            "count": rng.integers(0, 50, rows),
            "city": rng.choice(["oslo", "rome", "lima"], rows),
            "member": rng.choice([True, False], rows),
            "y": np.where(rng.random(rows) < 0.1, "rare", "common"),
        }
    )


@pytest.mark.parametrize(
    ("method", "sampler"),
    [("random_over", "RandomOverSampler"), ("smote", "SMOTENC"), ("smotenc", "SMOTENC")],
)
def test_over_sampling_lifts_small_classes_and_keeps_the_input_rows_first(method: str, sampler: str) -> None:
    frame = skewed()
    result = balance_frame(frame, "y", BalanceConfig(method=method), seed=3)
    out, report = result.frame, result.report
    counts = out["y"].value_counts()
    assert counts["rare"] == counts["common"] == (frame["y"] == "common").sum()
    assert report["sampler"] == sampler and report["rows_added"] == len(out) - len(frame)
    pd.testing.assert_frame_equal(out.iloc[: len(frame)], frame)
    added = out.iloc[len(frame) :]
    assert (added["y"] == "rare").all()
    assert out.dtypes.to_dict() == frame.dtypes.to_dict()  # counts stay integers, flags booleans
    assert set(added["city"]) <= set(frame["city"]) and added["x"].between(frame["x"].min(), frame["x"].max()).all()
    again = balance_frame(frame, "y", BalanceConfig(method=method), seed=3).frame
    pd.testing.assert_frame_equal(out, again)  # the seed fixes every draw
    assert not balance_frame(frame, "y", BalanceConfig(method=method), seed=4).frame.equals(out)


def test_smote_interpolates_between_neighbours_of_a_class() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"a": np.r_[rng.normal(0, 1, 200), rng.normal(10, 0.1, 20)], "y": ["big"] * 200 + ["small"] * 20}
    )
    out = balance_frame(frame, "y", BalanceConfig(method="smote", ratio=0.5), seed=0)
    assert out.report["sampler"] == "SMOTE" and out.report["classes_after"] == {"big": 200, "small": 100}
    made = out.frame.iloc[len(frame) :]["a"]
    assert made.between(frame["a"][200:].min(), frame["a"][200:].max()).all()  # within the small class's span


def test_all_categories_use_smoten() -> None:
    frame = skewed()[["city", "member", "y"]]
    assert balance_frame(frame, "y", BalanceConfig(method="smote")).report["sampler"] == "SMOTEN"


def test_under_sampling_keeps_rows_in_their_order() -> None:
    frame = skewed(400)
    out = balance_frame(frame, "y", BalanceConfig(method="random_under", ratio=0.5), seed=1).frame
    rare = (frame["y"] == "rare").sum()
    assert out["y"].value_counts().to_dict() == {"common": 2 * rare, "rare": rare}
    merged = frame.reset_index().merge(out, on=list(frame.columns))
    assert merged["index"].is_monotonic_increasing


def test_class_weights_leave_rows_alone() -> None:
    frame = skewed()
    result = balance_frame(frame, "y", BalanceConfig(method="class_weights"))
    pd.testing.assert_frame_equal(result.frame, frame)
    counts = frame["y"].value_counts()
    weights = result.report["class_weights"]
    assert weights["rare"] == pytest.approx(len(frame) / (2 * counts["rare"]), rel=1e-5)
    assert weights["rare"] * counts["rare"] == pytest.approx(weights["common"] * counts["common"], rel=1e-4)


def test_what_cannot_be_balanced_is_named() -> None:
    frame = skewed()
    text = frame.assign(note=[f"a fairly long free text comment number {i}" for i in range(len(frame))])
    cases = [
        (frame, "target", BalanceConfig(), "the label column 'target' does not exist"),
        (frame, "x", BalanceConfig(), "a regression target"),
        (frame.assign(y="one"), "y", BalanceConfig(), "single class"),
        (text, "y", BalanceConfig(method="smote"), r"cannot make up note \(text\)"),
        (
            frame.assign(x=frame["x"].where(frame.index % 7 > 0)),
            "y",
            BalanceConfig(method="smote"),
            r"x \(43 missing\)",
        ),
        (frame.assign(y=["rare"] + ["common"] * (len(frame) - 1)), "y", BalanceConfig(method="smote"), "single row"),
        (frame.assign(y=frame["y"].where(frame.index > 0)), "y", BalanceConfig(), "1 rows have no 'y'"),
    ]
    for data, label, config, message in cases:
        with pytest.raises(DataError, match=message):
            balance_frame(data, label, config)
    # random over-sampling copies rows, so it takes any column
    assert balance_frame(text, "y", BalanceConfig(method="random_over")).report["rows_added"] > 0


def test_balance_writes_a_folder_with_schema_and_report(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    skewed().to_csv(source, index=False)
    before = source.read_bytes()
    result = balance(source, tmp_path / "out", label="y", method="smote", ratio=0.5)
    assert source.read_bytes() == before
    assert result.data.name == "data.csv"
    written = json.loads((tmp_path / "out" / "balance.json").read_text())
    common = written["classes_before"]["common"]
    assert written["classes_after"]["rare"] == -(-common // 2) and written["sampler"] == "SMOTENC"
    schema = json.loads((tmp_path / "out" / "schema.json").read_text())
    assert schema["rows"] == len(pd.read_csv(result.data)) and schema["columns"]["city"]["type"] == "category"
    with pytest.raises(ConfigError, match="already exists"):
        balance(source, tmp_path / "out", label="y")
    with pytest.raises(ConfigError, match="no label column"):
        balance(source, tmp_path / "other")
    with pytest.raises(ConfigError, match="method"):
        balance(source, tmp_path / "other", label="y", method="smoothly")
    assert not (tmp_path / "other").exists()


def test_a_categorical_label_with_unused_categories() -> None:
    frame = skewed()
    frame["y"] = pd.Categorical(frame["y"], categories=["common", "rare", "never"])
    for method in ("random_under", "class_weights", "smote", "random_over"):
        report = balance_frame(frame, "y", BalanceConfig(method=method)).report
        assert set(report["classes_after"]) == {"common", "rare"}, method
