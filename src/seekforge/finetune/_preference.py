"""Preference tuning of a causal language model: DPO (or IPO, or SLiC's hinge) through TRL's trainer on
``{prompt, chosen, rejected}`` pairs, going on from a causal-LM package's adapter (that package's model
is the reference) or from a base with new adapters (the base is the reference).

The report shows, per epoch, TRL's reward margins and accuracy on the held-out pairs (the rewards are
``beta`` times the log-likelihood ratio of a response under the model and under the reference), and how
often the model itself finds the chosen response the likelier, before and after. The result is a causal-LM
package like ``task: causal_lm``'s: ``seekforge generate`` runs it, and it can start another run.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seekforge.core import report as r
from seekforge.core.deps import require
from seekforge.core.errors import DataError, TrainingInterrupted
from seekforge.core.io import sha256_file
from seekforge.core.progress import console, progress_task
from seekforge.finetune._causal import CausalResult, encode, joined, log_likelihoods, run_folder, samples_of
from seekforge.finetune._causal_base import MANIFEST, device, load_transformers, targets_of
from seekforge.finetune._causal_package import CausalPackage, load_base, write_causal_package
from seekforge.finetune._causal_recipe import PreferenceRecipe

#: TRL's held-out figures, as the report names them.
EVAL_FIGURES = {"eval_loss": "val_loss", "eval_rewards/margins": "val_reward_margin",
                "eval_rewards/accuracies": "val_reward_accuracy", "eval_rewards/chosen": "val_reward_chosen",
                "eval_rewards/rejected": "val_reward_rejected"}  # fmt: skip


def read_pairs(recipe: PreferenceRecipe) -> tuple[list[str], list[str], list[str]]:
    """The prompts, the responses chosen and those rejected (each as it follows its prompt: :func:`joined`).

    Raises:
        DataError: A field missing from the file, or a row without a value (named by its line).
    """
    from seekforge.data import read_source, require_values

    data = recipe.data
    frame = read_source(data.path)
    fields = [data.prompt, data.chosen, data.rejected]
    absent = [name for name in fields if name not in frame.columns]
    if absent:
        raise DataError(
            f"{data.path}: no field {', '.join(map(repr, absent))}; fields present: "
            f"{', '.join(map(repr, map(str, frame.columns[:20])))}",
            hint="name them with data.prompt, data.chosen and data.rejected",
        )
    for name in fields:
        require_values(frame[name], frame, name)
    prompts, chosen, rejected = ([str(v) for v in frame[name]] for name in fields)
    return (
        prompts,
        [joined(*pair) for pair in zip(prompts, chosen, strict=True)],
        [joined(*pair) for pair in zip(prompts, rejected, strict=True)],
    )


def pair_preference(model: Any, tokenizer: Any, pairs: tuple[list[str], list[str], list[str]], *, max_length: int,
                    batch_size: int) -> dict[str, float]:  # fmt: skip
    """How ``model`` ranks pairs: the share where the chosen response is the likelier given the prompt (its
    tokens' summed log-likelihood), and the mean log-likelihood margin of chosen over rejected."""
    prompts, chosen, rejected = pairs
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    good, _ = log_likelihoods(model, encode(tokenizer, prompts, chosen, max_length), pad, batch_size)
    bad, _ = log_likelihoods(model, encode(tokenizer, prompts, rejected, max_length), pad, batch_size)
    margin = good - bad
    return {"accuracy": float((margin > 0).mean()), "margin": float(margin.mean())}


def finetune_preference(recipe: PreferenceRecipe, *, runs_dir: Path | str = "runs", resume: bool = False,
                        run_dir: Path | str | None = None) -> CausalResult:  # fmt: skip
    """Tune on preference pairs, evaluate, sample and package; ``resume`` continues the latest unfinished run
    of the recipe from its last checkpoint (written every epoch and when stopped by Ctrl-C or SIGTERM).

    Raises:
        DataError: A data problem, named by its line.
        TrainingInterrupted: Stopped on request; the checkpoint is written, ``resume`` continues.
    """
    with run_folder(recipe, runs_dir, resume=resume, run_dir=run_dir,
                    checkpointed=lambda d: any((d / "trainer").glob("checkpoint-*"))) as folder:  # fmt: skip
        return _tune_in(recipe, folder, resume=resume)


def _start(recipe: PreferenceRecipe) -> tuple[Any, Any, dict[str, Any], dict[str, Any] | None]:
    """The model to tune (its weights that train marked so), its tokenizer, its base and adapter, and the
    package it goes on from (its path and manifest's sha256; None from a base)."""
    if recipe.model.start is not None:
        opened = CausalPackage(recipe.model.start)
        model, tokenizer = opened.load()
        start = {"package": str(opened.path), "sha256": sha256_file(opened.path / MANIFEST)}
        return model, tokenizer, opened.model.model_dump(mode="json"), start
    causal = recipe.model.causal()
    model, tokenizer, base = load_base(causal)
    section = causal.model_dump(mode="json")
    if causal.adapter != "none":
        section["target_modules"] = targets_of(causal.target_modules, base)
    return model, tokenizer, section, None


def _tune_in(recipe: PreferenceRecipe, folder: Path, *, resume: bool) -> CausalResult:
    from seekforge.train import StopSignals

    load_transformers()  # offline, before anything imports huggingface_hub (datasets, TRL)
    trl = require("trl", purpose="preference tuning (DPO)")
    datasets = require("datasets", purpose="preference tuning (DPO)")
    datasets.disable_progress_bars()
    console.print(f"[bold]finetune[/] {recipe.name} (preference) -> {folder}")
    torch.manual_seed(recipe.seed)
    prompts, chosen, rejected = read_pairs(recipe)
    model, tokenizer, section, start = _start(recipe)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    order = np.random.default_rng(recipe.seed).permutation(len(prompts))
    held = max(1, round(recipe.data.validation * len(prompts))) if len(prompts) > 1 else 0

    def rows(which: np.ndarray) -> tuple[list[str], list[str], list[str]]:
        return [prompts[i] for i in which], [chosen[i] for i in which], [rejected[i] for i in which]

    train, validation = rows(order[held:]), rows(order[:held])
    config = recipe.training
    ranks = {"max_length": config.max_length, "batch_size": config.batch_size}
    before = pair_preference(model, tokenizer, validation, **ranks) if held else None
    gpu = device().type == "cuda"

    def as_rows(pairs: tuple[list[str], list[str], list[str]]) -> Any:
        return datasets.Dataset.from_dict(dict(zip(("prompt", "chosen", "rejected"), pairs, strict=True)))

    with old_names():
        args = trl.DPOConfig(
            output_dir=str(folder / "trainer"), seed=recipe.seed, data_seed=recipe.seed, num_train_epochs=config.epochs,
            per_device_train_batch_size=config.batch_size, per_device_eval_batch_size=config.batch_size,
            learning_rate=config.lr, lr_scheduler_type="linear", warmup_steps=config.warmup_steps,
            weight_decay=config.weight_decay, max_grad_norm=config.grad_clip or 0.0, beta=config.beta,
            loss_type=[config.loss], max_length=config.max_length, logging_steps=1, eval_strategy="epoch" if held else "no",
            save_strategy="epoch", save_total_limit=1, report_to="none", disable_tqdm=True, dataloader_num_workers=0,
            use_cpu=not gpu, bf16=gpu and torch.cuda.is_bf16_supported(),
        )  # fmt: skip
        trainer = trl.DPOTrainer(model=model, args=args, train_dataset=as_rows(train),
                                 eval_dataset=as_rows(validation) if held else None, processing_class=tokenizer)  # fmt: skip
    steps = math.ceil(len(train[0]) / config.batch_size) * config.epochs
    checkpoints = sorted((folder / "trainer").glob("checkpoint-*"), key=lambda p: int(p.name.rpartition("-")[2]))
    started = time.perf_counter()
    with StopSignals() as stop, progress_task("preference tuning", total=steps) as advance:
        watch = _watch(advance, lambda: stop.requested)
        trainer.remove_callback(require("transformers", purpose="TRL").PrinterCallback)
        trainer.add_callback(watch)
        with old_names():
            trainer.train(resume_from_checkpoint=str(checkpoints[-1]) if resume and checkpoints else None)
    if watch.stopped:
        raise TrainingInterrupted(f"stopped at step {trainer.state.global_step} of {steps}; checkpoint written",
                                  hint="continue with the same command and --resume")  # fmt: skip
    model = trainer.model
    if "ref" in getattr(model, "peft_config", {}):
        model.delete_adapter("ref")  # TRL's frozen copy of the starting adapter: the reference
    model.eval()
    history = _history(trainer.state.log_history)
    after = pair_preference(model, tokenizer, validation, **ranks) if held else None
    last = history[-1] if history else {}
    metrics = {
        "pairs_preferred_before": before and before["accuracy"], "pairs_preferred": after and after["accuracy"],
        "likelihood_margin_before": before and before["margin"], "likelihood_margin": after and after["margin"],
        "reward_margin": last.get("val_reward_margin"), "reward_accuracy": last.get("val_reward_accuracy"),
        "train_pairs": len(train[0]), "validation_pairs": held,
    }  # fmt: skip
    seconds = round(time.perf_counter() - started, 1)
    samples = samples_of(model, tokenizer, recipe.generation, validation[0], recipe.seed)
    parts = {"metrics": metrics, "generation": recipe.generation.model_dump(mode="json"), "samples": samples,
             "training": {"epochs": config.epochs, "steps": trainer.state.global_step, "seconds": seconds,
                          "history": history},
             "preference": {"start": start, "loss": config.loss, "beta": config.beta}}  # fmt: skip
    package = write_causal_package(folder / "package", name=recipe.name, recipe=recipe, section=section, model=model,
                                   tokenizer=tokenizer, parts=parts, **_report_parts(parts))  # fmt: skip
    return CausalResult(folder, package, metrics, history)


@contextmanager
def old_names() -> Iterator[None]:
    """TRL sets and turns gradient checkpointing on and off by names transformers has deprecated."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*gradient_checkpointing", category=FutureWarning)
        yield


def _watch(advance: Callable[..., None], requested: Callable[[], bool]) -> Any:
    """A trainer callback that moves the progress bar and, when a stop is requested, has the trainer save a
    checkpoint and stop."""
    transformers = require("transformers", purpose="TRL")

    class Watch(transformers.TrainerCallback):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            self.seen, self.stopped, self.loss = 0, False, float("nan")

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            advance(state.global_step - self.seen)
            self.seen = state.global_step

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None, **kw: Any) -> None:
            self.loss = (logs or {}).get("loss", self.loss)

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            advance(state.global_step - self.seen, status=f"epoch {state.epoch:.2f} loss {self.loss:.4f}")
            self.seen = state.global_step
            if requested():
                control.should_save = control.should_training_stop = self.stopped = True

    return Watch()


def _history(log: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per epoch: the mean training loss of its steps and TRL's figures on the held-out pairs."""
    losses: dict[int, list[float]] = {}
    figures: dict[int, dict[str, float]] = {}
    for entry in log:
        epoch = math.ceil(float(entry.get("epoch", 0)) - 1e-6)  # epoch 1's steps log 0 < epoch <= 1
        if "loss" in entry:
            losses.setdefault(epoch, []).append(float(entry["loss"]))
        figures.setdefault(epoch, {}).update({ours: float(entry[k]) for k, ours in EVAL_FIGURES.items() if k in entry})
    return [{"epoch": e, "train_loss": float(np.mean(losses[e])), **figures.get(e, {})} for e in sorted(losses)]


def _report_parts(parts: dict[str, Any]) -> dict[str, Any]:
    """The report's rows and sections for preference tuning."""
    metrics, history, start = parts["metrics"], parts["training"]["history"], parts["preference"]["start"]
    preferred = f"{r.fmt(metrics['pairs_preferred_before'])} / {r.fmt(metrics['pairs_preferred'])}"
    rows = [
        ("started from", start["package"] if start else "the base, with new adapters (the base is the reference)"),
        ("loss, beta", f"{parts['preference']['loss']}, {parts['preference']['beta']}"),
        ("held-out pairs where the chosen response is the likelier, before / after", preferred),
        ("held-out reward margin, accuracy (against the reference)",
         f"{r.fmt(metrics['reward_margin'])}, {r.fmt(metrics['reward_accuracy'])}"),
        ("pairs (train / validation)", f"{metrics['train_pairs']} / {metrics['validation_pairs']}"),
        ("training seconds", parts["training"]["seconds"]),
    ]  # fmt: skip
    chart = r.line_chart({"train loss": [h["train_loss"] for h in history]}, title="DPO loss")
    if any("val_reward_margin" in h for h in history):
        chart += r.line_chart({"margin": [h["val_reward_margin"] for h in history],
                               "accuracy": [h["val_reward_accuracy"] for h in history]},
                              title="held-out reward margin and accuracy")  # fmt: skip
    return {"rows": rows, "sections": [("Curves", chart)]}
