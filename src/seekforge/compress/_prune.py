"""One structured pruning step with torch-pruning: whole channels, neurons (and attention heads) leave the
model, and the model's config is rewritten to the smaller architecture so the package reloads without
the pruning library."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import nn

from seekforge.compress.config import PruneConfig
from seekforge.core.deps import require
from seekforge.core.errors import ConfigError
from seekforge.models import ModelConfig

Batch = dict[str, torch.Tensor]


def step_ratio(target: float, done: float) -> float:
    """The share of the *remaining* channels to remove so that ``done`` (a share of the original
    channels already removed) becomes ``target``."""
    return (target - done) / (1.0 - done)


def prune_step(
    model: nn.Module,
    config: ModelConfig,
    prune: PruneConfig,
    *,
    ratio: float,
    example: Batch,
    gradient_batches: Callable[[], Iterable[tuple[Batch, torch.Tensor]]] | None = None,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> ModelConfig:
    """Remove ``ratio`` of the model's prunable channels in place and return the config that rebuilds it.

    Args:
        model: The module to prune (modified in place).
        config: Its model config; its ``pruned`` method describes the smaller architecture.
        prune: Importance, scope and layers to keep.
        ratio: Share of the current channels to remove in this step.
        example: A batch the model's graph is traced with.
        gradient_batches: Training batches for Taylor importance (its gradients come from ``loss``).
        loss: The training loss, for Taylor importance.

    Raises:
        ConfigError: A layer named in ``keep`` does not exist, or the model type cannot be pruned.
    """
    tp = require("torch_pruning", purpose="Structured pruning")
    ignored = ignored_layers(model, config, prune)
    importance = {
        "magnitude": lambda: tp.importance.GroupMagnitudeImportance(p=2),
        "taylor": lambda: tp.importance.GroupTaylorImportance(),
        "lamp": lambda: tp.importance.LAMPImportance(p=2),
    }[prune.importance]()
    model.eval()
    pruner = tp.pruner.BasePruner(
        model,
        (example,),
        importance=importance,
        global_pruning=prune.scope == "global",
        pruning_ratio=ratio,
        max_pruning_ratio=max(ratio, 0.9),  # globally, no layer is emptied (torch-pruning would skip it whole)
        ignored_layers=ignored,
        **config.pruning_options(model, ratio),
    )
    if prune.importance == "taylor":
        assert gradient_batches is not None and loss is not None, "Taylor importance needs gradients"
        model.zero_grad(set_to_none=True)
        for batch, target in gradient_batches():  # in eval mode: batch-norm statistics stay as they are
            loss(model(batch), target).backward()
    pruner.step()
    model.zero_grad(set_to_none=True)
    return config.pruned(model)


def count(model: nn.Module, example: Batch) -> dict[str, int]:
    """Parameters and multiply-accumulates of one row's forward pass."""
    tp = require("torch_pruning", purpose="Structured pruning")
    one = {k: v[:1] for k, v in example.items()}
    with torch.no_grad():
        macs, params = tp.utils.count_ops_and_params(model.eval(), (one,))
    return {"parameters": int(params), "macs": int(macs)}


def ignored_layers(model: nn.Module, config: ModelConfig, prune: PruneConfig) -> list[nn.Module]:
    """The layers whose outputs keep their width: the model type's own and those named in ``keep``.

    Raises:
        ConfigError: A name in ``keep`` is not a layer of the model, or the model cannot be pruned.
    """
    modules = dict(model.named_modules())
    missing = [name for name in prune.keep if name not in modules]
    if missing:
        some = ", ".join(name for name in list(modules)[1:12] if name)
        raise ConfigError(
            f"compress.prune.keep: no layer named {', '.join(map(repr, missing))} in this model",
            hint=f"layer names look like: {some}",
        )
    return [modules[name] for name in prune.keep] + config.unprunable(model)


def prunable_width(model: nn.Module, ignored: list[nn.Module]) -> int:
    """Output channels and neurons of the layers pruning may narrow: the measure a step's ratio is of."""
    kept = {id(m) for m in ignored}
    return sum(
        m.out_features if isinstance(m, nn.Linear) else m.out_channels
        for m in model.modules()
        if isinstance(m, nn.Linear | nn.Conv2d) and id(m) not in kept
    )
