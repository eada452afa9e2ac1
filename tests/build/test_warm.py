"""Warm starts: a package continued on shifted rows reaches the fresh model's validation accuracy in
fewer epochs; its lineage names the parent; grow adds the new categories (old codes keep their rows, so the
replayed rows stay valid); a recipe that does not fit the parent is refused, naming what differs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import seekforge
from seekforge.core.errors import ConfigError
from seekforge.core.package import read_manifest, read_package_json
from seekforge.core.variants import model_version
from tests.conftest import make_tabular, tabular_recipe
from tests.integration.cli import seekforge as cli


def _shifted(rows: int = 600) -> pd.DataFrame:
    """make_tabular's rule, with x1 moved up, a stricter rule where x2 is high, and a city never seen."""
    frame = make_tabular(rows, seed=2)
    frame["x1"] = frame["x1"] + 0.7
    score = 1.5 * frame["x1"] - frame["x2"] + (frame["city"] == "oslo") * 1.0 + (frame["member"] == "yes") * 0.5
    frame["label"] = np.where(score > 0.3 + 0.5 * (frame["x2"] > 0.5), "buy", "skip")
    frame.loc[frame.index[:60], "city"] = "kyiv"
    return frame


@pytest.fixture(scope="module")
def parent(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("warm")
    make_tabular(600, seed=0).to_csv(root / "a.csv", index=False)
    _shifted().to_csv(root / "b.csv", index=False)
    return seekforge.run(tabular_recipe(str(root / "a.csv"), epochs=20), runs_dir=root / "runs").package, root


def _first_epoch(history: list[dict[str, float]], accuracy: float) -> int:
    return next(h["epoch"] for h in history if h["val_accuracy"] >= accuracy)


def test_a_warm_start_catches_up_sooner_and_names_its_parent(parent: tuple[Path, Path]) -> None:
    package, root = parent
    fresh = seekforge.run(tabular_recipe(str(root / "b.csv"), epochs=12), runs_dir=root / "fresh")
    recipe = tabular_recipe(str(root / "b.csv"), epochs=12)
    recipe["warm_start"] = {"package": str(package), "preprocessor": "grow", "replay": 0.2}
    warm = seekforge.run(recipe, runs_dir=root / "warm")
    target = max(h["val_accuracy"] for h in fresh.history) - 0.012  # within one validation row of its best
    assert _first_epoch(warm.history, target) < _first_epoch(fresh.history, target), (warm.history, fresh.history)
    manifest = read_manifest(warm.package)
    parent_manifest = read_manifest(package)
    assert manifest["lineage"]["parent"] == str(package)
    assert manifest["lineage"]["parent_version"] == model_version(parent_manifest)
    record = manifest["training"]["warm_start"]
    assert record["grown"] == {"city": ["kyiv"]} and record["replay_rows"] == round(0.2 / 0.8 * record["new_rows"])
    old = read_package_json(package, "preprocessor.json")["categories"]["city"]
    assert read_package_json(warm.package, "preprocessor.json")["categories"]["city"] == [*old, "kyiv"]
    assert [i["name"] for i in manifest["inputs"]] == [i["name"] for i in parent_manifest["inputs"]]
    assert seekforge.load(warm.package).predict([{"x1": 1.0, "x2": 0.0, "city": "kyiv", "member": "no"}]).shape[0] == 1


def test_a_recipe_that_does_not_fit_its_parent_is_refused(parent: tuple[Path, Path]) -> None:
    package, root = parent
    recipe = tabular_recipe(str(root / "b.csv"), epochs=1)
    recipe["features"]["inputs"] = recipe["features"]["inputs"][:3]  # type: ignore[index]
    recipe["warm_start"] = {"package": str(package)}
    with pytest.raises(ConfigError, match="the parent's input 'member' is missing here"):
        seekforge.run(recipe, runs_dir=root / "bad")
    refit = tabular_recipe(str(root / "b.csv"), epochs=1)
    refit["warm_start"] = {"package": str(package), "preprocessor": "refit", "replay": 0}
    with pytest.raises(ConfigError, match=r"(?s)'city' has 4 categories, the parent 3.*use preprocessor: grow"):
        seekforge.run(refit, runs_dir=root / "bad")
    refit["warm_start"]["replay"] = 0.2  # type: ignore[index]
    with pytest.raises(ConfigError, match=r"warm_start\.replay: the parent's rows are encoded by its own preprocessor"):
        seekforge.run(refit, runs_dir=root / "bad")
    wider = tabular_recipe(str(root / "b.csv"), epochs=1)
    wider["model"]["hidden"] = [32]  # type: ignore[index]
    wider["warm_start"] = {"package": str(package)}
    with pytest.raises(ConfigError, match=r"do not fit this model: body.0.weight \[32, 6\] \(parent: \[16, 6\]\)"):
        seekforge.run(wider, runs_dir=root / "bad")


def test_train_from_on_the_command_line(parent: tuple[Path, Path], tmp_path: Path) -> None:
    package, root = parent
    (tmp_path / "recipe.yaml").write_text((package / "recipe.yaml").read_text())
    done = cli("train", "recipe.yaml", "--from", str(package), "--data", str(root / "b.csv"), "-s", "train.epochs=2",
               "--json", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    manifest = read_manifest(tmp_path / json.loads(done.stdout)["package"])
    assert manifest["lineage"]["parent"] == str(package.resolve())
    assert manifest["training"]["warm_start"]["preprocessor"] == "keep"  # the default: kyiv is an unknown city
