"""Training: the Trainer loop, optimizers, schedules, metrics, checkpoints and distributed runs."""

from seekforge.core.metrics import classification_metrics, regression_metrics
from seekforge.train._distill import Distillation
from seekforge.train._evaluate import evaluate_logits, headline_metric
from seekforge.train._trainer import (
    DistContext,
    StopSignals,
    Tensors,
    Trainer,
    TrainResult,
    checkpoint_path,
    lr_lambda,
    resolve_device,
    stop_record_path,
    task_loss,
)
from seekforge.train.config import OPTIMIZERS, OptimizerConfig, TrainConfig

__all__ = [
    "OPTIMIZERS",
    "DistContext",
    "Distillation",
    "OptimizerConfig",
    "StopSignals",
    "Tensors",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "checkpoint_path",
    "classification_metrics",
    "evaluate_logits",
    "headline_metric",
    "lr_lambda",
    "regression_metrics",
    "resolve_device",
    "stop_record_path",
    "task_loss",
]
