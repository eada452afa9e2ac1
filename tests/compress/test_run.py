"""compress_package on a tiny tabular MLP: early refusals, and a recipe's compress section resumed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import seekforge
from seekforge.compress import CompressConfig, compress_package
from seekforge.core.errors import ConfigError
from tests.conftest import make_tabular, tabular_recipe
from tests.integration.cli import seekforge as cli

pytest.importorskip("torch_pruning")


def test_auto_ratio_without_a_validation_split_is_refused_before_any_work(tmp_path: Path) -> None:
    make_tabular(200).to_csv(tmp_path / "d.csv", index=False)
    recipe = tabular_recipe(str(tmp_path / "d.csv"))
    recipe["data"]["split"] = {"train": 0.8, "validation": 0.0, "test": 0.2}  # type: ignore[index]
    package = seekforge.run(recipe, runs_dir=tmp_path / "runs").package
    with pytest.raises(ConfigError, match="--prune auto chooses the ratio on the validation split"):
        compress_package(package, CompressConfig(prune={"ratio": "auto"}), runs_dir=tmp_path / "runs")
    assert not list((tmp_path / "runs" / "tiny").glob("compress-*"))  # no work folder was made


def test_run_resume_finishes_an_interrupted_compression_without_retraining(tmp_path: Path) -> None:
    make_tabular(200).to_csv(tmp_path / "d.csv", index=False)
    recipe = tabular_recipe("d.csv")
    recipe["model"] = {"type": "mlp", "hidden": [32, 16]}
    recipe["compress"] = {"prune": {"ratio": 0.5, "finetune_epochs": 1}, "max_accuracy_drop": 1.0}
    import yaml

    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    first = cli("run", "recipe.yaml", cwd=tmp_path, check=True)
    assert "compressed package (pruned 50%)" in first.stdout
    run_dir = next((tmp_path / "runs" / "tiny").glob("2*"))
    package_json = (run_dir / "package" / "package.json").read_bytes()
    compressed = json.loads((run_dir / "compressed" / "package.json").read_text())
    assert compressed["lineage"]["parent"] == str((run_dir / "package").resolve())
    assert json.loads((run_dir / "compressed" / "model.json").read_text())["config"]["hidden"] == [16, 8]

    import shutil

    shutil.rmtree(run_dir / "compressed")  # as if the run had stopped before the compressed package
    again = cli("run", "recipe.yaml", "--resume", cwd=tmp_path, check=True)
    assert "epoch 1 " not in again.stderr.split("compress")[0]  # no training before the compression
    assert (run_dir / "package" / "package.json").read_bytes() == package_json
    assert (run_dir / "compressed" / "package.json").is_file()
