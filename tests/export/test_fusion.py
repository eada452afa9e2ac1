"""A fusion package exports to one ONNX graph with an input per batch key, each text with its own
sequence axis, and passes the parity gate; serving and pruning read it like any package."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

import seekforge
from seekforge.compress import CompressConfig, compress_package
from seekforge.export import export_package
from seekforge.export._onnx import export_onnx


def test_the_onnx_graph_takes_tabular_values_raw_and_each_other_input_by_its_key(fusion_package: Path) -> None:
    onnx = pytest.importorskip("onnx")
    result = export_package(fusion_package)
    assert result.parity.passed and result.parity.agreement == 1.0 and result.record["inputs"] == "raw"
    graph = onnx.load(str(result.path)).graph
    shapes = {i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in graph.input}
    kinds = {i.name: i.type.tensor_type.elem_type for i in graph.input}
    assert shapes["x1"] == shapes["city"] == ["batch"] and (kinds["x1"], kinds["city"]) == (11, 8)  # float64, string
    assert "numeric" not in shapes and "category" not in shapes  # the imputation, scaling and vocabulary are inside
    assert shapes["input_ids.title"][1] == shapes["attention_mask.title"][1] == "sequence_title"
    assert shapes["input_ids.note"][1] == "sequence_note"
    assert shapes["image"][1:] == [3, 8, 8]
    assert shapes["sequence.recent"][1] == shapes["sequence_mask.recent"][1] == "sequence_recent"
    assert (kinds["sequence.clicks"], kinds["sequence.recent"], kinds["sequence_mask.recent"]) == (8, 11, 7)  # raw

    predictor = seekforge.load(fusion_package)  # exported now: answers through onnxruntime
    rows = [{"title": "fresh lovely", "note": "", "x1": 0.5, "city": "oslo", "photo": np.zeros((8, 8, 3), np.uint8),
             "recent": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0], "clicks": ["home"]},
            {"title": "stale", "note": "red box", "x1": -2.0, "city": "rome", "photo": np.ones((8, 8, 3), np.uint8),
             "recent": [], "clicks": ["never seen"]}]  # fmt: skip
    out = predictor.predict(rows)
    assert list(out["prediction"]) == ["buy", "skip"]  # an unseen city reads the unknown bucket


def test_pruning_narrows_the_tabular_encoder_and_keeps_the_cross_attention(
    fusion_package: Path, tmp_path: Path
) -> None:
    config = CompressConfig(prune={"ratio": 0.5, "finetune_epochs": 1}, distill={}, max_accuracy_drop=1.0)
    result = compress_package(fusion_package, config, runs_dir=tmp_path, seconds=0.05)
    parent = json.loads((fusion_package / "model.json").read_text())["config"]
    pruned = json.loads((result.package / "model.json").read_text())["config"]
    assert pruned["encoders"]["tabular"]["hidden"] == [8] and parent["encoders"]["tabular"]["hidden"] == [16]
    assert pruned["combiner"] == parent["combiner"]
    assert result.rows[-1].parameters < result.rows[0].parameters


@pytest.mark.parametrize("rnn", [torch.nn.GRU, torch.nn.LSTM])
def test_a_recurrent_encoder_keeps_its_sequence_axis_in_every_export_of_a_process(rnn: type, tmp_path: Path) -> None:
    onnx = pytest.importorskip("onnx")

    class Recurrent(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = rnn(4, 4, batch_first=True)

        def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
            return self.rnn(batch["input_ids"].float().unsqueeze(-1).expand(-1, -1, 4))[0].sum(dim=1)

    model = Recurrent()
    example = {"input_ids": torch.ones(3, 6, dtype=torch.long)}
    for attempt in range(2):
        export_onnx(model, example, tmp_path / f"{attempt}.onnx", opset=18)
        (graph_input,) = onnx.load(str(tmp_path / f"{attempt}.onnx")).graph.input
        assert [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim] == ["batch", "sequence"]
    model.train()(example).sum().backward()  # the export's loop kernel did not stay behind for training
    assert model.rnn.weight_ih_l0.grad is not None
