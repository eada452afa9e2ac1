"""A run with early exit: the threshold is calibrated on the validation split and the package records where
the test rows left, what each exit costs and how accuracy goes with the threshold; exit heads distilled on a
frozen model; the other policies; recipes early exit cannot apply to are refused."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file

import seekforge
from seekforge.core.errors import ConfigError
from seekforge.core.package import read_manifest
from seekforge.train import checkpoint_path, untimed
from tests.conftest import exit_recipe, exit_texts
from tests.integration.cli import seekforge as run_cli


def test_the_package_records_where_test_rows_left(exit_text_package: Path) -> None:
    manifest = read_manifest(exit_text_package)
    summary = manifest["model"]["early_exit"]
    assert summary["policy"] == "entropy" and summary["exits"] == [1, 2, 3] and summary["calibrated"]
    test = summary["test"]
    assert sum(test["exits"]) == test["rows"] == manifest["data"]["rows"]["test"]
    assert test["accuracy"] == pytest.approx(manifest["metrics"]["test"]["accuracy"])
    assert 1.0 <= test["mean_layers"] <= 3.0 and len(summary["latency_ms"]) == 3
    validation = summary["validation"]
    assert validation["accuracy_full"] - validation["accuracy"] <= summary["budget"]["max_accuracy_drop"] + 1e-9
    model_json = json.loads((exit_text_package / "model.json").read_text())
    assert model_json["config"]["early_exit"]["threshold"] == summary["threshold"]
    report = (exit_text_package / "report.html").read_text()
    for words in ("Early exit", "test rows by exit layer", "latency by exit layer", "accuracy and layers run"):
        assert words in report
    predicted = seekforge.load(exit_text_package, backend="torch").predict(pd.DataFrame({"review": ["tasty tea"]}))
    assert predicted["exit_layer"].tolist()[0] in (1, 2, 3)


def test_distilled_exit_heads_with_the_patience_policy(tmp_path: Path) -> None:
    exit_texts(200, seed=1).to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    recipe = exit_recipe(str(tmp_path / "t.jsonl"), policy="patience", training="distill", distill_epochs=1)
    built = seekforge.run(recipe, runs_dir=tmp_path / "runs")
    result = json.loads((built.run_dir / "trained" / "result.json").read_text())
    assert any("exit heads distilled from the final layer for 1 epochs" in n for n in result["notes"])
    assert (built.run_dir / "exits" / "metrics.jsonl").is_file() and len(result["history"]) == 4
    assert read_manifest(built.package)["model"]["early_exit"]["training"] == "distill"
    assert [c["threshold"] for c in result["early_exit"]["curve"]] == [2.0, 1.0]  # never, then after 1 agreement
    # the model as its own training left it (the last checkpoint of that phase); only the heads moved since
    first = torch.load(checkpoint_path(built.run_dir), weights_only=False)["model"]
    final = load_file(built.package / "model.safetensors")
    heads = [k for k in final if k.startswith("exit_heads.")]
    assert heads and all(torch.equal(final[k], first[k]) for k in final if k not in heads)
    assert all(not torch.equal(final[k], first[k]) for k in heads if k.endswith("out.weight"))


def test_the_length_policy_routes_short_rows_to_early_exits(tmp_path: Path) -> None:
    exit_texts(200, seed=2).to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    recipe = exit_recipe(str(tmp_path / "t.jsonl"), policy="length", threshold=24)
    package = seekforge.run(recipe, runs_dir=tmp_path / "runs").package
    summary = read_manifest(package)["model"]["early_exit"]
    assert summary["threshold"] == 24 and not summary["calibrated"]
    predictor = seekforge.load(package, backend="torch")
    # 6 to 8 words and the two special tokens: ceil(3 * 10 / 24) = 2 layers; one word: 1 layer
    layers = predictor.predict(pd.DataFrame({"review": ["tasty", "not tasty the a box tea it it"]}))["exit_layer"]
    assert layers.tolist() == [1, 2]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"features": {"output": {"name": "score", "type": "numeric"}}}, "early_exit: rows leave when a classifier"),
        ({"data": {"split": {"train": 0.9, "validation": 0.0, "test": 0.1}}}, "calibrated on the validation split"),
        (
            {"model": {"type": "transformer", "layers": 2, "early_exit": {"heads": [3]}}},
            "exit heads go after layers 1 to 1",
        ),
        ({"model": {"type": "mlp", "early_exit": {}}}, "a mlp model has no encoder layers to exit from"),
    ],
)
def test_early_exit_where_it_cannot_work_is_a_recipe_error(tmp_path: Path, change: dict, words: str) -> None:
    exit_texts(60).assign(score=lambda f: (f.score == "great").astype(float)).to_json(
        tmp_path / "t.jsonl", orient="records", lines=True
    )
    recipe = exit_recipe("t.jsonl")
    for section, value in change.items():
        recipe[section] = value if section == "model" else {**recipe[section], **value}  # type: ignore[dict-item]
    if "features" in change:  # one through the command line: exit 2, the message, no traceback
        (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
        proc = run_cli("run", "recipe.yaml", cwd=tmp_path)
        assert proc.returncode == 2 and words in proc.stderr and "Traceback" not in proc.stderr
    else:
        with pytest.raises(ConfigError, match=words):
            seekforge.run(recipe, runs_dir=tmp_path / "runs", data=pd.read_json(tmp_path / "t.jsonl", lines=True))
        assert not list((tmp_path / "runs").glob("*/*/package"))


def test_distilling_the_exit_heads_stops_and_resumes_to_the_same_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seekforge.core.errors import TrainingInterrupted
    from seekforge.train import Trainer

    exit_texts(120, seed=3).to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    recipe = exit_recipe(str(tmp_path / "t.jsonl"), training="distill", distill_epochs=2)
    recipe["train"] = {**recipe["train"], "epochs": 2}  # type: ignore[dict-item]
    straight = seekforge.run(recipe, run_dir=tmp_path / "straight")
    requested = Trainer._stop_requested
    monkeypatch.setattr(Trainer, "_stop_requested", lambda self: self.run_dir.name == "exits" or requested(self))
    with pytest.raises(TrainingInterrupted):  # a stop while the heads learn, after their first step
        seekforge.run(recipe, run_dir=tmp_path / "cut")
    assert (tmp_path / "cut" / "exits" / "checkpoints").is_dir() and not (tmp_path / "cut" / "package").exists()
    monkeypatch.setattr(Trainer, "_stop_requested", requested)
    resumed = seekforge.run(recipe, run_dir=tmp_path / "cut", resume=True)
    assert (resumed.package / "model.safetensors").read_bytes() == (straight.package / "model.safetensors").read_bytes()
    assert untimed(resumed.history) == untimed(straight.history)
