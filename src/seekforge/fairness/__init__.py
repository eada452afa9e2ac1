"""Fairness: a model's metrics within each group of one or more sensitive columns, with bootstrap
intervals, and the largest difference and ratio between groups (fairlearn's ``MetricFrame``).

Example:
    >>> from seekforge.fairness import group_metrics
    >>> report = group_metrics(frame[["gender"]], truth, predicted, task="classification", classes=["no", "yes"])
    >>> report.difference["selection_rate"]
"""

from seekforge.fairness._groups import GroupMetrics, group_metrics

__all__ = ["GroupMetrics", "group_metrics"]
