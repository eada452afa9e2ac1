"""What an ONNX file is before anything runs it: its opset and producer, its inputs and outputs (with the
axes left dynamic), the operators it uses, whether shape inference goes through, and whether onnxruntime
and OpenVINO can run every one of its operators on this machine (each asked, not guessed from a table).
The file is only read."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from seekforge.core.deps import require
from seekforge.core.errors import DataError, first_line
from seekforge.export import fusions_of, operator_counts

#: the first bytes of a file torch.save wrote (a zip archive, or an old-style pickle)
_PICKLE_STARTS = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


@dataclass(frozen=True)
class TensorSpec:
    """A graph input or output: its name, element type and shape (a number, a symbolic name, or None for
    an axis the file leaves unknown)."""

    name: str
    dtype: str
    shape: list[int | str | None]

    @property
    def dynamic_axes(self) -> list[int]:
        """The axes without a fixed size, the first (the batch) left out."""
        return [i for i, size in enumerate(self.shape) if i > 0 and not isinstance(size, int)]


@dataclass
class OnnxReport:
    """Everything :func:`inspect_onnx` found; ``runs_here`` says whether onnxruntime runs it as it is."""

    path: str
    bytes: int
    ir_version: int
    opsets: dict[str, int]
    producer: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    operators: dict[str, int]
    shape_inference: dict[str, Any]
    onnxruntime: dict[str, Any]
    openvino: dict[str, Any]
    fusions: dict[str, Any] = field(default_factory=dict)
    external_data: bool = False  # weights in files beside the model, which a package does not carry
    problems: list[str] = field(default_factory=list)

    @property
    def opset(self) -> int:
        return self.opsets.get("", self.opsets.get("ai.onnx", 0))

    @property
    def runs_here(self) -> bool:
        return bool(self.onnxruntime.get("runs"))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "opset": self.opset, "runs_here": self.runs_here}


def inspect_onnx(path: str | Path) -> OnnxReport:
    """Read ``path`` as an ONNX model and say what it is and what can run it here.

    Raises:
        DataError: Not an ONNX model (with what it looks like instead: a pickled torch checkpoint is named
            as such, with the way to make a ``.pt2``).
    """
    onnx = require("onnx", purpose="Importing an ONNX model")
    path = Path(path)
    head = _head(path)
    if head.startswith(_PICKLE_STARTS):
        raise DataError(
            f"{path} is a pickled PyTorch file (torch.save), not ONNX; seekforge never unpickles a model file "
            "(it can run any code)",
            hint="load it where its code is, export it to ONNX there (torch.onnx.export(model, example_inputs, "
            "'model.onnx', dynamo=True)), then import the .onnx file",
        )
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends: the bytes are not a ModelProto
        raise DataError(f"{path} is not an ONNX model ({type(exc).__name__}: {first_line(exc)})",
                        hint="give an .onnx file (torch.onnx.export, tf2onnx, skl2onnx write one)") from None  # fmt: skip
    graph = model.graph
    if not graph.node:
        raise DataError(f"{path} is not an ONNX model: it holds no graph", hint="give an .onnx file with a model in it")
    opsets = {imp.domain: int(imp.version) for imp in model.opset_import}
    initialisers = {init.name for init in graph.initializer}
    report = OnnxReport(
        path=str(path),
        bytes=path.stat().st_size,
        ir_version=int(model.ir_version),
        opsets=opsets,
        producer=" ".join(p for p in (model.producer_name, model.producer_version) if p),
        inputs=[_spec(v) for v in graph.input if v.name not in initialisers],
        outputs=[_spec(v) for v in graph.output],
        operators=operator_counts(model),
        shape_inference=_shape_inference(onnx, model),
        onnxruntime=_onnxruntime(path, opsets),
        openvino=_openvino(path),
    )
    report.external_data = any(i.data_location == onnx.TensorProto.EXTERNAL for i in graph.initializer)
    if report.onnxruntime["runs"]:  # what onnxruntime's optimiser fuses in it
        try:
            report.fusions = fusions_of(path)
        except Exception as exc:  # its optimiser failing is a fact of the report, not a failure of it
            report.problems.append(f"onnxruntime's graph optimiser failed on it: {first_line(exc)}")
    else:
        report.problems.append(f"onnxruntime cannot run it: {report.onnxruntime['problem']}")
    if not report.shape_inference["ok"]:
        report.problems.append(f"shape inference failed: {report.shape_inference['problem']}")
    return report


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(8)
    except IsADirectoryError:
        raise DataError(f"{path} is a folder, not an ONNX file",
                        hint="give the .onnx file (a Hugging Face folder: optimum-cli export onnx --model FOLDER out/)") from None  # fmt: skip
    except OSError as exc:
        raise DataError(f"{path} cannot be read: {exc.strerror or exc}") from None


def _spec(value: Any) -> TensorSpec:
    onnx = require("onnx", purpose="Importing an ONNX model")
    kind = value.type
    if not kind.HasField("tensor_type"):
        return TensorSpec(value.name, kind.WhichOneof("value") or "unknown", [])
    tensor = kind.tensor_type
    shape: list[int | str | None] = []
    for dim in tensor.shape.dim:
        if dim.HasField("dim_value") and dim.dim_value > 0:
            shape.append(int(dim.dim_value))
        else:
            shape.append(dim.dim_param or None)
    dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.elem_type).name if tensor.elem_type else "unknown"
    return TensorSpec(value.name, dtype, shape)


def _shape_inference(onnx: Any, model: Any) -> dict[str, Any]:
    """Whether ONNX's own strict shape inference goes through, and how many intermediate values it typed."""
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        return {"ok": True, "problem": None, "typed_values": len(inferred.graph.value_info)}
    except Exception as exc:  # onnx's InferenceError, and a model too large for one protobuf
        return {"ok": False, "problem": first_line(exc), "typed_values": 0}


def _onnxruntime(path: Path, opsets: dict[str, int]) -> dict[str, Any]:
    """Whether onnxruntime (CPU) builds a session for the file, and if not, why: an opset newer than it
    knows, or the operators it has no kernel for."""
    ort = require("onnxruntime", purpose="Importing an ONNX model")
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    answer: dict[str, Any] = {"version": ort.__version__, "runs": False, "problem": None, "unsupported": []}
    try:
        ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/NotImplemented types
        text = str(exc)
        answer["problem"] = first_line(exc).split("failed:")[-1].strip()
        newer, till = re.search(r"Opset (\d+) is under development", text), re.search(r"till opset (\d+)", text)
        if newer:
            answer["problem"] = (f"opset {newer.group(1)} is newer than onnxruntime {ort.__version__} supports"
                                 + (f" (up to {till.group(1)})" if till else ""))  # fmt: skip
        answer["unsupported"] = sorted(set(re.findall(r"(?:No Op registered for|implementation for) (\w+)", text)))
        return answer
    answer["runs"] = True
    return answer


def _openvino(path: Path) -> dict[str, Any]:
    """Whether OpenVINO reads the file and which of its operations its CPU plugin cannot run."""
    try:
        import openvino as ov
    except ImportError:
        return {"available": False, "problem": "OpenVINO is not installed (pip install openvino)", "unsupported": []}
    answer: dict[str, Any] = {"available": True, "version": ov.get_version(), "problem": None, "unsupported": []}
    try:
        core = ov.Core()
        model = core.read_model(str(path))
        supported = core.query_model(model, "CPU")
        answer["unsupported"] = sorted({op.get_type_name() for op in model.get_ops()
                                        if op.get_friendly_name() not in supported})  # fmt: skip
    except Exception as exc:  # its frontend names the operators it cannot convert
        text = str(exc)
        missing = re.search(r"No conversion rule found for operations: ([^\n]+)", text)
        if missing:
            answer["unsupported"] = sorted({op.strip().rsplit("-", 1)[0] for op in missing.group(1).split(",")})
            answer["problem"] = f"no conversion for {', '.join(answer['unsupported'])}"
        else:
            answer["problem"] = next((line.strip() for line in reversed(text.splitlines()) if line.strip()), text)[:400]
    return answer
