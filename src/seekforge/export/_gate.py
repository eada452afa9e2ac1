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
        exit_agreement: For a model with early exit, the share of rows that left at the same layer
            (``max_abs_diff`` is then over those rows); None for other models.
    """

    rows: int
    max_abs_diff: float
    agreement: float
    metric: str
    reference_metric: float
    candidate_metric: float
    failures: tuple[str, ...]
    exit_agreement: float | None = None

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "failures": list(self.failures), "passed": self.passed}


def check_parity(
    reference: torch.Tensor,
    candidate: torch.Tensor,
    target: torch.Tensor,
    *,
    task: str,
    limits: ParityConfig,
    exits: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> ParityRecord:
    """Compare two models' outputs on the same rows against the limits; for a model with early exit,
    ``exits`` holds the layer each row left at in each, which must agree as the predicted classes must."""
    ref, cand = reference.float().numpy(), candidate.float().numpy()
    same = np.ones(len(ref), dtype=bool) if exits is None else (exits[0] == exits[1]).numpy()
    diff = float(np.abs(ref[same] - cand[same]).max()) if ref[same].size else 0.0
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
    exit_agreement = None if exits is None else float(same.mean()) if len(same) else 1.0
    if exit_agreement is not None and exit_agreement < limits.min_agreement:
        failures.append(f"exit layer agreement {exit_agreement:.4f} < {limits.min_agreement:g}")
    return ParityRecord(len(target), diff, agreement, metric, ref_metric, cand_metric, tuple(failures), exit_agreement)
