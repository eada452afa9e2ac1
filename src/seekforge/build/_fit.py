"""Training a prepared run, in this process or in each process of a ``torchrun`` job."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seekforge.build._prepare import Prepared
from seekforge.build._warm import load_parent, start_from_parent, widths_io
from seekforge.core.io import atomic_dir
from seekforge.models import ModelConfig, ModelIO
from seekforge.recipe import Recipe
from seekforge.train import DistContext, Trainer, TrainResult


def model_io(recipe: Recipe, prepared: Prepared) -> ModelIO:
    return recipe.model.prepare_io(prepared.preprocessor.model_io())


def build_seeded_model(recipe: Recipe, io: ModelIO) -> nn.Module:
    """The recipe's model with its initial weights fixed by the recipe's seed."""
    torch.manual_seed(recipe.seed)
    return recipe.model.build(io)


def fit(
    recipe: Recipe,
    prepared: Prepared,
    run_dir: Path,
    *,
    resume: bool,
    dist: DistContext,
    epoch_hook: Callable[[dict[str, Any]], None] | None = None,
    checks_per_epoch: int = 1,
) -> TrainResult:
    """Train and (on the main process) write ``<run_dir>/trained/`` with the kept weights and the history;
    ``epoch_hook`` sees each epoch's record and ``checks_per_epoch - 1`` checks within it (see Trainer)."""
    io = model_io(recipe, prepared)
    parent = load_parent(recipe) if recipe.warm_start is not None else None
    if parent is not None:
        io = widths_io(io, parent)
    model = build_seeded_model(recipe, io)
    io = recipe.model.adapt(model, io, prepared.splits["train"].inputs, prepared.preprocessor)
    if parent is not None:
        start_from_parent(model, parent, recipe.model)
    config = recipe.train
    if recipe.data.balance is not None and recipe.data.balance.method == "class_weights":
        config = type(config).model_validate({**config.model_dump(), "class_weights": "balanced"})
    classes = getattr(prepared.preprocessor, "classes_", None)
    trainer = Trainer(
        model, config, task=recipe.task, seed=recipe.seed, run_dir=run_dir, dist=dist, classes=classes,
        epoch_hook=epoch_hook, checks_per_epoch=checks_per_epoch,
    )  # fmt: skip
    validation = prepared.splits["validation"]
    result = trainer.fit(prepared.splits["train"], validation if len(validation.target) else None, resume=resume)
    if dist.is_main:
        write_trained(run_dir / "trained", model, recipe.model, io, result)
    return result


def model_spec(config: ModelConfig, io: ModelIO) -> dict[str, Any]:
    """The content of ``model.json``: the config and input facts that rebuild the module."""
    return {"config": config.model_dump(mode="json"), "io": io.to_dict()}


def write_trained(folder: Path, model: nn.Module, config: ModelConfig, io: ModelIO, result: TrainResult) -> None:
    """Write ``folder`` (atomically): ``model.safetensors``, ``model.json`` and the training ``result.json``."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in config.stored_state(model).items()}
    with atomic_dir(folder, overwrite=True) as tmp:
        save_file(state, str(tmp / "model.safetensors"))
        (tmp / "model.json").write_text(json.dumps(model_spec(config, io)), encoding="utf-8")
        (tmp / "result.json").write_text(json.dumps(result_to_dict(result), indent=2), encoding="utf-8")


def result_to_dict(result: TrainResult) -> dict[str, Any]:
    return {
        "history": result.history,
        "best_epoch": result.best_epoch,
        "steps": result.steps,
        "stopped_early": result.stopped_early,
        "seconds": result.seconds,
        "resumed_from": result.resumed_from,
        "notes": result.notes,
    }
