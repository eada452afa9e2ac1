"""Configuration of exports and of the parity gate every export must pass."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from seekforge.core.config import BaseConfig


class ParityConfig(BaseConfig):
    """How close an exported model must stay to the torch model on the package's held-out rows.

    Attributes:
        max_abs_diff: Largest allowed difference of any output value (logits, or the scaled regression
            output); None skips the check (quantized models move every value a little).
        min_agreement: Smallest allowed share of rows whose predicted class is the same (classifiers).
        max_metric_drop: Largest allowed drop of the headline metric (accuracy, or R2) on those rows.
    """

    max_abs_diff: Annotated[float, Field(gt=0)] | None = 1e-3
    min_agreement: Annotated[float, Field(ge=0, le=1)] = 0.999
    max_metric_drop: Annotated[float, Field(ge=0)] = 0.001


#: The gate each precision must pass unless the caller sets its own.
DEFAULT_LIMITS = {
    "fp32": ParityConfig(),
    "int8": ParityConfig(max_abs_diff=None, min_agreement=0.97, max_metric_drop=0.01),
}


class ExportConfig(BaseConfig):
    """What to export.

    ``precision`` fp32 keeps the model's own numbers; int8 quantizes it with onnxruntime: weights and
    activations from calibration rows (static, QDQ) for convolutional models, weights ahead and
    activations at run time (dynamic) for the others, unless ``quantization`` says which.
    """

    format: Literal["onnx"] = "onnx"
    precision: Literal["fp32", "int8"] = "fp32"
    quantization: Literal["auto", "dynamic", "static"] = "auto"
    opset: Annotated[int, Field(ge=17, le=23)] = 18
    parity: ParityConfig | None = None

    @property
    def limits(self) -> ParityConfig:
        return self.parity or DEFAULT_LIMITS[self.precision]

    @property
    def variant(self) -> str:
        """The export's name in the package: ``onnx`` (fp32) or ``onnx-int8``."""
        return "onnx" if self.precision == "fp32" else f"onnx-{self.precision}"
