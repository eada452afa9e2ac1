"""An early-exit package exports as one graph per segment, chained on onnxruntime; the parity gate checks
predictions and exit layers; variants that cannot be are refused and nothing is written."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

import seekforge
from seekforge.core.errors import ConfigError
from seekforge.core.package import read_manifest
from seekforge.export import ExportConfig, bench_package, check_parity, export_package
from seekforge.export.config import ParityConfig
from tests.conftest import exit_texts, export_on_this_cpu


@pytest.fixture(scope="module")
def exported(exit_text_package: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("exit-export") / "package"
    shutil.copytree(exit_text_package, copy)
    result = export_package(copy)
    assert result.parity.passed and result.parity.exit_agreement == 1.0
    assert result.record["segments"] == ["onnx/model.onnx", "onnx/model.part2.onnx", "onnx/model.part3.onnx"]
    assert result.bytes == sum((copy / f).stat().st_size for f in result.record["segments"])
    return copy


def test_onnxruntime_runs_the_segments_as_torch_runs_the_model(exported: Path) -> None:
    frame = exit_texts(40, seed=3).drop(columns="score")
    torch_pred = seekforge.load(exported, backend="torch").predict(frame)
    ort_pred = seekforge.load(exported, backend="onnxruntime").predict(frame)
    assert ort_pred["exit_layer"].tolist() == torch_pred["exit_layer"].tolist()
    assert ort_pred["prediction"].tolist() == torch_pred["prediction"].tolist()
    assert np.allclose(ort_pred["proba_great"], torch_pred["proba_great"], atol=1e-5)
    manifest = read_manifest(exported)
    assert manifest["exports"]["onnx"]["early_exit"]["threshold"] == manifest["model"]["early_exit"]["threshold"]
    rows = bench_package(exported, batches=(1, 4), seconds=0.05, rounds=1, warmup=1)
    assert {(r.backend, r.batch) for r in rows} == {("torch", 1), ("torch", 4), ("onnxruntime", 1), ("onnxruntime", 4)}


def test_int8_segments_pass_the_gate_on_exit_layers_too(exported: Path) -> None:
    result = export_on_this_cpu(exported, ExportConfig(format="onnx", precision="int8"))
    if result is None:  # a CPU without VNNI: refused by its gate, with its numbers, nothing written
        return
    assert result.record["quantization"] == "dynamic" and len(result.record["segments"]) == 3
    assert result.parity.exit_agreement is not None and result.parity.passed
    frame = exit_texts(20, seed=4).drop(columns="score")
    assert "exit_layer" in seekforge.load(exported, backend="onnxruntime-int8").predict(frame)


@pytest.mark.parametrize(
    ("settings", "words"),
    [
        ({"format": "openvino"}, "does not chain OpenVINO"),
        ({"format": "onnx", "precision": "fp16"}, "fp16 is not offered for early exit"),
        ({"format": "onnx", "precision": "int8", "quantization": "static"}, "only the first segment"),
    ],
)
def test_variants_an_early_exit_model_cannot_be_are_refused(exported: Path, settings: dict, words: str) -> None:
    before = (exported / "package.json").read_text()
    with pytest.raises(ConfigError, match=words):
        export_package(exported, ExportConfig(**settings))
    assert (exported / "package.json").read_text() == before


def test_the_gate_fails_rows_that_leave_at_other_layers() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 0.0], [0.0, 1.0]])
    target = torch.tensor([0, 1, 0, 1])
    moved = logits.clone()
    moved[3] = torch.tensor([0.0, 9.0])  # a row that left at another exit: other numbers, same class
    exits = (torch.tensor([1, 1, 2, 3]), torch.tensor([1, 1, 2, 2]))
    record = check_parity(logits, moved, target, task="classification", limits=ParityConfig(), exits=exits)
    assert record.exit_agreement == 0.75 and record.max_abs_diff == 0.0  # differences only where exits agree
    assert record.failures == ("exit layer agreement 0.7500 < 0.999",)
    same = check_parity(logits, moved, target, task="classification", limits=ParityConfig(), exits=(exits[0],) * 2)
    assert same.exit_agreement == 1.0 and not same.passed  # the row's numbers differ now that its exit agrees
