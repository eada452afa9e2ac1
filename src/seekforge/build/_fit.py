"""Training a prepared run, in this process or in each process of a ``torchrun`` job."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seekforge.build._prepare import Prepared
from seekforge.build._warm import load_parent, start_from_parent, widths_io
from seekforge.core.errors import TrainingInterrupted
from seekforge.core.io import atomic_dir
from seekforge.models import ModelConfig, ModelIO, calibrate_model
from seekforge.recipe import Recipe
from seekforge.train import DistContext, Tensors, Trainer, TrainResult


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
    distilling = hold_exit_heads(model)  # before the Trainer: DDP registers the parameters that train
    trainer = Trainer(
        model, config, task=recipe.task, seed=recipe.seed, run_dir=run_dir, dist=dist, classes=classes,
        epoch_hook=epoch_hook, checks_per_epoch=checks_per_epoch,
    )  # fmt: skip
    validation = prepared.splits["validation"]
    held_out = validation if len(validation.target) else None
    result = trainer.fit(prepared.splits["train"], held_out, resume=resume)
    if distilling:
        result = distill_exit_heads(model, trainer, prepared.splits["train"], held_out, run_dir, resume=resume,
                                    first=result)  # fmt: skip
    config, extra = calibrated(model, recipe.model, held_out)
    if dist.is_main:
        write_trained(run_dir / "trained", model, config, io, result, extra=extra)
    return result


def calibrated(model: nn.Module, config: ModelConfig, held_out: Tensors | None) -> tuple[ModelConfig, dict[str, Any]]:
    """For a model with early exit, its threshold calibrated on ``held_out`` (or the recipe's own) and set on
    the model, the config that rebuilds it so, and the calibration record for ``result.json``; ``config``
    and nothing for other models."""
    exits = getattr(config, "early_exit", None)
    if exits is None:
        return config, {}
    rows = held_out if held_out is not None and len(held_out.target) else None
    record = calibrate_model(model, exits, rows.inputs if rows else None, rows.target if rows else None)
    spec = {**exits.model_dump(), "threshold": record["threshold"], "calibrated": record["calibrated"]}
    return config.model_validate({**config.model_dump(), "early_exit": spec}), {"early_exit": record}


def hold_exit_heads(model: nn.Module) -> bool:
    """Whether ``model``'s exit heads learn after it (early exit with ``training: distill``); if so, they are
    frozen for now. Call before building the Trainer."""
    if not getattr(model, "distill_epochs", 0):
        return False
    model.exit_heads.requires_grad_(False)  # type: ignore[union-attr]
    return True


def distill_exit_heads(
    model: nn.Module,
    trainer: Trainer,
    train: Tensors,
    held_out: Tensors | None,
    run_dir: Path,
    *,
    resume: bool,
    first: TrainResult,
) -> TrainResult:
    """After ``trainer`` trained ``model`` (``first``), train only its exit heads, each following the final
    layer's class distribution, on the frozen model in eval mode (checkpoints and metrics under
    ``<run_dir>/exits``), as long as the model's own ``config.early_exit.distill_epochs`` say.

    Raises:
        TrainingInterrupted: A stop was requested during the model's last epoch: the heads have not learnt
            yet, and ``--resume`` goes on with them.
    """
    if first.stop_requested:
        raise TrainingInterrupted(
            "training stopped after its last epoch, before the exit heads were distilled",
            hint="continue with the same command and --resume",
        )
    trainable = {name: p.requires_grad for name, p in model.named_parameters()}
    model.requires_grad_(False)
    model.exit_heads.requires_grad_(True)  # type: ignore[union-attr]
    model.exit_training = "distill"  # type: ignore[assignment]
    config = trainer.config.model_validate(
        {**trainer.config.model_dump(), "epochs": model.distill_epochs, "early_stopping": None, "progressive": None}
    )
    heads = Trainer(model, config, task=trainer.task, seed=trainer.seed, run_dir=Path(run_dir) / "exits",
                    dist=trainer.dist)  # fmt: skip
    second = heads.fit(train, held_out, resume=resume)
    model.exit_training = "off"  # type: ignore[assignment]
    for name, parameter in model.named_parameters():
        parameter.requires_grad_(trainable[name] or name.startswith("exit_heads."))
    note = f"exit heads distilled from the final layer for {len(second.history)} epochs ({second.seconds:.1f} s)"
    return replace(first, steps=first.steps + second.steps, seconds=first.seconds + second.seconds,
                   notes=[*first.notes, note], stop_requested=second.stop_requested)  # fmt: skip


def model_spec(config: ModelConfig, io: ModelIO) -> dict[str, Any]:
    """The content of ``model.json``: the config and input facts that rebuild the module."""
    return {"config": config.model_dump(mode="json"), "io": io.to_dict()}


def write_trained(
    folder: Path,
    model: nn.Module,
    config: ModelConfig,
    io: ModelIO,
    result: TrainResult,
    *,
    extra: dict[str, Any] | None = None,
) -> None:
    """Write ``folder`` (atomically): ``model.safetensors``, ``model.json`` and the training ``result.json``
    (with ``extra`` records, such as the early-exit calibration)."""
    from safetensors.torch import save_file

    state = {k: v.detach().cpu().contiguous() for k, v in config.stored_state(model).items()}
    with atomic_dir(folder, overwrite=True) as tmp:
        save_file(state, str(tmp / "model.safetensors"))
        (tmp / "model.json").write_text(json.dumps(model_spec(config, io)), encoding="utf-8")
        record = {**result_to_dict(result), **(extra or {})}
        (tmp / "result.json").write_text(json.dumps(record, indent=2), encoding="utf-8")


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
