"""The parity gate: an exported model must agree with the torch model on held-out rows, both numerically
and at the task's level, or it is not written."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from seekforge.export.config import ParityConfig
from seekforge.train import headline_metric


@dataclass(frozen=True)
class ParityRecord:
    """How an exported model compares with the torch model on ``rows`` held-out rows.

    Attributes:
        max_abs_diff: Largest difference of any output value.
        agreement: Share of rows with the same predicted class (1.0 for regression).
        metric: Headline metric name (``accuracy`` or ``r2``).
        reference_metric: Its value for the torch model.
        candidate_metric: Its value for the exported model.
        failures: Which limits were broken, in words; empty when the gate passed.
    """

    rows: int
    max_abs_diff: float
    agreement: float
    metric: str
    reference_metric: float
    candidate_metric: float
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "failures": list(self.failures), "passed": self.passed}


def check_parity(
    reference: torch.Tensor, candidate: torch.Tensor, target: torch.Tensor, *, task: str, limits: ParityConfig
) -> ParityRecord:
    """Compare two models' outputs on the same rows against the limits."""
    ref, cand = reference.float().numpy(), candidate.float().numpy()
    diff = float(np.abs(ref - cand).max()) if ref.size else 0.0
    metric, ref_metric = headline_metric(reference, target, task=task)
    cand_metric = headline_metric(candidate, target, task=task)[1]
    agreement = 1.0 if task == "regression" else float((ref.argmax(1) == cand.argmax(1)).mean())
    failures = []
    if not np.isfinite(cand).all():
        failures.append("the exported model outputs NaN or infinity")
    elif limits.max_abs_diff is not None and diff > limits.max_abs_diff:
        failures.append(f"max abs difference {diff:.3g} > {limits.max_abs_diff:g}")
    if agreement < limits.min_agreement:
        failures.append(f"predicted class agreement {agreement:.4f} < {limits.min_agreement:g}")
    if not np.isfinite(cand_metric) and np.isfinite(ref_metric):
        failures.append(f"{metric} of the exported model is not a number")
    elif ref_metric - cand_metric > limits.max_metric_drop:
        failures.append(f"{metric} drops {ref_metric - cand_metric:.4f} > {limits.max_metric_drop:g}")
    return ParityRecord(len(target), diff, agreement, metric, ref_metric, cand_metric, tuple(failures))
