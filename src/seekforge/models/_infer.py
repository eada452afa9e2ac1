"""Batching helpers shared by training, evaluation and prediction."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from seekforge.core.batch import trim_tokens


def collate(inputs: dict[str, torch.Tensor], index: torch.Tensor | slice) -> dict[str, torch.Tensor]:
    """Rows ``index`` of every input tensor; token tensors are trimmed to the longest row in the batch (each
    text input to its own)."""
    return trim_tokens({key: value[index] for key, value in inputs.items()})


def num_rows(inputs: dict[str, torch.Tensor]) -> int:
    return int(next(iter(inputs.values())).shape[0])


def for_backend(model: nn.Module, backend: str) -> nn.Module:
    """``model`` as the torch backend ``backend`` runs it: ``torch-channels-last`` puts its 4-D weights in
    channels-last (NHWC) memory order, in which its convolutions then compute (the same numbers, in another
    order); ``torch`` leaves it as built."""
    return model.to(memory_format=torch.channels_last) if backend == "torch-channels-last" else model


@torch.inference_mode()
def infer(
    model: nn.Module,
    inputs: dict[str, torch.Tensor],
    *,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    forward: Callable[[dict[str, torch.Tensor]], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Logits for every row of ``inputs``, in order, computed in eval mode batch by batch (float32, CPU);
    ``forward`` (one of the model's methods, such as a text model's ``embed_text``) instead of the model's own."""
    call = forward or model
    was_training = model.training
    model.eval()
    outputs = []
    rows = num_rows(inputs)
    for start in range(0, rows, batch_size):
        batch = collate(inputs, slice(start, start + batch_size))
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        outputs.append(call(batch).float().cpu())
    model.train(was_training)
    if not outputs:
        return torch.empty(0)
    return torch.cat(outputs)
