"""Training: the Trainer loop, optimizers, schedules, metrics, checkpoints and distributed runs."""

from seekforge.core.metrics import classification_metrics, regression_metrics
from seekforge.train._distill import Distillation
from seekforge.train._evaluate import evaluate_logits, headline_metric
from seekforge.train._memory import BUDGET_SHARE, available_bytes, training_bytes
from seekforge.train._trainer import (
    TIMING_KEYS,
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
    untimed,
)
from seekforge.train.config import OPTIMIZERS, OptimizerConfig, TrainConfig

__all__ = [
    "BUDGET_SHARE",
    "OPTIMIZERS",
    "TIMING_KEYS",
    "DistContext",
    "Distillation",
    "OptimizerConfig",
    "StopSignals",
    "Tensors",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "available_bytes",
    "checkpoint_path",
    "classification_metrics",
    "evaluate_logits",
    "headline_metric",
    "lr_lambda",
    "regression_metrics",
    "resolve_device",
    "stop_record_path",
    "task_loss",
    "training_bytes",
    "untimed",
]
