"""Monitoring: reference sketches of the training data, drift tests against them, and
``seekforge monitor`` over a served package's prediction log.

Example:
    >>> from seekforge.monitor import monitor_package
    >>> result = monitor_package("runs/breast_cancer/<stamp>/package", "predictions.db", window_seconds=3600)
    >>> result.drift, result.current.drift.drifted_features
"""

from seekforge.monitor._drift import DriftReport, FeatureDrift, drift_report, prediction_drift
from seekforge.monitor._embedding import EmbeddingDrift
from seekforge.monitor._notify import notify, verdict_message
from seekforge.monitor._prometheus import check_targets, drift_registry, push_drift, write_drift_textfile
from seekforge.monitor._reference import build_reference, with_embeddings
from seekforge.monitor._run import MonitorResult, Window, labelled_log_rows, monitor_package
from seekforge.monitor.config import MonitorConfig

__all__ = [
    "DriftReport",
    "EmbeddingDrift",
    "FeatureDrift",
    "MonitorConfig",
    "MonitorResult",
    "Window",
    "build_reference",
    "check_targets",
    "drift_registry",
    "drift_report",
    "labelled_log_rows",
    "monitor_package",
    "notify",
    "prediction_drift",
    "push_drift",
    "verdict_message",
    "with_embeddings",
    "write_drift_textfile",
]
