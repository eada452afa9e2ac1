"""What an ONNX file made elsewhere is, read before anything runs it: inputs with their dynamic axes,
operators, shape inference, and whether onnxruntime and OpenVINO run it here, each asked; files that are
not ONNX models (a pickle, junk, a folder) refused in one line; the file never touched."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from seekforge.core.errors import DataError  # noqa: E402
from seekforge.model_import import inspect_onnx  # noqa: E402
from tests.integration.cli import seekforge  # noqa: E402


def small_cnn(path: Path, *, opset: int = 18, op: str = "Relu") -> Path:
    """A convolution, ``op``, a global average and a dense layer, with a dynamic batch and image size."""
    rng = np.random.default_rng(0)
    weights = [numpy_helper.from_array(rng.normal(size=s).astype(np.float32), name=n)
               for n, s in (("w", (4, 3, 3, 3)), ("b", (4,)), ("dense", (4, 2)), ("bias", (2,)))]  # fmt: skip
    nodes = [
        helper.make_node("Conv", ["pixels", "w", "b"], ["conv"]),
        helper.make_node(op, ["conv"], ["act"]),
        helper.make_node("GlobalAveragePool", ["act"], ["pool"]),
        helper.make_node("Flatten", ["pool"], ["flat"]),
        helper.make_node("MatMul", ["flat", "dense"], ["mm"]),
        helper.make_node("Add", ["mm", "bias"], ["logits"]),
    ]
    graph = helper.make_graph(
        nodes, "cnn", [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["batch", 3, "h", "w"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])], initializer=weights,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="hand")
    model.ir_version = 10
    onnx.save(model, path)
    return path


def test_a_model_is_described_and_found_runnable_here(tmp_path: Path) -> None:
    path = small_cnn(tmp_path / "cnn.onnx")
    before = (path.read_bytes(), path.stat().st_mtime_ns)
    report = inspect_onnx(path)
    assert report.opset == 18 and report.producer == "hand" and report.runs_here and not report.problems
    (pixels,) = report.inputs  # the initialisers are not inputs
    assert (pixels.name, pixels.dtype, pixels.shape, pixels.dynamic_axes) == (
        "pixels",
        "float32",
        ["batch", 3, "h", "w"],
        [2, 3],
    )
    assert report.outputs[0].shape == ["batch", 2]
    assert report.operators == {"Add": 1, "Conv": 1, "Flatten": 1, "GlobalAveragePool": 1, "MatMul": 1, "Relu": 1}
    assert report.shape_inference["ok"] and report.openvino["unsupported"] == []
    # the convolution and its Relu as one kernel, the MatMul and its Add as one Gemm
    assert report.fusions["added"] == {"Gemm": 1, "com.microsoft.FusedConv": 1}
    assert report.fusions["removed"] == {"Add": 1, "Conv": 1, "MatMul": 1, "Relu": 1} and report.fusions["nodes"] == [
        6,
        4,
    ]
    assert (path.read_bytes(), path.stat().st_mtime_ns) == before  # only read


def test_what_cannot_run_here_is_named(tmp_path: Path) -> None:
    unknown = inspect_onnx(small_cnn(tmp_path / "odd.onnx", op="Frobnicate"))
    assert not unknown.runs_here and unknown.onnxruntime["unsupported"] == ["Frobnicate"]
    assert unknown.openvino["unsupported"] == ["Frobnicate"]
    future = inspect_onnx(small_cnn(tmp_path / "future.onnx", opset=40))
    assert not future.runs_here and "opset 40 is newer than onnxruntime" in future.onnxruntime["problem"]


def test_files_that_are_not_onnx_models_are_refused(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.zeros(2)}, tmp_path / "model.pt")
    with pytest.raises(DataError, match="pickled PyTorch file") as found:
        inspect_onnx(tmp_path / "model.pt")
    assert "torch.onnx.export" in (found.value.hint or "")
    (tmp_path / "junk.onnx").write_text("not a model at all")
    with pytest.raises(DataError, match="is not an ONNX model"):
        inspect_onnx(tmp_path / "junk.onnx")
    with pytest.raises(DataError, match="is a folder"):
        inspect_onnx(tmp_path)
    with pytest.raises(DataError, match="cannot be read"):
        inspect_onnx(tmp_path / "missing.onnx")


def test_the_cli_prints_the_report_and_exits_2_on_what_cannot_run(tmp_path: Path) -> None:
    good = seekforge("import", str(small_cnn(tmp_path / "cnn.onnx")), "--json", cwd=tmp_path)
    assert good.returncode == 0, good.stderr
    found = json.loads(good.stdout)
    assert found["runs_here"] and found["inputs"][0]["shape"] == ["batch", 3, "h", "w"]
    shown = seekforge("import", str(tmp_path / "cnn.onnx"), cwd=tmp_path)
    assert "[batch, 3, h, w]" in shown.stdout and "runs every operator on CPU" in shown.stdout
    assert "fuses: Gemm 1, com.microsoft.FusedConv 1 (6 nodes -> 4)" in shown.stdout
    refused = seekforge("import", str(small_cnn(tmp_path / "future.onnx", opset=40)), cwd=tmp_path)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "error:" in refused.stderr and "opset 40 is newer than onnxruntime" in refused.stderr
    (tmp_path / "junk.onnx").write_text("junk")
    assert seekforge("import", str(tmp_path / "junk.onnx"), cwd=tmp_path).returncode == 2
