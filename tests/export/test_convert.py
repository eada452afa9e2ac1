"""Conversions for other runtimes: Core ML through coremltools (its program's inputs are the model's batch
keys, every weight of the model is in it, a batch norm folded into its convolution as the converter folds
it; the parity gate where Core ML predicts, said unchecked elsewhere), added to the package under
``conversions`` and replaced only with --force; TensorFlow Lite and TensorRT refused in one line naming
what they need, nothing written."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
import torch

import seekforge
from seekforge.core.errors import ConfigError, PackageError
from seekforge.core.package import read_manifest
from seekforge.export import check_format, convert_package
from seekforge.train import Tensors
from tests.conftest import image_folder_recipe
from tests.integration.cli import assert_user_error
from tests.integration.cli import seekforge as cli

pytest.importorskip("coremltools")


@pytest.fixture
def package(served_package: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "pkg"
    shutil.copytree(served_package, copy)
    return copy


def test_a_tabular_model_converts_to_core_ml_with_every_weight(package: Path) -> None:
    result = convert_package(package, "coreml")
    record = result.record
    manifest = read_manifest(package)  # every file of the .mlpackage listed and checked
    assert manifest["conversions"]["coreml"] == record and "coreml" not in manifest.get("exports", {})
    stored = [name for name in manifest["files"] if name.startswith("coreml/model.mlpackage/")]
    assert stored and any(name.endswith("weight.bin") for name in stored) and result.path.is_dir()
    samples = Tensors.load(package / "samples.safetensors")
    assert set(record["structure"]["inputs"]) == set(samples.inputs)  # named as the model's batch
    assert record["structure"]["operations"].get("linear", 0) >= 2
    weights = record["weights"]
    assert weights["checked"] and weights["missing"] == [] and weights["matched"] == weights["tensors"] >= 4
    if sys.platform == "darwin":  # Core ML predicts: the held-out rows through the parity gate
        assert record["parity"]["checked"] and record["parity"]["passed"]
    else:
        assert record["parity"] == {"passed": None, "checked": False, "reason": record["parity"]["reason"]}
        assert "macOS" in record["parity"]["reason"]
    with pytest.raises(PackageError, match="holds a coreml conversion already"):
        convert_package(package, "coreml")
    again = convert_package(package, "coreml", precision="fp16", force=True)
    files = read_manifest(package)["files"]
    assert again.record["precision"] == "fp16" and sorted(n for n in files if n.startswith("coreml/")) == sorted(stored)


def test_a_cnns_batch_norms_are_found_folded_into_its_convolutions(tmp_path: Path) -> None:
    recipe = image_folder_recipe(tmp_path, per_class=6, epochs=1)
    built = seekforge.run(recipe, runs_dir=tmp_path / "runs").package
    weights = convert_package(built, "coreml").record["weights"]
    assert weights["missing"] == [] and any("folded" in name for name in _expected_names(built))


def _expected_names(package: Path) -> list[str]:
    from seekforge.export._convert import _expected  # what the check compared
    from seekforge.models import build_model

    return list(_expected(build_model(package).eval()))


def test_targets_without_their_converter_or_hardware_are_refused_and_nothing_is_written(package: Path) -> None:
    before = (package / "package.json").read_bytes()
    with pytest.raises(ConfigError, match="litert-torch") as tflite:
        convert_package(package, "tflite")
    assert "pip install litert-torch" in (tflite.value.hint or "")
    expected = "this machine has none" if not torch.cuda.is_available() else "TensorRT"
    with pytest.raises(ConfigError, match=expected):
        convert_package(package, "tensorrt")
    with pytest.raises(ConfigError, match="unknown conversion target"):
        convert_package(package, "onnx")
    assert (package / "package.json").read_bytes() == before


def test_the_cli_converts_and_refuses_and_export_points_at_convert(package: Path, tmp_path: Path) -> None:
    done = cli("convert", str(package), "--to", "coreml", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["record"]["format"] == "coreml"
    before = (package / "package.json").read_bytes()
    assert_user_error(cli("convert", str(package), "--to", "tflite", cwd=tmp_path), "litert-torch")
    assert (package / "package.json").read_bytes() == before
    with pytest.raises(ConfigError, match="coreml is not an export format: seekforge convert makes it"):
        check_format("coreml")
