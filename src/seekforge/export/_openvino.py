"""OpenVINO IR export from the ONNX graph, INT8 with NNCF, and a runner for the IR.

The fp32 and bf16 IRs keep fp32 constants; the int8 IR stores its remaining float constants (scales,
biases, norms; not quantization ranges) in fp16. The
precision a model computes in is set when it is compiled: this CPU would otherwise pick bf16 on its own,
so f32 is asked for explicitly.
"""

from __future__ import annotations

import contextlib
import logging
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seekforge.core.deps import require
from seekforge.core.hardware import hardware
from seekforge.export._onnx import ExportError, _quiet_exporter
from seekforge.models import collate, is_token_key, num_rows
from seekforge.train import Tensors

#: seekforge precision -> OpenVINO inference precision hint
HINTS = {"fp32": "f32", "bf16": "bf16", "int8": "f32"}


def export_openvino(
    onnx_path: Path, xml: Path, *, precision: str, calibration: Tensors | None, reduce_range: bool = False
) -> dict[str, Any]:
    """Convert an ONNX model (encoded inputs) to OpenVINO IR at ``xml`` (and its ``.bin``).

    int8 quantizes with NNCF's post-training quantization on the calibration rows; ``reduce_range``
    applies NNCF's overflow fix (7-bit weights) to every layer rather than the first only, which CPUs
    without VNNI need to keep accuracy.

    Returns:
        What to record about the conversion.

    Raises:
        ExportError: OpenVINO or NNCF failed, int8 without calibration rows, or bf16 on a CPU without bf16
            (the gate could not judge bf16 numbers there).
    """
    hw = hardware()
    if precision == "bf16" and not hw.bf16:
        raise ExportError(
            f"OpenVINO bf16 computes in bfloat16 only on a CPU with AVX-512 BF16 or AMX; this one ({hw.isa}) would "
            "compute in f32, so the parity gate could not judge the bf16 model a bf16 CPU would run",
            hint="export bf16 on the machine that will serve it, or use --precision fp32 or int8 here",
        )
    ov = require("openvino", purpose="OpenVINO export")
    try:
        model = ov.convert_model(str(onnx_path))
    except Exception as exc:  # OpenVINO raises its own RuntimeError subclasses
        raise ExportError(f"OpenVINO {ov.__version__} could not convert the ONNX model: {exc}") from exc
    record: dict[str, Any] = {"openvino": ov.__version__}
    if precision == "int8":
        if calibration is None or len(calibration) == 0:
            raise ExportError(
                "OpenVINO INT8 needs calibration rows, and the package has none",
                hint="re-create the package with this seekforge version",
            )
        nncf = require("nncf", purpose="OpenVINO INT8 export")
        advanced = require("nncf.quantization.advanced_parameters", purpose="OpenVINO INT8 export")
        overflow = advanced.OverflowFix.ENABLE if reduce_range else advanced.OverflowFix.FIRST_LAYER
        names = [port.get_any_name() for port in model.inputs]
        batches = [_feeds(batch, names) for batch in _batches(calibration.inputs, 32)]
        transformer = any(map(is_token_key, names))
        nncf_log = logging.getLogger("nncf")
        level = nncf_log.level
        nncf_log.setLevel(logging.ERROR)
        try:
            # NNCF draws its progress bars on stdout, which is the command's output: move them to stderr
            with _quiet_exporter(), contextlib.redirect_stdout(sys.stderr):
                model = nncf.quantize(
                    model,
                    nncf.Dataset(batches),
                    subset_size=len(batches),  # items of the data set: batches
                    model_type=nncf.ModelType.TRANSFORMER if transformer else None,
                    advanced_parameters=advanced.AdvancedQuantizationParameters(overflow_fix=overflow),
                )
        except Exception as exc:
            raise ExportError(f"NNCF could not quantize the model: {exc}") from exc
        finally:
            nncf_log.setLevel(level)
        record["quantization"] = "nncf-ptq"
        record["overflow_fix"] = overflow.value
        record["fp16_constants"] = _store_float_constants_in_fp16(ov, model)
    ov.save_model(model, str(xml), compress_to_fp16=False)
    return record


def _store_float_constants_in_fp16(ov: Any, model: Any) -> int:
    """Store the float constants an int8 model keeps (dequantization scales, biases, norms) in fp16,
    converted back to f32 when the model is compiled; quantization ranges stay exact. The parity gate
    judges the result. Returns how many constants were stored so.

    ``save_model(compress_to_fp16=True)`` leaves the scales NNCF writes in f32; on MiniLM the word
    embedding's per-row scales alone are 122 KB.
    """
    import numpy as np

    opset = ov.opset13
    count = 0
    for op in model.get_ordered_ops():
        if op.get_type_name() != "Constant" or op.get_element_type() != ov.Type.f32:
            continue
        shape = list(op.get_output_shape(0))
        targets = list(op.output(0).get_target_inputs())
        if int(np.prod(shape)) < 16 or any(t.get_node().get_type_name() == "FakeQuantize" for t in targets):
            continue
        stored = opset.convert(opset.constant(op.get_data().astype(np.float16)), ov.Type.f32)
        for target in targets:
            target.replace_source_output(stored.output(0))
        count += 1
    return count


class OpenVinoRunner:
    """Runs an OpenVINO IR on the CPU on batch dicts from the preprocessor."""

    def __init__(self, xml: Path, *, precision: str = "fp32", threads: int | None = None) -> None:
        ov = require("openvino", purpose="the openvino backend")
        # without bf16 in hardware OpenVINO computes a bf16 model in f32 (and under an ISA cap it would fail)
        hint = HINTS[precision] if precision != "bf16" or hardware().bf16 else "f32"
        config: dict[str, Any] = {"INFERENCE_PRECISION_HINT": hint, "PERFORMANCE_HINT": "LATENCY"}
        if threads:
            config["INFERENCE_NUM_THREADS"] = threads
        try:
            self.compiled = ov.Core().compile_model(str(xml), "CPU", config)
        except Exception as exc:
            raise ExportError(f"OpenVINO {ov.__version__} cannot load {xml}: {exc}") from exc
        self.path = xml
        self.names = [port.get_any_name() for port in self.compiled.inputs]
        self.request = self.compiled.create_infer_request()
        self.lock = threading.Lock()  # one request serves one call at a time

    def __call__(self, inputs: dict[str, torch.Tensor], *, batch_size: int = 256) -> torch.Tensor:
        """Logits for every row of ``inputs``, in order."""
        missing = [name for name in self.names if name not in inputs]
        if missing:
            raise ExportError(f"the OpenVINO model needs inputs {missing} that the preprocessor did not produce")
        outputs = []
        for batch in _batches(inputs, batch_size):
            try:
                with self.lock:
                    outputs.append(np.array(self.request.infer(_feeds(batch, self.names))[0], copy=True))
            except Exception as exc:
                raise ExportError(f"OpenVINO failed to run {self.path}: {exc}") from exc
        return torch.from_numpy(np.concatenate(outputs)) if outputs else torch.empty(0)


def _batches(inputs: dict[str, torch.Tensor], size: int) -> list[dict[str, torch.Tensor]]:
    return [collate(inputs, slice(start, start + size)) for start in range(0, num_rows(inputs), size)]


def _feeds(batch: dict[str, torch.Tensor], names: list[str]) -> dict[str, np.ndarray]:
    return {name: batch[name].numpy() for name in names}
