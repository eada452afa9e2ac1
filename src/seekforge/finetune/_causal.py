"""Fine-tuning a causal language model: LoRA adapters (PEFT) or every weight, on ``{prompt, response}`` pairs
(the prompt's tokens masked out of the loss) or plain ``{text}``; perplexity on a held-out split before and
after, sample generations, and a package that ``seekforge generate`` loads.

A causal-LM package holds ``causal.json`` (the base's reference and weights' sha256, the adapter, the
figures, each file's sha256), the adapter's weights (``adapter.safetensors``; with ``adapter: none`` the
whole model in ``model/``), the tokenizer it trained with, ``recipe.yaml`` and ``report.html``. It is
written atomically and checked when opened; an adapter refuses any base but its own.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from seekforge.core import report as r
from seekforge.core.deps import require
from seekforge.core.errors import DataError, PackageError, TrainingInterrupted
from seekforge.core.io import atomic_dir, atomic_path, sha256_file, work_folder
from seekforge.core.package import verify_files
from seekforge.core.progress import console, progress_task
from seekforge.finetune._causal_base import load_transformers, targets_of
from seekforge.finetune._causal_recipe import CausalModel, CausalRecipe, Generation
from seekforge.models import (
    base_sha256,
    check_base,
    peft_model,
    resolve_pretrained,
)
from seekforge.train import TrainConfig, lr_lambda

IGNORE = -100  # the label cross-entropy skips
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
MANIFEST = "causal.json"


def load_base(model: CausalModel) -> tuple[Any, Any, Path]:
    """The base model (float32, on the CPU) with LoRA layers when asked, its tokenizer, and its folder."""
    tf = load_transformers()
    folder = resolve_pretrained(model.base)
    tokenizer = tf.AutoTokenizer.from_pretrained(folder)
    torch_model = tf.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    if model.adapter == "lora":
        peft = require("peft", purpose="LoRA adapters")
        alpha = model.alpha if model.alpha is not None else 2.0 * model.rank
        config = peft.LoraConfig(task_type="CAUSAL_LM", r=model.rank, lora_alpha=alpha, lora_dropout=model.dropout,
                                 target_modules=targets_of(model.target_modules, folder))  # fmt: skip
        torch_model = peft_model(torch_model, config)
    return torch_model, tokenizer, folder


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


def encode(tokenizer: Any, first: list[str], responses: list[str] | None, max_length: int) -> Examples:
    """Token ids and labels: a prompt's tokens are labelled ``IGNORE``, its response's tokens and the end of
    sequence are learned; a plain text is learned whole. Sequences longer than ``max_length`` are cut."""
    eos = tokenizer.eos_token_id
    ids, labels, truncated = [], [], 0
    for position, text in enumerate(first):
        if responses is None:
            sequence = [*tokenizer(text).input_ids, eos]
            target = list(sequence)
        else:
            prompt = tokenizer(text).input_ids
            answer = [*tokenizer(responses[position], add_special_tokens=False).input_ids, eos]
            sequence, target = prompt + answer, [IGNORE] * len(prompt) + answer
        if len(sequence) > max_length:
            truncated += 1
            sequence, target = sequence[:max_length], target[:max_length]
        ids.append(sequence)
        labels.append(target)
    return Examples(ids, labels, list(first) if responses is not None else [], truncated)


def collate(examples: Examples, rows: list[int], pad: int) -> dict[str, torch.Tensor]:
    """A right-padded batch of ``rows``: input ids, attention mask, labels (``IGNORE`` on the padding)."""
    width = max(len(examples.ids[i]) for i in rows)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for k, i in enumerate(rows):
        n = len(examples.ids[i])
        ids[k, :n] = torch.tensor(examples.ids[i])
        labels[k, :n] = torch.tensor(examples.labels[i])
        mask[k, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}


@torch.no_grad()
def perplexity(model: Any, examples: Examples, pad: int, batch_size: int) -> float:
    """exp of the mean negative log-likelihood of the labelled tokens (each predicted from those before it)."""
    model.eval()
    total, count = 0.0, 0
    for start in range(0, len(examples), batch_size):
        batch = collate(examples, list(range(start, min(start + batch_size, len(examples)))), pad)
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[:, :-1]
        targets = batch["labels"][:, 1:]
        total += float(torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1),
                                                         ignore_index=IGNORE, reduction="sum"))  # fmt: skip
        count += int((targets != IGNORE).sum())
    return math.exp(total / max(count, 1))


# ------------------------------------------------------------------------------------------- training


@dataclass
class CausalResult:
    """Where the run put its package, and what it measured."""

    run_dir: Path
    package: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]] = field(default_factory=list)


def _trainable(model: Any) -> dict[str, torch.Tensor]:
    return {k: p.detach().clone() for k, p in model.named_parameters() if p.requires_grad}


def finetune_causal(recipe: CausalRecipe, *, runs_dir: Path | str = "runs", resume: bool = False,
                    run_dir: Path | str | None = None) -> CausalResult:  # fmt: skip
    """Fine-tune, evaluate, sample and package; ``resume`` continues the latest unfinished run of the recipe
    from its last checkpoint (written every epoch and when stopped by Ctrl-C or SIGTERM).

    Raises:
        DataError: A data problem, named by its line.
        TrainingInterrupted: Stopped on request; the checkpoint is written, ``resume`` continues.
    """
    fresh = not resume and not (run_dir is not None and Path(run_dir).exists())
    folder = work_folder(Path(runs_dir) / recipe.name, resume=resume, explicit=Path(run_dir) if run_dir else None,
                         resumable=lambda d: not (d / "package" / MANIFEST).is_file())  # fmt: skip
    try:
        return _finetune_in(recipe, folder, resume=resume)
    except BaseException:
        if fresh and not (folder / "checkpoint.pt").exists():  # nothing in it to resume
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _finetune_in(recipe: CausalRecipe, folder: Path, *, resume: bool) -> CausalResult:
    from seekforge.train import StopSignals

    console.print(f"[bold]finetune[/] {recipe.name} -> {folder}")
    (folder / "recipe.yaml").write_text(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False), "utf-8")
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
            torch.save({**state, "trainable": _trainable(model), "optimizer": optimizer.state_dict(),
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
                loss = model(**collate(train, rows, pad)).loss
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
    prompts = recipe.generation.prompts or validation.prompts[: recipe.generation.samples]
    samples = [{"prompt": p, "output": generate(model, tokenizer, p, recipe.generation, seed=recipe.seed)}
               for p in prompts]  # fmt: skip
    package = write_causal_package(folder / "package", recipe, model, tokenizer, base, metrics, state, samples)
    return CausalResult(folder, package, metrics, state["history"])


# ------------------------------------------------------------------------------------------- generation


@torch.no_grad()
def generate(model: Any, tokenizer: Any, prompt: str, settings: Generation, *, seed: int = 0) -> str:
    """The text ``model`` continues ``prompt`` with (sampling seeded; greedy at temperature 0)."""
    torch.manual_seed(seed)
    encoded = tokenizer(prompt, return_tensors="pt")
    sample = settings.temperature > 0
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    output = model.generate(**encoded, max_new_tokens=settings.max_new_tokens, do_sample=sample, pad_token_id=pad,
                            **({"temperature": settings.temperature, "top_p": settings.top_p} if sample else {}))  # fmt: skip
    return str(tokenizer.decode(output[0, encoded["input_ids"].shape[1] :], skip_special_tokens=True))


# ------------------------------------------------------------------------------------------- the package


def write_causal_package(dest: Path, recipe: CausalRecipe, model: Any, tokenizer: Any, base: Path,
                         metrics: dict[str, Any], state: dict[str, Any], samples: list[dict[str, str]]) -> Path:  # fmt: skip
    """Write the package atomically (see the module's docstring)."""
    from safetensors.torch import save_file

    lora = recipe.model.adapter == "lora"
    targets = targets_of(recipe.model.target_modules, base) if lora else None
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    with atomic_dir(dest, overwrite=True) as tmp:
        if lora:
            adapter = {k: v.contiguous() for k, v in _trainable(model).items()}
            save_file(adapter, str(tmp / "adapter.safetensors"))
        else:
            model.save_pretrained(tmp / "model")
        tokenizer.save_pretrained(tmp / "tokenizer")
        (tmp / "recipe.yaml").write_text(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False), "utf-8")
        manifest = {
            "format": 1,
            "kind": "causal_lm",
            "name": recipe.name,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "base": recipe.model.base,
            "base_sha256": base_sha256(base),
            "model": recipe.model.model_dump(mode="json") | {"target_modules": targets},
            "parameters": {"trainable": trainable, "total": total},
            "metrics": metrics,
            "training": {"epochs": state["epoch"], "seconds": round(state["seconds"], 1), "history": state["history"]},
            "samples": samples,
        }
        (tmp / "report.html").write_text(_report(manifest), "utf-8")
        files = {str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        (tmp / MANIFEST).write_text(json.dumps({**manifest, "files": files}, indent=2), "utf-8")
    return dest


def _report(manifest: dict[str, Any]) -> str:
    metrics, history = manifest["metrics"], manifest["training"]["history"]
    share = 100 * manifest["parameters"]["trainable"] / max(manifest["parameters"]["total"], 1)
    summary = [
        ("base", f"{manifest['base']} (weights sha256 {manifest['base_sha256'][:12]}…)"),
        ("adapter", "none (every weight trained)" if manifest["model"]["adapter"] == "none" else
         f"LoRA rank {manifest['model']['rank']} on {', '.join(manifest['model']['target_modules'])}"),
        ("trainable parameters", f"{manifest['parameters']['trainable']:,} of {manifest['parameters']['total']:,} ({share:.2f}%)"),
        ("held-out perplexity, before / after", f"{r.fmt(metrics['val_perplexity_before'])} / {r.fmt(metrics['val_perplexity'])}"),
        ("rows (train / validation; cut to max_length)",
         f"{metrics['train_rows']} / {metrics['validation_rows']}; {metrics['truncated_rows']}"),
        ("training seconds", manifest["training"]["seconds"]),
    ]  # fmt: skip
    curves = {"train loss": [h["train_loss"] for h in history]}
    chart = r.line_chart(curves, title="training loss")
    if any("val_perplexity" in h for h in history):
        chart += r.line_chart({"held-out perplexity": [h["val_perplexity"] for h in history]}, title="perplexity")
    rows = [(s["prompt"], s["output"]) for s in manifest["samples"]]
    sections = [("Fine-tuning", r.table(summary)), ("Curves", chart),
                ("Sample generations", r.table(rows, ["prompt", "generated"]) if rows else "<p>none</p>")]  # fmt: skip
    return r.page(f"seekforge: {manifest['name']}", f"causal language model, created {manifest['created']}", sections)


class CausalPackage:
    """A causal-LM package, opened: every file checked, the base checked against its sha256."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        where = self.path / MANIFEST
        if not where.is_file():
            raise PackageError(f"{self.path} is not a causal language model package (no {MANIFEST})",
                               hint="make one with seekforge finetune and task: causal_lm")  # fmt: skip
        try:
            self.manifest = json.loads(where.read_text(encoding="utf-8"))
            files = dict(self.manifest["files"])
        except (ValueError, KeyError, TypeError) as exc:
            raise PackageError(f"{where} is damaged ({exc})") from None
        verify_files(self.path, files)
        self.recipe = CausalRecipe.model_validate(yaml.safe_load((self.path / "recipe.yaml").read_text("utf-8")))

    def load(self, *, merge: bool = False) -> tuple[Any, Any]:
        """The model (its adapter loaded onto the checked base; ``merge``: merged into its weights) and tokenizer."""
        tf = load_transformers()
        tokenizer = tf.AutoTokenizer.from_pretrained(self.path / "tokenizer")
        if self.manifest["model"]["adapter"] == "none":
            return tf.AutoModelForCausalLM.from_pretrained(self.path / "model", dtype=torch.float32).eval(), tokenizer
        from seekforge.models import load_tensors

        folder = resolve_pretrained(self.manifest["base"])
        check_base(folder, self.manifest["base"], self.manifest["base_sha256"])
        targets = self.manifest["model"]["target_modules"]
        model, _, _ = load_base(
            CausalModel.model_validate({**self.recipe.model.model_dump(), "target_modules": targets})
        )
        weights = load_tensors(self.path / "adapter.safetensors")
        expected = {k for k, p in model.named_parameters() if p.requires_grad}
        if set(weights) != expected:
            wrong = sorted(set(weights) ^ expected)[:3]
            raise PackageError(f"{self.path / 'adapter.safetensors'} does not fit the base's adapter layers: {wrong}")
        model.load_state_dict(weights, strict=False)
        model = model.merge_and_unload() if merge else model
        return model.eval(), tokenizer
