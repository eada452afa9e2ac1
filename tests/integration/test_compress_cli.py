"""seekforge compress end to end on a small digits CNN: prune -> distil -> QAT -> int8 ONNX export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from seekforge.core.hardware import hardware
from seekforge.core.io import sha256_file
from tests.integration.cli import seekforge

pytest.importorskip("torch_pruning")
pytest.importorskip("torchao")


@pytest.fixture(scope="module")
def digits_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("compress")
    recipe = {
        "name": "digits-small",
        "seed": 0,
        "data": {"source": "builtin:digits", "split": {"train": 0.7, "validation": 0.1, "test": 0.2}},
        "features": {"inputs": [{"name": "image", "type": "image"}], "output": {"name": "label", "type": "category"}},
        "model": {"type": "cnn", "channels": [8, 16]},
        "train": {"epochs": 4, "batch_size": 64, "lr": 0.005},
    }
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    seekforge("run", "recipe.yaml", cwd=root, check=True)
    return next((root / "runs" / "digits-small").glob("*/package"))


def _digests(package: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in package.rglob("*") if p.is_file()}


@pytest.mark.slow  # 85 s on 2 cores; its stages are each covered in tests/compress
def test_prune_distil_qat_then_int8_export_passes_its_gate(digits_package: Path, tmp_path: Path) -> None:
    before = _digests(digits_package)
    out = tmp_path / "small"
    args = ("--prune", "0.5", "--finetune-epochs", "1", "--distill", "--quantize", "qat", "--epochs", "1")
    proc = seekforge("compress", str(digits_package), *args, "-o", str(out), "--runs-dir", str(tmp_path / "runs"),
                     cwd=tmp_path, check=True)  # fmt: skip
    assert "pruned 50% + qat int8" in proc.stdout and "parent" in proc.stdout
    assert _digests(digits_package) == before  # the input package is never touched
    manifest = json.loads((out / "package.json").read_text())
    assert manifest["lineage"]["parent"] == str(digits_package.resolve())
    assert manifest["lineage"]["parent_sha256"] == before["package.json"]
    assert manifest["quantization"]["method"] == "qat" and "quantization.safetensors" in manifest["files"]
    rows = {row["name"]: row for row in manifest["compress"]["variants"]}
    assert set(rows) == {"parent", "pruned 50%", "pruned 50% + qat int8"}
    assert rows["pruned 50%"]["parameters"] < 0.4 * rows["parent"]["parameters"]
    model = json.loads((out / "model.json").read_text())
    assert model["config"]["widths"] == [4, 4, 8, 8]
    qat = rows["pruned 50% + qat int8"]
    assert manifest["compress"]["hardware"] == hardware().to_dict()
    if not qat["onnx_bytes"]:
        # Only without VNNI may the int8 graph of QAT fail its gate: the row then says why, with the
        # numbers, and an export of it is refused with them, writing nothing.
        assert not hardware().vnni, qat["verdict"]
        assert "no ONNX export: the onnx-int8 model failed the parity gate" in qat["verdict"]
        assert qat["onnxruntime_ms_batch1"] is None and qat["torch_ms_batch1"]
        proc = seekforge("export", str(out), "--format", "onnx", "--precision", "int8", cwd=tmp_path)
        assert proc.returncode == 2 and "failed the parity gate" in proc.stderr and "nothing was written" in proc.stderr
        assert "onnx-int8" not in json.loads((out / "package.json").read_text()).get("exports", {})
        return
    assert qat["onnxruntime_ms_batch1"]

    proc = seekforge("export", str(out), "--format", "onnx", "--precision", "int8", cwd=tmp_path, check=True)
    assert "parity passed" in proc.stdout and "qat quantization" in proc.stdout
    record = json.loads((out / "package.json").read_text())["exports"]["onnx-int8"]
    assert record["quantization"] == "qat" and record["parity"]["passed"]
    import onnx

    ops = {node.op_type for node in onnx.load(str(out / record["file"])).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= ops


@pytest.mark.slow  # 40 s on 2 cores; tests/compress/test_run.py resumes an interrupted compression
def test_finished_stages_are_reused_in_the_same_work_folder(digits_package: Path, tmp_path: Path) -> None:
    args = ("--prune", "0.3", "--finetune-epochs", "1", "--work-dir", str(tmp_path / "work"))
    first = seekforge("compress", str(digits_package), *args, "-o", str(tmp_path / "a"), cwd=tmp_path, check=True)
    assert "prune 30% step 1/1" in first.stderr
    again = seekforge("compress", str(digits_package), *args, "-o", str(tmp_path / "b"), cwd=tmp_path, check=True)
    assert "prune 30% step 1/1" not in again.stderr
    refused = seekforge("compress", str(digits_package), *args, "-o", str(tmp_path / "b"), cwd=tmp_path)
    assert refused.returncode == 2 and "already exists" in refused.stderr and "--force" in refused.stderr
    forced = seekforge("compress", str(digits_package), *args, "-o", str(tmp_path / "b"), "--force", "--json",
                       cwd=tmp_path, check=True)  # fmt: skip
    result = json.loads(forced.stdout)
    assert result["package"] == str(tmp_path / "b") and {row["name"] for row in result["rows"]} >= {"parent"}
    weights = [json.loads((tmp_path / p / "package.json").read_text())["files"]["model.safetensors"] for p in "ab"]
    assert weights[0] == weights[1]
    other = seekforge("compress", str(digits_package), "--prune", "0.4", "--work-dir", str(tmp_path / "work"),
                      cwd=tmp_path)  # fmt: skip
    assert other.returncode == 2 and "with other settings" in other.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--prune", "1.5"), "--prune: Input should be less than 1"),
        (("--prune", "0.5", "--importance", "random"), "--importance: Input should be 'magnitude', 'taylor' or 'lamp'"),
        (("--prune", "0.5", "--keep", "features.99"), "no layer named 'features.99'"),
        (("--distill",), "name it in distill.student"),
        ((), "nothing to do"),
        (("--quantize", "int8"), "post-training int8 needs no training and is an export: seekforge export"),
    ],
)
def test_bad_options_exit_2_with_the_option_named(
    digits_package: Path, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    proc = seekforge("compress", str(digits_package), *args, "--runs-dir", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert message in proc.stderr and "Traceback" not in proc.stderr
