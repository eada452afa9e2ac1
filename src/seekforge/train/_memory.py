"""Training's memory, estimated before it starts: what the machine can give, and what a model needs at its
peak with a batch (with or without gradient checkpointing)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

#: optimizer state per parameter, in parameter-sized copies
STATE_COPIES = {"adamw": 2, "lamb": 2, "sgd": 1, "adafactor": 1}
#: share of the available memory training plans to use
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


def training_bytes(model: nn.Module, sample: Mapping[str, torch.Tensor], *, micro_batch: int, optimizer: str,
                   data_bytes: int = 0, checkpointed: bool = False) -> int:  # fmt: skip
    """Peak memory of training ``model`` on micro-batches of ``micro_batch`` rows, estimated from a forward
    pass of ``sample`` (a row or two) with no gradients: weights, gradients and ``optimizer`` state (4 bytes
    a value each), the activations of one micro-batch kept for the backward pass and their gradients (the
    output of every leaf module, scaled from the sample), and the training data (``data_bytes``). fp32.

    ``checkpointed``: the model's checkpointed layers (``model.checkpointed_layers()``) keep only their
    outputs, and one layer's activations at a time are recomputed in the backward pass.
    """
    parameters = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    weights = 4 * (parameters + trainable * (1 + STATE_COPIES.get(optimizer, 2)))
    layers: list[nn.Module] = list(getattr(model, "checkpointed_layers", list)()) if checkpointed else []
    inside = {id(m): i for i, layer in enumerate(layers) for m in layer.modules()}
    kept, per_layer = 0, [0] * len(layers)

    def count(module: nn.Module, inputs: object, output: object) -> None:
        nonlocal kept
        if list(module.children()) or not isinstance(output, torch.Tensor):
            return
        if id(module) in inside:
            per_layer[inside[id(module)]] += output.numel()
        else:
            kept += output.numel()

    def layer_output(module: nn.Module, inputs: object, output: object) -> None:
        nonlocal kept
        tensor = output[0] if isinstance(output, tuple) else output
        kept += tensor.numel() if isinstance(tensor, torch.Tensor) else 0

    hooks = [m.register_forward_hook(count) for m in model.modules()]
    hooks += [layer.register_forward_hook(layer_output) for layer in layers]
    training = model.training
    try:
        with torch.no_grad():
            model.eval()
            model(dict(sample))
    finally:
        model.train(training)
        for hook in hooks:
            hook.remove()
    rows = max(1, len(next(iter(sample.values()))))
    values = kept + (max(per_layer) if per_layer else 0)
    activations = int(values / rows * micro_batch * 4 * 2)  # kept for backward, and their gradients
    return weights + activations + data_bytes
