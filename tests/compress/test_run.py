"""compress_package on tiny packages: early refusals, a recipe's compress section resumed, a text student
distilled on altered copies of its texts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import seekforge
from seekforge.compress import CompressConfig, compress_package
from seekforge.core.errors import ConfigError
from tests.conftest import make_tabular, tabular_recipe, text_recipe
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


def test_a_text_student_distils_on_altered_copies_the_teacher_labels(tmp_path: Path) -> None:
    import pandas as pd
    import yaml

    from seekforge.train import Tensors

    texts = ["great tasty snack", "awful stale tea", "love this coffee", "never again, awful"] * 20
    frame = pd.DataFrame({"review": texts, "score": ["great", "other", "great", "other"] * 20})
    frame.to_csv(tmp_path / "t.csv", index=False)
    recipe = text_recipe(str(tmp_path / "t.csv"), output="category", hidden=16, epochs=2, batch_size=8)
    package = seekforge.run(recipe, runs_dir=tmp_path / "runs").package
    student = {"model": {"type": "transformer", "layers": 1, "heads": 2, "hidden": 8, "ffn": 16}}
    (tmp_path / "student.yaml").write_text(yaml.safe_dump(student))
    args = ("--student", "student.yaml", "--epochs", "1", "--augment", "2", "--max-accuracy-drop", "1")
    work = tmp_path / "work"
    proc = cli("compress", str(package), *args, "--work-dir", str(work), "-o", "out", cwd=tmp_path, check=True)
    rows = Tensors.load(work / "augmented.safetensors")
    train = len(rows) // 3  # the training rows, then two altered copies of each
    assert len(rows) == 3 * train and f"the teacher labels {2 * train} altered copies" in proc.stderr
    assert rows.target.shape == (3 * train, 2)  # the teacher's outputs on every row
    ids, mask = rows.inputs["input_ids"], rows.inputs["attention_mask"]
    copies = ids[train:].reshape(2, train, -1)
    assert not torch.equal(copies[0], ids[:train]) and not torch.equal(copies[0], copies[1])
    assert (mask[train:].sum(dim=1) <= mask[:train].repeat(2, 1).sum(dim=1)).all()
    manifest = json.loads((tmp_path / "out" / "package.json").read_text())
    assert manifest["lineage"]["parent"] == str(package.resolve())

    digits = cli("compress", str(package), "--augment", "2", "--prune", "0.5", cwd=tmp_path)
    assert digits.returncode == 2 and "--augment feeds distillation: add --distill or --student" in digits.stderr


def test_augment_needs_a_text_input(tmp_path: Path) -> None:
    make_tabular(200).to_csv(tmp_path / "d.csv", index=False)
    package = seekforge.run(tabular_recipe(str(tmp_path / "d.csv")), runs_dir=tmp_path / "runs").package
    config = CompressConfig(prune={"ratio": 0.5}, distill={"augment": {"copies": 2}})
    with pytest.raises(
        ConfigError,
        match=r"distill.augment alters the training texts of a model with one text input, and .* has no text inputs",
    ):
        compress_package(package, config, runs_dir=tmp_path / "runs")


def test_a_student_cut_from_its_pretrained_teacher_packages_exports_and_prunes(tmp_path: Path) -> None:
    import pandas as pd

    from seekforge.export import export_package

    texts = ["great tasty snack", "awful stale tea", "love this coffee", "never again, awful"] * 10
    frame = pd.DataFrame({"review": texts, "score": ["great", "other", "great", "other"] * 10})
    frame.to_csv(tmp_path / "t.csv", index=False)
    recipe = text_recipe(str(tmp_path / "t.csv"), output="category", epochs=1, batch_size=16, lr=5e-5)
    recipe["model"] = {"type": "transformer", "pretrained": "builtin:minilm"}
    package = seekforge.run(recipe, runs_dir=tmp_path / "runs").package
    student = {"type": "transformer", "pretrained": "builtin:minilm", "keep_layers": 1, "token_rank": 16}
    config = CompressConfig(distill={"student": {"model": {**student, "vocabulary": "training"}}, "epochs": 1})
    config = config.model_copy(update={"max_accuracy_drop": 1.0})
    result = compress_package(package, config, runs_dir=tmp_path, seconds=0.05)
    teacher, small = result.rows[0], result.rows[-1]
    assert small.parameters < 0.1 * teacher.parameters  # one layer, and rows for the training tokens only
    spec = json.loads((result.package / "model.json").read_text())
    assert spec["config"]["keep_layers"] == 1 and 10 < spec["io"]["extra"]["token_rows"] < 60
    predictor = seekforge.load(result.package)  # rebuilt from model.json alone
    unseen = predictor.predict([{"review": "a zebra crossed"}])  # tokens without a row read [UNK]'s
    assert unseen["prediction"][0] in ("great", "other")
    exported = export_package(result.package)
    assert exported.parity.passed

    # a second step prunes the student's heads and FFN width; its token table (rows and rank) stays
    prune = {"ratio": 0.5, "importance": "taylor", "finetune_epochs": 1}
    config = CompressConfig(prune=prune, distill={}, max_accuracy_drop=1.0)
    narrowed = compress_package(result.package, config, runs_dir=tmp_path, seconds=0.05)
    assert narrowed.rows[-1].parameters < small.parameters
    pruned = json.loads((narrowed.package / "model.json").read_text())
    assert pruned["config"]["pruned_layers"] == [{"heads": 6, "ffn": 768}]
    assert (pruned["config"]["token_rank"], pruned["io"]["extra"]["token_rows"]) == (
        16,
        spec["io"]["extra"]["token_rows"],
    )
    assert seekforge.load(narrowed.package).predict([{"review": "a zebra crossed"}])["prediction"][0] in (
        "great",
        "other",
    )
    assert export_package(narrowed.package).parity.passed


def test_a_student_with_early_exit_gets_its_own_calibrated_threshold(exit_text_package: Path, tmp_path: Path) -> None:
    from seekforge.core.package import read_manifest

    student = {"type": "transformer", "layers": 2, "heads": 2, "hidden": 16, "ffn": 32,
               "early_exit": {"budget": {"max_accuracy_drop": 0.05}}}  # fmt: skip
    config = CompressConfig(distill={"student": {"model": student}, "epochs": 1}, max_accuracy_drop=1.0)
    result = compress_package(exit_text_package, config, runs_dir=tmp_path, seconds=0.05)
    summary = read_manifest(result.package)["model"]["early_exit"]
    assert summary["exits"] == [1, 2] and summary["calibrated"] and summary["validation"]["rows"] > 0
    assert sum(summary["test"]["exits"]) == summary["test"]["rows"] and summary["threshold"] is not None
    spec = json.loads((result.package / "model.json").read_text())["config"]["early_exit"]
    assert spec["threshold"] == summary["threshold"] and spec["calibrated"]
    assert "exit_layer" in seekforge.load(result.package).predict([{"review": "tasty tea"}])
