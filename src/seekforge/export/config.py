"""Configuration of exports, the table of export variants, and the parity gate every export must pass."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from seekforge.core.config import BaseConfig
from seekforge.core.variants import PRECISIONS, VARIANTS, Variant


class ParityConfig(BaseConfig):
    """How close an exported model must stay to the torch model on the package's held-out rows.

    Attributes:
        max_abs_diff: Largest allowed difference of any output value (logits, or the scaled regression
            output); None skips the check (reduced precisions move every value a little).
        min_agreement: Smallest allowed share of rows whose predicted class is the same (classifiers).
        max_metric_drop: Largest allowed drop of the headline metric (accuracy, or R2) on those rows.
    """

    max_abs_diff: Annotated[float, Field(gt=0)] | None = 1e-3
    min_agreement: Annotated[float, Field(ge=0, le=1)] = 0.999
    max_metric_drop: Annotated[float, Field(ge=0)] = 0.001


#: The gate each precision must pass unless the caller sets its own.
DEFAULT_LIMITS = {
    "fp32": ParityConfig(),
    "fp16": ParityConfig(max_abs_diff=None, min_agreement=0.99, max_metric_drop=0.005),
    "bf16": ParityConfig(max_abs_diff=None, min_agreement=0.98, max_metric_drop=0.01),
    "int8": ParityConfig(max_abs_diff=None, min_agreement=0.97, max_metric_drop=0.01),
}


class ExportConfig(BaseConfig):
    """What to export.

    ``format`` onnx runs on onnxruntime; openvino writes an OpenVINO IR. ``precision`` fp32 keeps the
    model's own numbers; fp16 (ONNX) halves the weights for GPU targets; bf16 (OpenVINO) computes in
    bfloat16 where the CPU supports it; int8 quantizes: with onnxruntime, weights and activations from
    calibration rows (static, QDQ) for convolutional models and weights ahead, activations at run time
    (dynamic) for the others, unless ``quantization`` says which; a package made by quantization-aware
    training (``seekforge compress --quantize qat``) exports its own trained quantizers (``qat``); with OpenVINO, NNCF's post-training
    quantization on the calibration rows. ``optimize_graph`` (ONNX fp32) saves onnxruntime's graph
    optimisations (operator fusion, constant folding) in the file.

    ``reduce_range`` (int8 post-training quantization) stores weights in 7 bits: onnxruntime's
    ``reduce_range`` and NNCF's overflow fix on every layer. CPUs without VNNI multiply unsigned 8-bit
    activations by signed 8-bit weights in 16-bit sums that saturate; 7-bit weights cannot. ``auto`` turns
    it on where this CPU has no VNNI (``seekforge env``); turn it ``on`` when exporting on a VNNI machine
    for servers without it.
    """

    format: Literal["onnx", "openvino"] = "onnx"
    precision: Literal["fp32", "fp16", "bf16", "int8"] = "fp32"
    quantization: Literal["auto", "dynamic", "static", "qat"] = "auto"
    optimize_graph: bool = False
    reduce_range: Literal["auto", "on", "off"] = "auto"
    opset: Annotated[int, Field(ge=17, le=23)] = 18
    parity: ParityConfig | None = None

    @model_validator(mode="after")
    def _combination(self) -> ExportConfig:
        if self.precision not in PRECISIONS[self.format]:
            raise ValueError(
                f"precision {self.precision} is not available for {self.format}; "
                f"choose one of {', '.join(PRECISIONS[self.format])}"
            )
        if self.optimize_graph and (self.format, self.precision) != ("onnx", "fp32"):
            raise ValueError("optimize_graph applies to ONNX fp32 exports (int8 exports are optimised already)")
        if self.quantization != "auto" and (self.format, self.precision) != ("onnx", "int8"):
            raise ValueError("quantization applies to ONNX int8 exports (OpenVINO int8 uses NNCF's own)")
        if self.reduce_range != "auto" and (self.precision != "int8" or self.quantization == "qat"):
            raise ValueError("reduce_range applies to post-training int8 exports (qat keeps its trained ranges)")
        return self

    @property
    def seven_bit_weights(self) -> bool:
        """Whether int8 weights are stored in 7 bits: ``reduce_range``, or on ``auto`` this CPU's lack of VNNI."""
        if self.reduce_range != "auto":
            return self.reduce_range == "on"
        from seekforge.core.hardware import hardware

        return not hardware().vnni

    @classmethod
    def for_variant(cls, variant: Variant) -> ExportConfig:
        """The configuration that builds ``variant``, with its default gate."""
        return cls(format=variant.format, precision=variant.precision, optimize_graph=variant.graph_optimized)  # type: ignore[arg-type]

    @property
    def limits(self) -> ParityConfig:
        return self.parity or DEFAULT_LIMITS[self.precision]

    @property
    def variant(self) -> Variant:
        """The export's entry in :data:`VARIANTS`."""
        if self.optimize_graph:
            return VARIANTS["onnx-optimized"]
        return VARIANTS[self.format if self.precision == "fp32" else f"{self.format}-{self.precision}"]
