"""Knowledge distillation: a loss that blends the labels with a teacher's softened outputs."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass
class Distillation:
    """A teacher for :class:`~seekforge.train.Trainer`: each batch's loss becomes
    ``alpha * soft + (1 - alpha) * hard``.

    For classifiers ``soft`` is the KL divergence between the teacher's and the student's class
    probabilities at ``temperature``, scaled by its square so its gradients keep their size (Hinton et
    al., 2015); for regression it is the mean squared difference from the teacher's outputs.
    """

    teacher: nn.Module
    temperature: float = 4.0
    alpha: float = 0.7

    def __post_init__(self) -> None:
        self.teacher.eval().requires_grad_(False)

    def loss(self, logits: torch.Tensor, batch: dict[str, torch.Tensor], hard: torch.Tensor, task: str) -> torch.Tensor:
        with torch.no_grad():
            guide = self.teacher(batch).float()
        if task == "regression":
            soft = F.mse_loss(logits.reshape(-1), guide.reshape(-1))
        else:
            t = self.temperature
            soft = F.kl_div(
                F.log_softmax(logits / t, dim=1),
                F.log_softmax(guide / t, dim=1),
                log_target=True,
                reduction="batchmean",
            ) * (t * t)
        return self.alpha * soft + (1.0 - self.alpha) * hard
