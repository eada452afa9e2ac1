from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import seekforge
from seekforge.core.errors import ConfigError
from seekforge.core.package import read_manifest
from tests.conftest import image_folder_recipe, make_tabular, tabular_recipe, text_recipe

PACKAGE_FILES = {
    "recipe.yaml",
    "preprocessor.json",
    "model.json",
    "model.safetensors",
    "reference.json",
    "report.html",
    "model_card.md",
    "samples.safetensors",
    "calibration.safetensors",
}


def test_tabular_run_writes_a_complete_package(tmp_path: Path, tabular_csv: Path) -> None:
    result = seekforge.run(tabular_recipe(str(tabular_csv), epochs=8), runs_dir=tmp_path / "runs")
    assert result.run_dir.parent == tmp_path / "runs" / "tiny"
    manifest = read_manifest(result.package)
    assert set(manifest["files"]) == PACKAGE_FILES | {"samples.json"}  # tabular: held-out rows, raw too
    raw = json.loads((result.package / "samples.json").read_text())
    assert list(raw) == ["x1", "x2", "city", "member"] and len(raw["x1"]) == manifest["data"]["rows"]["test"]
    assert manifest["task"] == "classification"
    assert manifest["output"]["classes"] == ["buy", "skip"]
    assert [i["name"] for i in manifest["inputs"]] == ["x1", "x2", "city", "member"]
    assert manifest["lineage"]["recipe_hash"] and manifest["lineage"]["data_hash"]
    assert result.metrics["accuracy"] > 0.8 and "roc_auc" in result.metrics
    assert manifest["metrics"]["test"] == result.metrics
    report = (result.package / "report.html").read_text()
    assert report.count("<svg") >= 3 and "Confusion matrix" in report and "<script" not in report
    reference = json.loads((result.package / "reference.json").read_text())
    assert reference["features"]["x1"]["type"] == "numeric" and "quantiles" in reference["features"]["x1"]
    assert reference["features"]["city"]["frequencies"]
    from seekforge.train import Tensors

    samples = Tensors.load(result.package / "samples.safetensors")
    assert len(samples) == 24 and set(samples.inputs) == {"numeric", "category"}  # the whole test split
    assert len(Tensors.load(result.package / "calibration.safetensors")) == 112  # every training row


def test_loaded_package_predicts_like_training(tmp_path: Path, tabular_csv: Path) -> None:
    result = seekforge.run(tabular_recipe(str(tabular_csv)), runs_dir=tmp_path)
    predictor = seekforge.load(result.package)
    frame = make_tabular(20, seed=3)
    from_frame = predictor.predict(frame)
    from_records = predictor.predict(frame.drop(columns=["label"]).to_dict(orient="records"))
    pd.testing.assert_frame_equal(from_frame, from_records)
    assert list(from_frame.columns) == ["prediction", "proba_buy", "proba_skip"]
    assert np.allclose(from_frame[["proba_buy", "proba_skip"]].sum(axis=1), 1.0)
    metrics = predictor.evaluate(frame)
    assert metrics["rows"] == 20 and 0 <= metrics["accuracy"] <= 1


def test_regression_run(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    frame["y"] = 3 * frame["a"] - frame["b"] + 10 + rng.normal(scale=0.1, size=200)
    frame.to_csv(tmp_path / "reg.csv", index=False)
    recipe = {
        "name": "reg",
        "data": {"source": str(tmp_path / "reg.csv")},
        "features": {
            "inputs": [{"name": "a", "type": "numeric"}, {"name": "b", "type": "numeric"}],
            "output": {"name": "y", "type": "numeric"},
        },
        "model": {"type": "mlp", "hidden": [16]},
        "train": {"epochs": 30, "batch_size": 16, "lr": 0.01},
    }
    result = seekforge.run(recipe, runs_dir=tmp_path / "runs")
    assert result.metrics["r2"] > 0.9
    assert "Residuals" in (result.package / "report.html").read_text()
    preds = seekforge.load(result.package).predict([{"a": 1.0, "b": 0.0}])
    assert preds["prediction"][0] == pytest.approx(13.0, abs=1.5)


def test_image_folder_run(tmp_path: Path) -> None:
    result = seekforge.run(image_folder_recipe(tmp_path), runs_dir=tmp_path / "runs")
    assert result.metrics["accuracy"] >= 0.75
    manifest = read_manifest(result.package)
    assert manifest["inputs"][0]["shape"] == [3, 8, 8]
    one = str(tmp_path / "img" / "light" / "0.png")
    assert seekforge.load(result.package).predict([{"image": one}])["prediction"][0] == "light"


def test_text_run_with_scratch_transformer(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    good = ["great tasty snack", "love this tea", "excellent coffee, great price", "tasty and fresh"]
    bad = ["stale and awful", "terrible taste", "never again, awful", "bland and stale coffee"]
    texts = [rng.choice(good) for _ in range(60)] + [rng.choice(bad) for _ in range(60)]
    labels = ["great"] * 60 + ["other"] * 60
    pd.DataFrame({"review": texts, "score": labels}).to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    result = seekforge.run(text_recipe(str(tmp_path / "t.jsonl"), epochs=6), runs_dir=tmp_path / "runs")
    assert result.metrics["accuracy"] >= 0.9
    preds = seekforge.load(result.package).predict([{"review": "awful stale tea"}, {"review": "great tasty tea"}])
    assert preds["prediction"].tolist() == ["other", "great"]


def test_resume_without_unfinished_run_is_an_error(tmp_path: Path, tabular_csv: Path) -> None:
    with pytest.raises(ConfigError, match="nothing to resume"):
        seekforge.run(tabular_recipe(str(tabular_csv)), runs_dir=tmp_path, resume=True)


def test_resume_refuses_a_changed_recipe(tmp_path: Path, tabular_csv: Path) -> None:
    run_dir = tmp_path / "run"
    seekforge.run(tabular_recipe(str(tabular_csv)), run_dir=run_dir)
    with pytest.raises(ConfigError, match=r"recipe changed .*train.epochs: 3 -> 4"):
        seekforge.run(tabular_recipe(str(tabular_csv), epochs=4), run_dir=run_dir, resume=True)


def test_preparation_is_cached(tmp_path: Path, tabular_csv: Path) -> None:
    run_dir = tmp_path / "run"
    seekforge.run(tabular_recipe(str(tabular_csv)), run_dir=run_dir)
    meta = (run_dir / "prepared" / "meta.json").stat().st_mtime_ns
    seekforge.run(tabular_recipe(str(tabular_csv)), run_dir=run_dir)
    assert (run_dir / "prepared" / "meta.json").stat().st_mtime_ns == meta
    seekforge.run(tabular_recipe(str(tabular_csv)) | {"seed": 1}, run_dir=run_dir)
    assert (run_dir / "prepared" / "meta.json").stat().st_mtime_ns != meta
