"""The recipe's fairness gate: a model trained on data biased against one group on purpose fails it (exit 1,
the reason named, the package marked), the same data without the bias passes, and a bad section is refused
before any work."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import seekforge
from seekforge.core.errors import ConfigError, DataError
from seekforge.core.package import read_manifest
from tests.conftest import make_tabular, tabular_recipe
from tests.integration.cli import seekforge as cli

GATE = {"sensitive": ["gender"], "metrics": ["accuracy", "selection_rate"], "max_difference": 0.15, "boot": 50}


def _data(path: Path, *, biased: bool) -> Path:
    """make_tabular's rows with a gender column; biased: 60% of the women's "buy" labels become "skip"."""
    frame = make_tabular(700, seed=4)
    rng = np.random.default_rng(1)
    frame["gender"] = rng.choice(["f", "m"], len(frame))
    if biased:
        flip = (frame["gender"] == "f") & (frame["label"] == "buy") & (rng.random(len(frame)) < 0.6)
        frame.loc[flip, "label"] = "skip"
    frame.to_csv(path, index=False)
    return path


def _recipe(source: Path, **fairness: object) -> dict[str, object]:
    recipe = tabular_recipe(str(source), epochs=12)
    recipe["features"]["inputs"].append({"name": "gender", "type": "category"})  # type: ignore[index]
    recipe["data"]["split"] = {"train": 0.6, "validation": 0.1, "test": 0.3}  # type: ignore[index]
    recipe["fairness"] = {**GATE, **fairness}
    return recipe


def test_the_fair_model_passes_and_its_card_says_so(tmp_path: Path) -> None:
    recipe = _recipe(_data(tmp_path / "d.csv", biased=False))
    recipe["card"] = {"intended_use": "Ranking leads | for sales.", "limitations": ["Trained on 2026 visits."],
                      "explain_rows": 30}  # fmt: skip
    result = seekforge.run(recipe, runs_dir=tmp_path / "runs")
    manifest = read_manifest(result.package)
    found = manifest["fairness"]
    assert found["gate"]["passed"], found["gate"]["reasons"]
    assert found["by"] == ["gender"] and {g["group"]["gender"] for g in found["groups"]} == {"f", "m"}
    assert sum(g["rows"] for g in found["groups"]) == result.metrics["rows"]
    assert found["difference"]["selection_rate"] < 0.15
    report = (result.package / "report.html").read_text()
    assert "Fairness: test metrics by gender" in report and "Model card" in report
    card = (result.package / "model_card.md").read_text()
    assert "model_card.md" in manifest["files"]
    assert "**Intended use.** Ranking leads | for sales." in card and "- Trained on 2026 visits." in card
    assert "Fairness gate: passed" in card and "| gender=f |" in card
    importance = manifest["explanation"]["importance"]
    assert manifest["explanation"]["rows"] == 30 and manifest["explanation"]["completeness"]
    assert {name for name, _ in importance} == {"x1", "x2", "city", "member", "gender"}
    assert f"| {importance[0][0]} |" in card
    assert result.metrics["rows"] == 210 and "The test metrics rest on" not in card  # warned under 200 rows


def test_the_biased_model_fails_and_says_why(tmp_path: Path) -> None:
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(_recipe(_data(tmp_path / "d.csv", biased=True))))
    done = cli("run", str(recipe), "--json", cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    gate = json.loads(done.stdout)["fairness_gate"]
    assert not gate["passed"]
    (reason,) = [r for r in gate["reasons"] if r.startswith("selection_rate")]
    assert "gender=m" in reason and "gender=f" in reason and "more than max_difference 0.15" in reason
    assert "fairness gate: FAILED" in done.stderr and reason in done.stderr
    package = tmp_path / json.loads(done.stdout)["package"]
    manifest = read_manifest(package)
    rates = {g["group"]["gender"]: g["values"]["selection_rate"] for g in manifest["fairness"]["groups"]}
    assert rates["f"] > rates["m"] + 0.15  # the women are turned down ("skip") more often
    card = (package / "model_card.md").read_text()
    assert "_Not stated: set `card.intended_use` in the recipe._" in card and "seekforge explain PACKAGE" in card
    assert "- The fairness gate failed: " in card and reason in card


def test_a_bad_fairness_section_is_refused_before_any_work(tmp_path: Path) -> None:
    source = _data(tmp_path / "d.csv", biased=False)
    with pytest.raises(ConfigError, match=r"fairness\.metrics: 'mae' is not a group metric of a binary task"):
        seekforge.run(_recipe(source, metrics=["accuracy", "mae"]), runs_dir=tmp_path / "runs")
    with pytest.raises(DataError, match=r"'sex' \(fairness.sensitive\) not found; columns present: .*'gender'"):
        seekforge.run(_recipe(source, sensitive=["sex"]), runs_dir=tmp_path / "runs")
    assert not list((tmp_path / "runs").glob("*/*/package"))


def test_groups_too_small_to_compare_fail_the_gate() -> None:
    from seekforge.fairness import FairnessConfig, fairness_gate, group_metrics

    groups = pd.DataFrame({"gender": ["f"] * 10 + ["m"] * 50})
    truth = np.zeros(60, dtype=int)
    found = group_metrics(groups, truth, truth, task="classification", classes=["a", "b"], n_boot=0)
    gate = fairness_gate(found, FairnessConfig(sensitive=["gender"]), "binary")
    assert not gate["passed"] and "fewer than two groups of gender have 30 rows" in gate["reasons"][0]
    assert "gender=f: 10" in gate["reasons"][0]
