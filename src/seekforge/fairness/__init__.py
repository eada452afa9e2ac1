"""Fairness: a model's metrics within each group of one or more sensitive columns, with bootstrap
intervals, and the largest difference and ratio between groups (fairlearn's ``MetricFrame``); the gate
that fails a run whose groups differ by more than the recipe allows.

Example:
    >>> from seekforge.fairness import group_metrics
    >>> report = group_metrics(frame[["gender"]], truth, predicted, task="classification", classes=["no", "yes"])
    >>> report.difference["selection_rate"]
"""

from seekforge.fairness._gate import fairness_gate, group_name
from seekforge.fairness._groups import MIN_GROUP_ROWS, GroupMetrics, group_metrics
from seekforge.fairness._report import fairness_html
from seekforge.fairness.config import GROUP_METRICS, FairnessConfig, metric_kind

__all__ = [
    "GROUP_METRICS",
    "MIN_GROUP_ROWS",
    "FairnessConfig",
    "GroupMetrics",
    "fairness_gate",
    "fairness_html",
    "group_metrics",
    "group_name",
    "metric_kind",
]
