"""Knowledge distillation: a loss that blends the labels with a teacher's softened outputs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    #: the teacher's outputs on the training rows when they are known already (the rows it labelled)
    outputs: torch.Tensor | None = None

    def __post_init__(self) -> None:
        self.teacher.eval().requires_grad_(False)
        self._outputs: torch.Tensor | None = None

    def remember(self, data: Any, *, batch_size: int, device: torch.device | str = "cpu") -> None:
        """Run the teacher once over every training row (``Tensors``): in eval mode its outputs do not
        change between epochs, so each batch then looks them up instead of running the teacher again."""
        from seekforge.models import infer, num_rows

        if self.outputs is not None:
            if len(self.outputs) != num_rows(data.inputs):
                raise ValueError(f"{len(self.outputs)} teacher outputs known for {num_rows(data.inputs)} rows")
            self._outputs = self.outputs.to(device)
            return
        self._outputs = infer(self.teacher, data.inputs, batch_size=batch_size, device=device).to(device)

    def loss(
        self,
        logits: torch.Tensor,
        batch: dict[str, torch.Tensor],
        hard: torch.Tensor,
        task: str,
        *,
        rows: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The blended loss of a batch; ``rows`` are its indices into the rows given to :meth:`remember`."""
        if self._outputs is not None and rows is not None:
            guide = self._outputs[rows.to(self._outputs.device)].float()
        else:
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
