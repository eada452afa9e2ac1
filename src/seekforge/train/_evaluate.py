"""One evaluation for every task: the full metrics of a model's outputs, and the headline metric that
gates, budgets and searches compare (accuracy, or R2 for regression)."""

from __future__ import annotations

from typing import Any

import torch

from seekforge.core.metrics import classification_metrics, regression_metrics
from seekforge.data import Preprocessor
from seekforge.runtime import softmax


def evaluate_logits(pre: Preprocessor, logits: torch.Tensor, target: torch.Tensor) -> dict[str, Any]:
    """Full metrics (confusion matrix included) from model outputs and encoded targets."""
    if pre.task == "regression":
        truth = pre.decode_target(target)
        return {"rows": len(truth), **regression_metrics(truth, pre.decode_target(logits))}
    proba = pre.decode(logits)[1]
    assert proba is not None
    return {"rows": len(target), **classification_metrics(target.numpy(), proba)}


def headline_metric(outputs: torch.Tensor, target: torch.Tensor, *, task: str) -> tuple[str, float]:
    """(name, value) of the task's headline metric: accuracy, or R2 for regression."""
    values, truth = outputs.float().numpy(), target.numpy()
    if task == "regression":
        return "r2", float(regression_metrics(truth, values.reshape(-1))["r2"])
    return "accuracy", float(classification_metrics(truth, softmax(values), full=False)["accuracy"])
