"""INT8 post-training quantization of an ONNX model with onnxruntime's quantization tools."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from seekforge.core.deps import quiet, require
from seekforge.export._onnx import ExportError, _quiet_exporter
from seekforge.models import collate, num_rows
from seekforge.train import Tensors


def _calibration_reader(base: Any, data: Tensors, names: list[str], batch_size: int = 32) -> Any:
    class Reader(base):  # type: ignore[misc, valid-type]
        """Feeds calibration rows to onnxruntime's calibrator, batch by batch."""

        def __init__(self) -> None:
            self.batches: Iterator[dict[str, Any]] = (
                {name: batch[name].numpy() for name in names}
                for batch in (
                    collate(data.inputs, slice(start, start + batch_size))
                    for start in range(0, num_rows(data.inputs), batch_size)
                )
            )

        def get_next(self) -> dict[str, Any] | None:
            return next(self.batches, None)

    return Reader()


def quantize_int8(
    fp32: Path, out: Path, *, method: str, calibration: Tensors | None, reduce_range: bool = False
) -> str:
    """Write an INT8 version of ``fp32`` to ``out`` and return the method used.

    Args:
        fp32: The float ONNX model.
        out: Where the quantized model goes.
        method: ``static`` (QDQ, activation ranges from ``calibration``), ``dynamic``, or ``auto``
            (static when the graph has convolutions, dynamic otherwise). Dynamic quantization leaves
            convolutions in float: onnxruntime would make them ConvInteger, which has no fused CPU kernel
            (onnxruntime's guidance is static quantization for convolutions) and which earlier releases'
            CPU kernels refused with int8 weights (onnxruntime issues 3130 and 12558).
        calibration: Encoded training rows, for static quantization.
        reduce_range: Store weights in 7 bits, which CPUs without VNNI need to keep accuracy.

    Raises:
        ExportError: Static quantization without calibration rows, or onnxruntime failed.
    """
    onnx = require("onnx", purpose="INT8 export")
    quant = require("onnxruntime.quantization", purpose="INT8 export")
    graph = onnx.load(str(fp32))
    if method == "auto":
        method = "static" if any(node.op_type == "Conv" for node in graph.graph.node) else "dynamic"
    if method == "static" and (calibration is None or len(calibration) == 0):
        raise ExportError(
            "static INT8 quantization needs calibration rows, and the package has none",
            hint="re-create the package with this seekforge version, or pass --quantization dynamic",
        )
    names = [i.name for i in graph.graph.input]
    # onnxruntime's shape inference and quantizer log to their own logger and to the root one (a dimension
    # it cannot broadcast symbolically, a hint to pre-process): said as warnings, not what the user acts on
    with tempfile.TemporaryDirectory() as scratch, _quiet_exporter(), quiet("", "onnxruntime"):
        prepared = Path(scratch) / "prepared.onnx"
        try:
            # in the scratch folder: onnxruntime's shape inference dumps its partial model into the
            # working directory when it cannot finish
            with contextlib.chdir(scratch):
                quant.quant_pre_process(str(fp32.resolve()), str(prepared.resolve()))
        except Exception:  # shape inference is an optimisation; quantize the model as exported instead
            prepared = fp32
        try:
            if method == "static":
                quant.quantize_static(
                    str(prepared),
                    str(out),
                    _calibration_reader(quant.CalibrationDataReader, calibration, names),  # type: ignore[arg-type]
                    quant_format=quant.QuantFormat.QDQ,
                    per_channel=True,
                    activation_type=quant.QuantType.QUInt8,
                    weight_type=quant.QuantType.QInt8,
                    calibrate_method=quant.CalibrationMethod.MinMax,
                    reduce_range=reduce_range,
                )
            else:
                from onnxruntime.quantization.registry import IntegerOpsRegistry

                quant.quantize_dynamic(
                    str(prepared), str(out), weight_type=quant.QuantType.QInt8, reduce_range=reduce_range,
                    op_types_to_quantize=sorted(set(IntegerOpsRegistry) - {"Conv"}),
                )  # fmt: skip
        except Exception as exc:
            raise ExportError(f"onnxruntime could not quantize the model ({method}): {exc}") from exc
    if any(node.op_type == "ConvInteger" for node in onnx.load(str(out)).graph.node):  # never, as asked above
        raise ExportError("the INT8 graph holds ConvInteger, which seekforge never writes for CPUs",
                          hint="export with --quantization static")  # fmt: skip
    return method
