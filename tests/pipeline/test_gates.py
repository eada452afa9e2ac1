"""seekforge pipeline: a package that passes its gates is registered and promoted; one that loses to the
champion on the same test rows is registered, not promoted (exit 1, the reason named), and the champion
stays; a gate on a metric the task does not measure is refused before any work."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from seekforge.core.errors import ConfigError
from seekforge.core.package import read_manifest
from seekforge.pipeline import pipeline
from seekforge.registry import Registry
from tests.conftest import make_tabular, tabular_recipe
from tests.integration.cli import seekforge

GATES = {
    "min": {"accuracy": 0.8},
    "vs_champion": {"max_drop": 0.0},
    "latency": {"p99_ms": 1000, "batch": 1},
    "parity": True,
}


def test_gates_decide_the_promotion(tmp_path: Path) -> None:
    make_tabular(400).to_csv(tmp_path / "d.csv", index=False)
    good = {**tabular_recipe(str(tmp_path / "d.csv"), epochs=20), "gates": GATES}
    first = pipeline(good, runs_dir=tmp_path / "runs", registry=tmp_path / "r.db")
    assert first.passed and first.promoted and first.version == 1
    assert first.gates["vs_champion"]["note"] == "no champion yet" and first.gates["latency"]["value"] < 1000
    registry = Registry(tmp_path / "r.db")
    assert registry.get("tiny", 1).gates["min:accuracy"]["passed"]
    parity = first.gates["parity"]  # the ONNX export the server will run was made and checked
    assert parity["passed"] and parity["value"] <= parity["limit"] and parity["rows"] > 0
    assert read_manifest(first.run.package)["exports"]["onnx"]["parity"]["passed"]

    worse = {**tabular_recipe(str(tmp_path / "d.csv"), epochs=1, lr=1e-5), "gates": GATES}
    (tmp_path / "worse.yaml").write_text(yaml.safe_dump(worse))
    done = seekforge("pipeline", "worse.yaml", "--registry", str(tmp_path / "r.db"), "--json", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    answer = json.loads(done.stdout)
    assert answer["version"] == 2 and not answer["promoted"] and not answer["gates"]["vs_champion"]["passed"]
    assert "against the champion's" in done.stderr and "on the same 60 test rows" in done.stderr
    assert "not promoted: the champion stays where it was" in done.stderr
    assert registry.resolve("tiny@champion") == first.run.package.resolve()
    assert not registry.get("tiny", 2).passed


def test_a_gate_on_an_unmeasured_metric_is_refused(tmp_path: Path) -> None:
    recipe = {**tabular_recipe("d.csv"), "gates": {"max": {"rmse": 1.0}}}
    with pytest.raises(ConfigError, match=r"gates\.max: 'rmse' is not a test metric of this task"):
        pipeline(recipe, runs_dir=tmp_path / "runs", registry=tmp_path / "r.db")
