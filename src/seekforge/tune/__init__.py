"""Hyperparameter and architecture search on Optuna: ``seekforge tune``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from seekforge.tune._importance import FANOVA_TRIALS, param_importance
from seekforge.tune.config import TuneConfig

if TYPE_CHECKING:
    from seekforge.tune._study import TuneResult, run_study

__all__ = ["FANOVA_TRIALS", "TuneConfig", "TuneResult", "param_importance", "run_study"]


def __getattr__(name: str) -> Any:  # the study runner needs optuna and torch: imported on first use
    if name in ("TuneResult", "run_study"):
        from seekforge.tune import _study

        return getattr(_study, name)
    raise AttributeError(f"module 'seekforge.tune' has no attribute '{name}'")
