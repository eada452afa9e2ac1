"""Planning a study's memory: what a trial needs at its peak, and how many workers fit the machine."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

#: resident memory of a worker process before its trial (Python, torch, the prepared data aside)
PROCESS_BYTES = 400 * 2**20
#: optimizer state per parameter, in parameter-sized copies
_STATE_COPIES = {"adamw": 2, "lamb": 2, "sgd": 1, "adafactor": 1}
#: share of the available memory a study plans to use
BUDGET_SHARE = 0.8


def available_bytes() -> int | None:
    """Memory the system can give without swapping (MemAvailable on Linux, capped by a container's
    cgroup limit less what it uses); None where unknown."""
    found = None
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    found = int(line.split()[1]) * 1024
    except OSError:
        pass
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit = Path(limit_file).read_text(encoding="ascii").strip()
            used = int(Path(usage_file).read_text(encoding="ascii").strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:
            room = max(0, int(limit) - used)
            found = room if found is None else min(found, room)
        break
    if found is not None:
        return found
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def trial_bytes(recipe: Any, prepared: Any) -> int:
    """Peak memory of training ``recipe`` on ``prepared``, estimated before training: weights, gradients
    and optimizer state (4 bytes a value each), activations of one batch kept for the backward pass (from a
    forward pass of two rows, scaled to the batch), and the encoded training data. fp32 throughout."""
    import torch

    from seekforge.build import build_seeded_model, model_io

    model = build_seeded_model(recipe, model_io(recipe, prepared))
    parameters = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    copies = _STATE_COPIES.get(recipe.train.optimizer.type, 2)
    weights = 4 * (parameters + trainable * (1 + copies))
    outputs = 0

    def count(module: torch.nn.Module, inputs: Any, output: Any) -> None:
        nonlocal outputs
        if not list(module.children()) and isinstance(output, torch.Tensor):
            outputs += output.numel()

    hooks = [m.register_forward_hook(count) for m in model.modules()]
    train = prepared.splits["train"]
    two = {k: v[:2] for k, v in train.inputs.items()}
    try:
        with torch.no_grad():
            model.eval()
            model(two)
    finally:
        for hook in hooks:
            hook.remove()
    per_row = outputs / max(1, min(2, len(train)))
    micro = recipe.train.batch_size // recipe.train.grad_accum
    activations = int(per_row * micro * 4 * 2)  # kept for backward, and their gradients
    data = sum(t.numel() * t.element_size() for t in (*train.inputs.values(), train.target))
    return weights + activations + data


def plan_workers(requested: int, need: int, available: int | None) -> tuple[int, str]:
    """How many workers fit, and a line that says why."""
    per_worker = PROCESS_BYTES + need
    if available is None:
        return requested, f"{requested} worker(s); each trial needs up to ~{_mib(need)} (free memory unknown)"
    fits = max(1, int(available * BUDGET_SHARE // per_worker))
    workers = min(requested, fits)
    line = (f"{workers} worker(s): each needs up to ~{_mib(per_worker)} with its process, "
            f"{_mib(available)} available")  # fmt: skip
    if workers < requested:
        line += f" (asked for {requested}; more would not fit in memory)"
    return workers, line


def _mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"
