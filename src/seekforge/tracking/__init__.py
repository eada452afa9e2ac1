"""Tracking: a run logged where a team already looks (MLflow), beside its own run folder.

Example:
    >>> with MlflowRun(config, experiment="credit", run_name="20261204-101500", run_dir=folder) as tracked:
    ...     tracked.params(recipe.to_dict())
    ...     fit(..., epoch_hook=tracked.epoch)
    ...     tracked.finish(history, metrics, package=package, model_code=code)
"""

from seekforge.tracking._mlflow import MlflowRun, TrackingUnavailable, flatten
from seekforge.tracking.config import MlflowConfig, TrackingConfig

__all__ = ["MlflowConfig", "MlflowRun", "TrackingConfig", "TrackingUnavailable", "flatten"]
