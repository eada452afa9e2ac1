"""Configuration of exports and of the parity gate every export must pass."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from seekforge.core.config import BaseConfig


class ParityConfig(BaseConfig):
    """How close an exported model must stay to the torch model on the package's held-out rows.

    Attributes:
        max_abs_diff: Largest allowed difference of any output value (logits, or the scaled regression
            output).
        min_agreement: Smallest allowed share of rows whose predicted class is the same (classifiers).
        max_metric_drop: Largest allowed drop of the headline metric (accuracy, or R2) on those rows.
    """

    max_abs_diff: Annotated[float, Field(gt=0)] = 1e-3
    min_agreement: Annotated[float, Field(ge=0, le=1)] = 0.999
    max_metric_drop: Annotated[float, Field(ge=0)] = 0.001


class ExportConfig(BaseConfig):
    """What to export.

    ``precision`` is fp32 for now: the model's own numbers, so the gate can hold them to ``max_abs_diff``.
    """

    format: Literal["onnx"] = "onnx"
    precision: Literal["fp32"] = "fp32"
    opset: Annotated[int, Field(ge=17, le=23)] = 18
    parity: ParityConfig = ParityConfig()
