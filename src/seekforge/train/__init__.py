"""Training: the Trainer loop, optimizers, schedules, metrics, checkpoints and distributed runs."""

from seekforge.core.metrics import classification_metrics, regression_metrics
from seekforge.train._distill import Distillation
from seekforge.train._trainer import DistContext, Tensors, Trainer, TrainResult
from seekforge.train.config import OPTIMIZERS, OptimizerConfig, TrainConfig

__all__ = [
    "OPTIMIZERS",
    "DistContext",
    "Distillation",
    "OptimizerConfig",
    "Tensors",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "classification_metrics",
    "regression_metrics",
]
