"""Each layer's weights and gradients, summarised per epoch into ``weights.jsonl``: a histogram of every
trained parameter tensor's values (``BINS`` equal bins between its minimum and maximum), its mean, standard
deviation and norm, and the norm of its gradient averaged over the steps measured in the epoch. One line per
epoch written, so a watcher sees the distributions move while the run trains."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seekforge.core.io import write_text_atomic

#: equal-width bins per tensor, and at most this many tensors per line (a model's first ones, in order)
BINS = 32
MAX_TENSORS = 256
FILE = "weights.jsonl"
#: values counted at once (float32 counts are exact up to 2^24)
CHUNK = 1 << 22


def gradient_norms(params: list[tuple[str, nn.Parameter]]) -> torch.Tensor:
    """Each parameter's gradient norm now (0 where it has none), one value per parameter."""
    zero = torch.zeros((), device=params[0][1].device) if params else torch.zeros(())
    return torch.stack([torch.linalg.vector_norm(p.grad.detach()).float() if p.grad is not None else zero
                        for _, p in params]) if params else torch.zeros(0)  # fmt: skip


def epoch_record(epoch: int, params: list[tuple[str, nn.Parameter]], grad_sum: torch.Tensor | None,
                 grad_steps: int) -> dict[str, Any]:  # fmt: skip
    """The line for ``epoch``: per tensor its shape, range, histogram counts and moments, and its mean
    gradient norm over ``grad_steps`` measured steps (``grad_sum`` their sum, per parameter)."""
    layers: dict[str, Any] = {}
    grads = (grad_sum.cpu() / grad_steps).tolist() if grad_sum is not None and grad_steps else None
    for i, (name, p) in enumerate(params):
        data = p.detach().flatten()
        if data.numel() == 0:
            continue
        low, high = float(data.min()), float(data.max())
        entry: dict[str, Any] = {"shape": list(p.shape)}
        if math.isfinite(low) and math.isfinite(high):
            values = data.float()  # (no copy for float32 weights; torch sums in blocks, so float32 holds up)
            entry.update(min=low, max=high, counts=_counts(values, low, high), mean=float(values.mean()),
                         std=float(values.std(correction=0)), norm=float(torch.linalg.vector_norm(values)))  # fmt: skip
        else:  # diverged: the histogram has no range; say so rather than write NaN
            entry["finite"] = False
        if grads is not None and math.isfinite(grads[i]):
            entry["grad_norm"] = grads[i]
        layers[name] = entry
    return {"epoch": epoch, "bins": BINS, "layers": layers}


def _counts(data: torch.Tensor, low: float, high: float) -> list[int]:
    """:data:`BINS` equal bins' counts between ``low`` and ``high``, on the CPU (deterministic wherever the
    tensor lives), a chunk at a time so that float32 counting stays exact, summed as integers."""
    if high <= low:  # a constant tensor (a fresh bias, a norm's scale): every value in the middle bin
        return [0] * (BINS // 2) + [data.numel()] + [0] * (BINS - BINS // 2 - 1)
    total = torch.zeros(BINS, dtype=torch.int64)
    for chunk in data.split(CHUNK):
        total += torch.histc(chunk.float().cpu(), bins=BINS, min=low, max=high).round().to(torch.int64)
    return total.tolist()


def append(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as log:
        log.write(json.dumps(record) + "\n")


def keep_until(path: Path, epoch: int) -> None:
    """Cut ``path`` back to the lines of epochs up to ``epoch`` (a run resumed from a checkpoint there)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and isinstance(record.get("epoch"), int) and record["epoch"] <= epoch:
            kept.append(line + "\n")
    write_text_atomic(path, "".join(kept))
