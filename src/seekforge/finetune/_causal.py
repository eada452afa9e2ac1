"""Fine-tuning a causal language model: LoRA adapters (PEFT; QLoRA's on a 4-bit base) or every weight, on
``{prompt, response}`` pairs (the prompt's tokens masked out of the loss) or plain ``{text}``; perplexity on
a held-out split before and after, sample generations, and a package (see ``_causal_package``) that
``seekforge generate`` loads.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from seekforge.core import report as r
from seekforge.core.config import BaseConfig
from seekforge.core.errors import ConfigError, DataError, TrainingInterrupted
from seekforge.core.io import atomic_path, work_folder, write_text_atomic
from seekforge.core.progress import console, progress_task
from seekforge.finetune._causal_base import MANIFEST, targets_of
from seekforge.finetune._causal_package import load_base, trainable_weights, write_causal_package
from seekforge.finetune._causal_recipe import CausalRecipe, Generation
from seekforge.train import TrainConfig, lr_lambda

IGNORE = -100  # the label cross-entropy skips


# ------------------------------------------------------------------------------------------- the data


@dataclass
class Examples:
    """Tokenized rows: ids and labels (``IGNORE`` where the loss does not look), and the prompts."""

    ids: list[list[int]]
    labels: list[list[int]]
    prompts: list[str]
    truncated: int = 0

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, rows: np.ndarray) -> Examples:
        return Examples([self.ids[i] for i in rows], [self.labels[i] for i in rows], [self.prompts[i] for i in rows])


def read_rows(recipe: CausalRecipe) -> tuple[list[str], list[str] | None]:
    """The prompts and responses (or the texts and None) of the recipe's data.

    Raises:
        DataError: Neither a prompt/response pair nor a text field, or a row without one (named by its line).
    """
    from seekforge.data import read_source, require_values

    data = recipe.data
    frame = read_source(data.path)
    if data.prompt in frame.columns and data.response in frame.columns:
        fields = [data.prompt, data.response]
    elif data.text in frame.columns:
        fields = [data.text]
    else:
        raise DataError(
            f"{data.path}: neither '{data.prompt}' and '{data.response}' nor '{data.text}' is a field; fields present: "
            f"{', '.join(map(repr, map(str, frame.columns[:20])))}",
            hint="name them with data.prompt and data.response (instructions) or data.text (plain text)",
        )
    for name in fields:
        require_values(frame[name], frame, name)
    columns = [[str(v) for v in frame[name]] for name in fields]
    return columns[0], columns[1] if len(columns) == 2 else None


def joined(prompt: str, response: str) -> str:
    """``response`` as it follows ``prompt`` in one text: after a space, unless either side has whitespace
    where they meet (so that the last word of one and the first of the other stay two words)."""
    return response if not prompt or prompt[-1].isspace() or response[:1].isspace() else f" {response}"


def encode(tokenizer: Any, first: list[str], responses: list[str] | None, max_length: int) -> Examples:
    """Token ids and labels: a prompt's tokens are labelled ``IGNORE``, its response's tokens (the two
    tokenized as one text, :func:`joined`, as TRL does) and the end of sequence are learned; a plain text is
    learned whole. Sequences longer than ``max_length`` are cut."""
    eos = tokenizer.eos_token_id
    ids, labels, truncated = [], [], 0
    for position, text in enumerate(first):
        if responses is None:
            sequence = [*tokenizer(text).input_ids, eos]
            target = list(sequence)
        else:
            prompt = tokenizer(text).input_ids
            sequence = [*tokenizer(text + joined(text, responses[position])).input_ids, eos]
            start = next((i for i, (a, b) in enumerate(zip(prompt, sequence, strict=False)) if a != b), len(prompt))
            target = [IGNORE] * start + sequence[start:]  # where the two part: tokens may merge across the join
        if len(sequence) > max_length:
            truncated += 1
            sequence, target = sequence[:max_length], target[:max_length]
        ids.append(sequence)
        labels.append(target)
    return Examples(ids, labels, list(first) if responses is not None else [], truncated)


def collate(examples: Examples, rows: list[int], pad: int, to: torch.device | None = None) -> dict[str, torch.Tensor]:
    """A right-padded batch of ``rows`` (on device ``to``): input ids, attention mask, labels (``IGNORE`` on
    the padding)."""
    width = max(len(examples.ids[i]) for i in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for k, i in enumerate(rows):
        n = len(examples.ids[i])
        ids[k, :n] = torch.tensor(examples.ids[i])
        labels[k, :n] = torch.tensor(examples.labels[i])
        mask[k, :n] = 1
    return {"input_ids": ids.to(to), "attention_mask": mask.to(to), "labels": labels.to(to)}


@torch.no_grad()
def log_likelihoods(model: Any, examples: Examples, pad: int, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Per row: the log-likelihood of its labelled tokens (each predicted from those before it), and their count."""
    model.eval()
    sums, counts = [], []
    for start in range(0, len(examples), batch_size):
        batch = collate(examples, list(range(start, min(start + batch_size, len(examples)))), pad, model.device)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        targets = batch["labels"][:, 1:]
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2).float(), targets, ignore_index=IGNORE,
                                                reduction="none")  # fmt: skip
        sums.append((-nll.sum(dim=1)).cpu().numpy())
        counts.append((targets != IGNORE).sum(dim=1).cpu().numpy())
    return (np.concatenate(sums), np.concatenate(counts)) if sums else (np.zeros(0), np.zeros(0, dtype=int))


def perplexity(model: Any, examples: Examples, pad: int, batch_size: int) -> float:
    """exp of the mean negative log-likelihood of the labelled tokens."""
    sums, counts = log_likelihoods(model, examples, pad, batch_size)
    return math.exp(-float(sums.sum()) / max(int(counts.sum()), 1))


# ------------------------------------------------------------------------------------------- training


@dataclass
class CausalResult:
    """Where the run put its package, and what it measured."""

    run_dir: Path
    package: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)


@contextmanager
def run_folder(recipe: BaseConfig, runs_dir: Path | str, *, resume: bool, run_dir: Path | str | None,
               checkpointed: Callable[[Path], bool]) -> Iterator[Path]:  # fmt: skip
    """The run's folder with the recipe in it: ``run_dir``, with ``resume`` the newest unfinished run of the
    recipe's name (whose recipe must be this one), else a new one; removed when the work in it fails before
    anything there is ``checkpointed``.

    Raises:
        ConfigError: Nothing to resume, or the run to resume started from another recipe.
    """
    fresh = not resume and not (run_dir is not None and Path(run_dir).exists())
    folder = work_folder(Path(runs_dir) / str(recipe.name), resume=resume,
                         explicit=Path(run_dir) if run_dir else None,
                         resumable=lambda d: not (d / "package" / MANIFEST).is_file())  # fmt: skip
    saved, current = folder / "recipe.yaml", recipe.model_dump(mode="json")
    if resume and saved.is_file():
        before = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
        changed = [key for key in {*before, *current} if before.get(key) != current.get(key)]
        if changed:
            raise ConfigError(f"{saved}: the run to resume started from another recipe ({', '.join(sorted(changed))} "
                              "differ)", hint="resume with the recipe it started from, or run without --resume")  # fmt: skip
    write_text_atomic(saved, yaml.safe_dump(current, sort_keys=False))
    try:
        yield folder
    except BaseException:
        if fresh and not checkpointed(folder):  # nothing in it to resume
            shutil.rmtree(folder, ignore_errors=True)
        raise


def finetune_causal(recipe: CausalRecipe, *, runs_dir: Path | str = "runs", resume: bool = False,
                    run_dir: Path | str | None = None) -> CausalResult:  # fmt: skip
    """Fine-tune, evaluate, sample and package; ``resume`` continues the latest unfinished run of the recipe
    from its last checkpoint (written every epoch and when stopped by Ctrl-C or SIGTERM).

    Raises:
        DataError: A data problem, named by its line.
        TrainingInterrupted: Stopped on request; the checkpoint is written, ``resume`` continues.
    """
    with run_folder(recipe, runs_dir, resume=resume, run_dir=run_dir,
                    checkpointed=lambda d: (d / "checkpoint.pt").exists()) as folder:  # fmt: skip
        return _finetune_in(recipe, folder, resume=resume)


def _finetune_in(recipe: CausalRecipe, folder: Path, *, resume: bool) -> CausalResult:
    from seekforge.train import StopSignals

    console.print(f"[bold]finetune[/] {recipe.name} -> {folder}")
    torch.manual_seed(recipe.seed)
    model, tokenizer, base = load_base(recipe.model)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    first, responses = read_rows(recipe)
    everything = encode(tokenizer, first, responses, recipe.training.max_length)
    order = np.random.default_rng(recipe.seed).permutation(len(everything))
    held = max(1, round(recipe.data.validation * len(everything))) if len(everything) > 1 else 0
    train, validation = everything.subset(order[held:]), everything.subset(order[:held])
    config = recipe.training
    steps_per_epoch = math.ceil(len(train) / config.batch_size)
    schedule = TrainConfig(epochs=config.epochs, lr=config.lr,
                           schedule={"type": "linear", "warmup": 0.0, "warmup_steps": config.warmup_steps})  # fmt: skip
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr,
                                  weight_decay=config.weight_decay)  # fmt: skip
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(schedule, steps_per_epoch * config.epochs))
    checkpoint = folder / "checkpoint.pt"
    state: dict[str, Any] = {"epoch": 0, "step": 0, "history": [], "seconds": 0.0, "losses": []}
    if resume and checkpoint.is_file():
        saved = torch.load(checkpoint, weights_only=True)
        model.load_state_dict(saved["trainable"], strict=False)
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        state = {k: saved[k] for k in ("epoch", "step", "history", "seconds", "before", "losses")}
        torch.set_rng_state(saved["rng"])  # the adapters' dropout draws where it stopped
        console.print(f"resumed at epoch {state['epoch'] + 1}, step {state['step']}")
    else:
        state["before"] = perplexity(model, validation, pad, config.batch_size) if len(validation) else None

    def save() -> None:
        with atomic_path(checkpoint) as tmp:
            torch.save({**state, "trainable": trainable_weights(model), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "rng": torch.get_rng_state()}, tmp)  # fmt: skip

    started = time.perf_counter() - state["seconds"]
    with StopSignals() as stop, progress_task("fine-tuning", total=steps_per_epoch * config.epochs) as advance:
        advance(state["epoch"] * steps_per_epoch + state["step"])
        for epoch in range(state["epoch"], config.epochs):
            model.train()
            shuffled = torch.randperm(len(train), generator=torch.Generator().manual_seed(recipe.seed + epoch)).tolist()
            losses = state["losses"]  # this epoch's so far (a resumed epoch keeps those before the stop)
            for step in range(state["step"], steps_per_epoch):
                rows = shuffled[step * config.batch_size : (step + 1) * config.batch_size]
                loss = model(**collate(train, rows, pad, model.device)).loss
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if config.grad_clip is not None:
                    torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], config.grad_clip)
                optimizer.step()
                scheduler.step()
                losses.append(loss.item())
                advance(1, status=f"epoch {epoch + 1}/{config.epochs} loss {losses[-1]:.4f}")
                state["step"] = step + 1
                if stop.requested:
                    state["seconds"] = time.perf_counter() - started
                    save()
                    raise TrainingInterrupted(f"stopped at epoch {epoch + 1}, step {step + 1}; checkpoint written",
                                              hint="continue with the same command and --resume")  # fmt: skip
            record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)) if losses else float("nan")}
            if len(validation):
                record["val_perplexity"] = perplexity(model, validation, pad, config.batch_size)
            console.print("  ".join(f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in record.items()))
            state.update(epoch=epoch + 1, step=0, history=[*state["history"], record], losses=[],
                         seconds=time.perf_counter() - started)  # fmt: skip
            save()
    model.eval()
    after = state["history"][-1].get("val_perplexity")
    metrics = {"val_perplexity_before": state["before"], "val_perplexity": after, "train_rows": len(train),
               "validation_rows": len(validation), "truncated_rows": everything.truncated}  # fmt: skip
    section = recipe.model.model_dump(mode="json")
    if recipe.model.adapter != "none":
        section["target_modules"] = targets_of(recipe.model.target_modules, base)
    training = {"epochs": state["epoch"], "seconds": round(state["seconds"], 1), "history": state["history"]}
    rows = [
        ("held-out perplexity, before / after", f"{r.fmt(metrics['val_perplexity_before'])} / {r.fmt(after)}"),
        ("rows (train / validation; cut to max_length)",
         f"{metrics['train_rows']} / {metrics['validation_rows']}; {metrics['truncated_rows']}"),
        ("training seconds", training["seconds"]),
    ]  # fmt: skip
    chart = r.line_chart({"train loss": [h["train_loss"] for h in state["history"]]}, title="training loss")
    if any("val_perplexity" in h for h in state["history"]):
        chart += r.line_chart({"held-out perplexity": [h["val_perplexity"] for h in state["history"]]},
                              title="perplexity")  # fmt: skip
    package = write_causal_package(
        folder / "package", name=recipe.name, recipe=recipe, section=section, model=model, tokenizer=tokenizer,
        parts={"metrics": metrics, "training": training, "generation": recipe.generation.model_dump(mode="json"),
               "samples": samples_of(model, tokenizer, recipe.generation, validation.prompts, recipe.seed)},
        rows=rows, sections=[("Curves", chart)],
    )  # fmt: skip
    return CausalResult(folder, package, metrics, state["history"])


def samples_of(
    model: Any, tokenizer: Any, settings: Generation, held_out: list[str], seed: int
) -> list[dict[str, str]]:
    """The report's sample generations: of the recipe's prompts, else of the first held-out ones."""
    prompts = settings.prompts or held_out[: settings.samples]
    return [{"prompt": p, "output": generate(model, tokenizer, p, settings, seed=seed)} for p in prompts]


# ------------------------------------------------------------------------------------------- generation


@torch.no_grad()
def generate(model: Any, tokenizer: Any, prompt: str, settings: Generation, *, seed: int = 0) -> str:
    """The text ``model`` continues ``prompt`` with (sampling seeded; greedy at temperature 0)."""
    torch.manual_seed(seed)
    encoded = tokenizer(prompt, return_tensors="pt").to(model.device)
    sample = settings.temperature > 0
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    output = model.generate(**encoded, max_new_tokens=settings.max_new_tokens, do_sample=sample, pad_token_id=pad,
                            **({"temperature": settings.temperature, "top_p": settings.top_p} if sample else {}))  # fmt: skip
    return str(tokenizer.decode(output[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True))
