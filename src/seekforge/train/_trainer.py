"""The Trainer: one training loop you can read top to bottom.

Per epoch: a seeded shuffle (the same for every process), micro-batches with gradient accumulation,
clipping, an optimizer step and a learning-rate step; then validation, ``metrics.jsonl`` and early
stopping. A checkpoint (model, optimizer, scheduler, RNG state, position in the epoch, history) is written
atomically every ``checkpoint_every`` optimizer steps and at the end of an epoch (at most every 30 s, and
always after the last); Ctrl-C or SIGTERM stops at the next step and writes one there. Resuming from a checkpoint gives weights bitwise equal to an
uninterrupted run on CPU.
"""

from __future__ import annotations

import copy
import json
import math
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from seekforge.core.errors import CheckpointError, ConfigError, PackageError, TrainingInterrupted
from seekforge.core.hardware import hardware, peak_rss_mb
from seekforge.core.io import atomic_path, write_text_atomic
from seekforge.core.metrics import classification_metrics, lower_is_better, regression_metrics
from seekforge.core.progress import console, labelled, make_progress
from seekforge.models import collate, infer, num_rows
from seekforge.runtime import canonical
from seekforge.train import _weights
from seekforge.train._distill import Distillation
from seekforge.train._memory import BUDGET_SHARE, available_bytes, training_bytes
from seekforge.train.config import TrainConfig

CHECKPOINT = "last.pt"


def checkpoint_path(run_dir: Path) -> Path:
    """Where a run keeps its latest checkpoint."""
    return Path(run_dir) / "checkpoints" / CHECKPOINT


def stop_record_path(run_dir: Path) -> Path:
    """Where a distributed worker notes that training stopped for a stop request (from any machine), so
    the launcher tells a stop, which ``--resume`` continues, from a failure."""
    return Path(run_dir) / "checkpoints" / "stopped.json"


# Epochs of small models take milliseconds: an epoch-end checkpoint is skipped when the last one is younger
# than this, so a crash costs at most this much work (the final epoch and every stop always write one).
EPOCH_CHECKPOINT_SECONDS = 30.0
LOG_SECONDS = 30.0  # without a progress bar (logs, CI), a status line with ETA this often
#: without clipping (which measures it anyway), the gradient norm is measured every this many steps
GRAD_NORM_EVERY = 8
#: fields of an epoch's record that measure the machine (time, memory), not training: they differ between
#: two identical runs
TIMING_KEYS = ("rows_per_s", "peak_rss_mb")


@dataclass
class Tensors:
    """Encoded inputs and targets of one split."""

    inputs: dict[str, torch.Tensor]
    target: torch.Tensor

    def __len__(self) -> int:
        return num_rows(self.inputs) if self.inputs else 0

    def head(self, rows: int) -> Tensors:
        return Tensors({k: v[:rows] for k, v in self.inputs.items()}, self.target[:rows])

    def to_bytes(self) -> bytes:
        """Safetensors bytes (``input.<name>`` and ``target``)."""
        from safetensors.torch import save

        tensors = {f"input.{k}": v.contiguous() for k, v in self.inputs.items()}
        return save({**tensors, "target": self.target.contiguous()})

    def save(self, path: Path) -> None:
        Path(path).write_bytes(self.to_bytes())

    @classmethod
    def load(cls, path: Path) -> Tensors:
        from seekforge.models import load_tensors

        raw = load_tensors(path)
        if "target" not in raw:
            raise PackageError(f"{path} holds no 'target' tensor: it is not a set of rows seekforge wrote")
        inputs = {k.removeprefix("input."): v for k, v in raw.items() if k.startswith("input.")}
        return cls(inputs, raw["target"])


@dataclass(frozen=True)
class DistContext:
    """Where this process stands in a distributed run (world of 1 when not distributed): its global rank,
    and its rank on its own machine (``local_rank``), whose 0 keeps that machine's checkpoint."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def keeps_checkpoint(self) -> bool:
        """One process per machine writes the checkpoint, so every machine can resume from its own disk."""
        return self.local_rank == 0


@dataclass
class TrainResult:
    """What a finished run leaves: its per-epoch history, the epoch whose weights were kept, the steps."""

    history: list[dict[str, Any]]
    best_epoch: int
    steps: int
    stopped_early: bool
    seconds: float = 0.0
    resumed_from: dict[str, int] | None = None
    notes: list[str] = field(default_factory=list)
    #: Ctrl-C or SIGTERM came during the last epoch: training finished, but the caller should stop too
    stop_requested: bool = False


def resolve_device(choice: str) -> torch.device:
    if choice == "cuda" or (choice == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise ConfigError("train.device is 'cuda' but no CUDA device is available", hint="use 'auto'")
        return torch.device("cuda")
    return torch.device("cpu")


def bf16_supported(device: torch.device) -> bool:
    """Whether ``device`` computes bf16 in hardware; a CPU needs AVX-512 BF16 or AMX (see ``seekforge env``)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return hardware().bf16


def lr_lambda(config: TrainConfig, total_steps: int) -> Any:
    steps = config.schedule.warmup_steps
    warmup = int(config.schedule.warmup * total_steps) if steps is None else min(steps, total_steps)
    floor = config.schedule.min_lr_ratio

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        if config.schedule.type == "constant":
            return 1.0
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        if config.schedule.type == "linear":
            return floor + (1 - floor) * (1 - progress)
        return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def task_loss(
    logits: torch.Tensor, target: torch.Tensor, task: str, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """The training loss: mean squared error for regression, (weighted) cross-entropy for classes."""
    if task == "regression":
        return F.mse_loss(logits.reshape(-1), target)
    return F.cross_entropy(logits, target, weight=weights)


class Trainer:
    """Trains ``model`` on encoded tensors.

    Args:
        model: The module to train (wrapped in DistributedDataParallel here when ``dist`` has 2+ ranks).
        config: The recipe's ``train`` section.
        task: ``classification`` or ``regression``.
        seed: The recipe's seed; fixes the shuffles and dropout.
        run_dir: Where ``checkpoints/`` and ``metrics.jsonl`` go (the main process writes them).
        dist: Rank and world size.
        classes: The class of each target index, for ``class_weights`` given by class name.
        epoch_hook: Called with each epoch's record (losses and validation metrics) once it is logged;
            an exception it raises (a search pruning the trial) ends training.
        checks_per_epoch: With a validation split, the validation split is also scored this many minus
            one times spread over each epoch, after whole optimizer steps, and ``epoch_hook`` sees each
            check: ``epoch`` (the epochs trained, a fraction: 1.5 halfway through the second), ``check``
            (its number counting every epoch's ``checks_per_epoch`` checks; the epoch's own record is
            check ``epoch * checks_per_epoch``), ``step`` and the validation metrics. Checks are not logged
            and do not change training. Every process scores them, as it does at an epoch's end.
        distillation: A teacher whose outputs the training loss also follows.
        penalty: A term added to each step's loss, computed from the model (a federated site's proximal
            term, which holds its weights near the round's global ones).
        quiet: No line per epoch and no progress bar (a federated site's rounds are reported by the server).
    """

    def __init__(
        self,
        model: nn.Module,
        config: TrainConfig,
        *,
        task: str,
        seed: int,
        run_dir: Path,
        dist: DistContext | None = None,
        classes: Sequence[Any] | None = None,
        epoch_hook: Callable[[dict[str, Any]], None] | None = None,
        checks_per_epoch: int = 1,
        distillation: Distillation | None = None,
        penalty: Callable[[nn.Module], torch.Tensor] | None = None,
        quiet: bool = False,
    ) -> None:
        self.quiet = quiet
        self.config = config
        self.distillation = distillation
        self.penalty = penalty
        self.epoch_hook = epoch_hook
        self.checks_per_epoch = checks_per_epoch
        self.task = task
        self.classes = classes
        self.seed = seed
        self.run_dir = Path(run_dir)
        self.dist = dist or DistContext()
        self.device = resolve_device(config.device)
        self.model = model.to(self.device)
        if distillation is not None:
            distillation.teacher.to(self.device)
        self.net: nn.Module = model
        if self.dist.world_size > 1:
            self.net = nn.parallel.DistributedDataParallel(model)
        if config.threads:
            torch.set_num_threads(config.threads)
        self.precision = config.precision
        if self.precision == "bf16" and not bf16_supported(self.device):
            warnings.warn(
                f"train.precision is bf16 but this {self.device.type} has no bf16 support"
                + (f" ({hardware().isa}: no AVX-512 BF16 or AMX)" if self.device.type == "cpu" else "")
                + "; training in fp32",
                RuntimeWarning,
                stacklevel=2,
            )
            self.precision = "fp32"
        self.checkpoint_path = checkpoint_path(self.run_dir)
        self.stop_signals = StopSignals()
        self._last_checkpoint = time.monotonic()
        self.metrics_path = self.run_dir / "metrics.jsonl"
        self.weights_path = self.run_dir / _weights.FILE

    # -------------------------------------------------------------------------------------- the loop

    def fit(self, train: Tensors, validation: Tensors | None, *, resume: bool = False) -> TrainResult:
        """Train for ``config.epochs`` (or until early stopping) and leave the kept weights in the model."""
        chosen, batch_note = None, None
        if self.config.batch_size == "auto":  # a resumed run keeps the batch it started with
            saved = self._saved_batch_size() if resume else None
            if saved is not None:
                chosen, batch_note = saved, f"batch size {saved}: as chosen when the run started"
            else:
                chosen, batch_note = self._auto_batch(train)
            self.config = TrainConfig.model_validate({**self.config.model_dump(), "batch_size": chosen})
        cfg, dist = self.config, self.dist
        assert isinstance(cfg.batch_size, int)
        micro = cfg.batch_size // (dist.world_size * cfg.grad_accum)
        if micro < 1 or cfg.batch_size % (dist.world_size * cfg.grad_accum):
            raise ConfigError(
                f"train.batch_size ({cfg.batch_size}) must be a multiple of processes x grad_accum "
                f"({dist.world_size} x {cfg.grad_accum})"
            )
        if cfg.early_stopping and (validation is None or len(validation) == 0):  # Trainer used directly
            raise ConfigError(
                "train.early_stopping needs a validation split, but data.split.validation is 0",
                hint="set data.split.validation (e.g. 0.1) or remove train.early_stopping",
            )
        epoch_rows = [self._epoch_rows(epoch, len(train)) for epoch in range(cfg.epochs)]
        layouts = {rows: self._bounds(rows, micro) for rows in set(epoch_rows)}  # one, unless progressive
        epoch_steps = [math.ceil((len(layouts[rows]) - 1) / cfg.grad_accum) for rows in epoch_rows]
        total_steps = sum(epoch_steps)
        checkpointing, note = self._checkpointing(train, micro)

        optimizer = cfg.optimizer.build([p for p in self.model.parameters() if p.requires_grad], cfg.lr)
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(cfg, total_steps))
        weights = self._class_weights(train.target)
        if self.distillation is not None:
            self.distillation.remember(train, batch_size=cfg.eval_batch_size, device=self.device)

        state = {"epoch": 0, "micro": 0, "step": 0, "history": [], "best": None, "bad_epochs": 0, "batch_size": chosen}
        resumed_from = None
        if resume and self.checkpoint_path.exists():
            state = self._load_checkpoint(optimizer, scheduler)
            resumed_from = {"epoch": state["epoch"], "micro_batch": state["micro"], "step": state["step"]}
            if dist.is_main:
                self._write_metrics(state["history"])
                _weights.keep_until(self.weights_path, state["epoch"])
        else:
            torch.manual_seed(self.seed)
            if dist.is_main:
                self.metrics_path.parent.mkdir(parents=True, exist_ok=True)
                self.metrics_path.unlink(missing_ok=True)
                self.weights_path.unlink(missing_ok=True)
        trained = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        histograms = cfg.histograms_every > 0

        stop = state.get("stopped", False)
        started = time.perf_counter()
        progress = make_progress(disable=None if dist.is_main and not self.quiet else True)
        with progress, self.stop_signals:
            task = progress.add_task("train", total=total_steps, completed=state["step"], status="")
            next_status = 0.0
            first_step = state["step"]
            try:
                while state["epoch"] < cfg.epochs and not stop:
                    epoch = state["epoch"]
                    self.net.train()
                    rows = epoch_rows[epoch]
                    bounds = layouts[rows]  # micro-batch i is order[bounds[i]:bounds[i + 1]]
                    micro_per_epoch, steps_per_epoch = len(bounds) - 1, epoch_steps[epoch]
                    checks = self._checks_within_epoch(steps_per_epoch, validation)
                    order = self._order(epoch, len(train), rows)
                    state.setdefault("epoch_losses", [])
                    losses: list[float] = state["epoch_losses"]
                    norms: list[torch.Tensor] = state.setdefault("epoch_grad_norms", [])
                    epoch_began, first_micro = time.perf_counter(), state["micro"]
                    for micro_index in range(state["micro"], micro_per_epoch):
                        index = order[bounds[micro_index] : bounds[micro_index + 1]]
                        last_of_step = (micro_index + 1) % cfg.grad_accum == 0 or micro_index + 1 == micro_per_epoch
                        group_start = micro_index - micro_index % cfg.grad_accum
                        group = min(cfg.grad_accum, micro_per_epoch - group_start)  # the last group may be short
                        losses.append(self._forward_backward(train, index, weights, group=group, sync=last_of_step))
                        if not last_of_step:
                            continue
                        measured = state["step"] % GRAD_NORM_EVERY == 0
                        per_layer = _weights.gradient_norms(trained) if measured and (
                            histograms or cfg.grad_clip is None) else None  # fmt: skip
                        if per_layer is not None and histograms:  # before clipping scales them
                            summed = state.get("layer_grad_sum")
                            state["layer_grad_sum"] = per_layer if summed is None else summed + per_layer
                            state["layer_grad_steps"] = state.get("layer_grad_steps", 0) + 1
                        if cfg.grad_clip is not None:
                            norms.append(nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip).detach())
                        elif per_layer is not None:
                            norms.append(torch.linalg.vector_norm(per_layer))
                        optimizer.step()
                        scheduler.step()
                        optimizer.zero_grad(set_to_none=True)
                        state["step"] += 1
                        state["micro"] = micro_index + 1
                        if time.monotonic() >= next_status:  # formatting the status every step costs
                            recent = losses[-20:]
                            status = f"epoch {epoch + 1}/{cfg.epochs} loss {sum(recent) / len(recent):.4f}"
                            progress.update(task, completed=state["step"], status=status)
                            next_status = time.monotonic() + (0.25 if not progress.disable else LOG_SECONDS)
                            if progress.disable and dist.is_main and time.perf_counter() - started > LOG_SECONDS / 2:
                                done = state["step"] - first_step
                                eta = (time.perf_counter() - started) / max(done, 1) * (total_steps - state["step"])
                                sys.stderr.write(f"step {state['step']}/{total_steps}  {status}  eta {eta:.0f}s\n")
                        within = state["step"] - sum(epoch_steps[:epoch])
                        if within in checks:  # before a stop: a resumed run would not come back to it
                            assert validation is not None
                            self._sync_buffers()
                            check = {"epoch": epoch + within / steps_per_epoch, "step": state["step"],
                                     "check": epoch * self.checks_per_epoch + checks[within]}  # fmt: skip
                            check.update(self.evaluate(validation, prefix="val_"))
                            if self.epoch_hook is not None:
                                self.epoch_hook(check)
                        # A consistent point: weights, optimizer, scheduler and RNG all belong to this step.
                        if cfg.checkpoint_every and state["step"] % cfg.checkpoint_every == 0:
                            self._save_checkpoint(state, optimizer, scheduler)
                        if self._stop_requested():
                            self._save_checkpoint(state, optimizer, scheduler)
                            raise self._interrupted(state, written=True)
                    record = {
                        "epoch": epoch + 1,
                        "step": state["step"],
                        "train_loss": sum(losses) / len(losses),
                        "lr": scheduler.get_last_lr()[0],
                        "gradient_checkpointing": checkpointing,
                    }
                    if norms:  # the total norm of the gradients before clipping, averaged over the steps measured
                        record["grad_norm"] = float(torch.stack([n.float().cpu() for n in norms]).mean())
                    seconds = time.perf_counter() - epoch_began
                    if seconds > 0 and micro_per_epoch > first_micro:  # training rows a second, this process
                        record["rows_per_s"] = (bounds[micro_per_epoch] - bounds[first_micro]) / seconds
                    peak = peak_rss_mb()
                    if peak is not None:  # this process's peak resident memory so far
                        record["peak_rss_mb"] = round(peak, 1)
                    if cfg.progressive is not None:
                        record["train_rows"] = rows
                    if chosen is not None:
                        record["batch_size"] = chosen
                    if validation is not None and len(validation):
                        self._sync_buffers()
                        record.update(self.evaluate(validation, prefix="val_"))
                    state["history"].append(record)
                    stop = self._any_rank(self._early_stopping(state, record))
                    layer_grads, layer_steps = state.get("layer_grad_sum"), state.get("layer_grad_steps", 0)
                    state.update(epoch=epoch + 1, micro=0, stopped=stop, epoch_losses=[], epoch_grad_norms=[],
                                 layer_grad_sum=None, layer_grad_steps=0)  # fmt: skip
                    last = stop or state["epoch"] == cfg.epochs
                    due = time.monotonic() - self._last_checkpoint >= EPOCH_CHECKPOINT_SECONDS
                    saved = last or self._any_rank(due)  # every machine checkpoints at the same epochs
                    if dist.is_main and histograms and (last or state["epoch"] % cfg.histograms_every == 0):
                        # before the checkpoint (a crash between them: the resumed run cuts this line and writes
                        # it again) and before the metrics line (a watcher seeing that epoch finds its weights)
                        _weights.append(self.weights_path, _weights.epoch_record(
                            epoch + 1, trained[: _weights.MAX_TENSORS], layer_grads, layer_steps))  # fmt: skip
                    if saved:
                        self._save_checkpoint(state, optimizer, scheduler)
                    progress.update(task, completed=state["step"])
                    if dist.is_main:
                        with open(self.metrics_path, "a", encoding="utf-8") as log:
                            log.write(json.dumps(record) + "\n")
                        if self.quiet:
                            pass  # (no line: see quiet)
                        elif progress.disable:  # plain lines for logs; rich's layout costs a small model's epoch
                            sys.stderr.write(labelled(_describe(record)) + "\n")
                        else:
                            console.print(labelled(_describe(record)), highlight=False, markup=False)
                    if self.epoch_hook is not None:
                        self.epoch_hook(record)
                    if not last and self._stop_requested():
                        if not saved:
                            self._save_checkpoint(state, optimizer, scheduler)
                        raise self._interrupted(state, written=True)
            except KeyboardInterrupt:
                # A second Ctrl-C: stop now; the live state may be mid-step, so keep the last checkpoint.
                raise self._interrupted(state, written=False) from None

        best = state["best"]
        best_epoch = len(state["history"])
        if cfg.early_stopping and best is not None:
            self.model.load_state_dict(best["weights"])
            best_epoch = best["epoch"]
        return TrainResult(
            history=state["history"],
            best_epoch=best_epoch,
            steps=state["step"],
            stopped_early=bool(stop) and len(state["history"]) < cfg.epochs,
            seconds=time.perf_counter() - started,
            resumed_from=resumed_from,
            notes=[n for n in (batch_note, note) if n],
            stop_requested=self.stop_signals.requested,
        )

    def _memory_facts(self, train: Tensors) -> tuple[dict[str, torch.Tensor], int, int | None]:
        """What the memory estimates take: two rows to run, the training data's bytes, and the budget in bytes
        (``train.memory_budget``, else a share of the memory available; None where that is unknown)."""
        sample = {k: v.to(self.device) for k, v in train.head(2).inputs.items()}
        data = sum(t.numel() * t.element_size() for t in (*train.inputs.values(), train.target))
        available = available_bytes()
        if self.device.type == "cuda":  # the GPU's memory is what runs out; the rows stay in the host's
            available, data = torch.cuda.mem_get_info(self.device)[0], 0
        budget = self.config.memory_budget * 2**20 if self.config.memory_budget else None
        return sample, data, budget or (int(available * BUDGET_SHARE) if available else None)

    def _auto_batch(self, train: Tensors) -> tuple[int, str]:
        """``batch_size: auto``: the largest ``grad_accum x 2**k`` rows whose estimated peak of training fits
        the memory budget, at most an eighth of the training rows; the config takes it. It and a note."""
        cfg = self.config
        switch = getattr(self.model, "checkpoint_layers", None)
        sample, data, budget = self._memory_facts(train)
        most = max(1, len(train) // 8)
        sizes = [cfg.grad_accum * 2**k for k in range(13) if cfg.grad_accum * 2**k <= max(most, cfg.grad_accum)]
        needs = {size: training_bytes(self.model, sample, micro_batch=size // cfg.grad_accum, data_bytes=data,
                                      optimizer=cfg.optimizer.type,
                                      checkpointed=cfg.gradient_checkpointing is True and switch is not None)
                 for size in sizes}  # fmt: skip
        fits = [size for size in sizes if budget and needs[size] <= budget]
        chosen = fits[-1] if fits else sizes[0] if budget else min(32 * cfg.grad_accum, sizes[-1])
        if not budget:
            note = f"batch size {chosen}: free memory unknown (set train.memory_budget)"
        else:
            note = (f"batch size {chosen}: training needs ~{needs.get(chosen, 0) / 2**20:,.0f} MiB by estimate, the "
                    f"budget is {budget / 2**20:,.0f} MiB" + ("" if fits else " (the smallest batch does not fit)")
                    + (f"; at most an eighth of the {len(train)} training rows" if chosen == sizes[-1] and fits else ""))  # fmt: skip
        if self.dist.is_main:
            console.print(note, highlight=False, markup=False)
        return chosen, note

    def _checkpointing(self, train: Tensors, micro: int) -> tuple[bool, str | None]:
        """Switch the model's gradient checkpointing as ``train.gradient_checkpointing`` asks (``auto``: on when
        the estimated peak of training exceeds the memory budget); whether it is on, and a note on why.

        Raises:
            ConfigError: It is asked for, and the model has no layers to checkpoint.
        """
        cfg = self.config
        switch = getattr(self.model, "checkpoint_layers", None)
        wanted, note = cfg.gradient_checkpointing, None
        if wanted == "auto" and switch is not None:
            sample, data, budget = self._memory_facts(train)
            need = training_bytes(self.model, sample, micro_batch=micro, optimizer=cfg.optimizer.type, data_bytes=data)
            wanted = bool(budget) and need > budget
            note = (f"gradient checkpointing {'on' if wanted else 'off'}: training needs ~{need / 2**20:,.0f} MiB by "
                    f"estimate, " + (f"the budget is {budget / 2**20:,.0f} MiB" if budget else "free memory unknown"))  # fmt: skip
            if self.dist.is_main:
                console.print(note, highlight=False, markup=False)
        if wanted is True and switch is None:
            raise ConfigError(
                f"train.gradient_checkpointing: a {type(self.model).__name__} has no encoder layers to checkpoint",
                hint="use it with model.type: transformer, or remove it",
            )
        if switch is not None:
            switch(wanted is True)
        return wanted is True, note

    def _epoch_rows(self, epoch: int, total: int) -> int:
        """The rows an epoch trains on: all of them, less a remainder so that every process takes as many;
        with ``train.progressive`` its share of them (never fewer than two a process)."""
        world, progressive = self.dist.world_size, self.config.progressive
        rows = total - total % world
        if progressive is not None:
            share = min(1.0, progressive.start + progressive.grow * epoch)
            rows = max(min(rows, 2 * world), math.ceil(share * rows / world) * world)
        return rows

    def _bounds(self, rows: int, micro: int) -> list[int]:
        """The micro-batches' bounds in this process's share of an epoch's ``rows``."""
        per_rank = rows // self.dist.world_size
        bounds = [*range(0, per_rank, micro), per_rank]
        if len(bounds) > 2 and bounds[-1] - bounds[-2] == 1:
            del bounds[-2]  # a last batch of one row breaks batch norm: it joins the one before
        return bounds

    def _saved_batch_size(self) -> int | None:
        """The batch size ``auto`` chose when the run to resume started (None: no readable checkpoint)."""
        if not self.checkpoint_path.exists():
            return None
        try:
            saved = torch.load(self.checkpoint_path, map_location="cpu", weights_only=True, mmap=True)
        except Exception:  # a damaged checkpoint: the resume itself says so
            return None
        value = saved.get("batch_size") if isinstance(saved, dict) else None
        return value if isinstance(value, int) else None

    def _order(self, epoch: int, total: int, rows: int) -> torch.Tensor:
        """This process's share of the epoch's shuffle (the same on every process); with several processes
        the shuffle is cut to ``rows`` so all get the same number, and a different remainder each epoch."""
        generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
        order = torch.randperm(total, generator=generator)[:rows]
        return order[self.dist.rank :: self.dist.world_size]

    def _forward_backward(
        self, data: Tensors, index: torch.Tensor, weights: torch.Tensor | None, *, group: int, sync: bool
    ) -> float:
        batch = collate(data.inputs, index)
        target = data.target[index]
        if self.device.type != "cpu":
            batch = {k: v.to(self.device, non_blocking=True) for k, v in batch.items()}
            target = target.to(self.device, non_blocking=True)
        if self.dist.world_size > 1 and not sync:
            with self.net.no_sync():  # gradients are all-reduced only on a step's last micro-batch
                return self._step_loss(batch, target, weights, group, index)
        return self._step_loss(batch, target, weights, group, index)

    def _step_loss(
        self,
        batch: dict[str, torch.Tensor],
        target: torch.Tensor,
        weights: torch.Tensor | None,
        group: int,
        index: torch.Tensor,
    ) -> float:
        if self.precision == "bf16":
            with torch.autocast(self.device.type, dtype=torch.bfloat16):
                logits = self.net(batch).float()
        else:
            logits = self.net(batch)
        loss = self._loss(logits, target, weights)
        if self.distillation is not None:
            loss = self.distillation.loss(logits, batch, loss, self.task, rows=index)
        exit_loss = getattr(self.model, "exit_loss", None)  # a model with early exit: its exits learn too
        if exit_loss is not None:
            loss = exit_loss(loss, lambda exit_logits: self._loss(exit_logits, target, weights))
        if self.penalty is not None:
            loss = loss + self.penalty(self.model)
        (loss / group if group > 1 else loss).backward()  # a step's gradient is its micro-batches' mean
        return loss.item()

    def _loss(self, logits: torch.Tensor, target: torch.Tensor, weights: torch.Tensor | None) -> torch.Tensor:
        return task_loss(logits, target, self.task, weights)

    def _class_weights(self, target: torch.Tensor) -> torch.Tensor | None:
        spec = self.config.class_weights
        if self.task != "classification" or spec == "none":
            return None
        if spec == "balanced":
            counts = torch.bincount(target, minlength=int(target.max()) + 1).float()
            return (counts.sum() / (len(counts) * counts.clamp(min=1))).to(self.device)
        assert isinstance(spec, dict)
        known = [canonical(c) for c in self.classes or []]
        unknown = sorted(set(spec) - set(known))
        if unknown or not known:
            raise ConfigError(
                f"train.class_weights: no class named {', '.join(map(repr, unknown))} in the training data",
                hint=f"classes: {', '.join(map(repr, known))}",
            )
        return torch.tensor([spec.get(name, 1.0) for name in known], dtype=torch.float32, device=self.device)

    def _checks_within_epoch(self, steps_per_epoch: int, validation: Tensors | None) -> dict[int, int]:
        """The steps within an epoch after which the validation split is checked, each with the check's
        number within the epoch (1 to ``checks_per_epoch - 1``; the epoch's end is not among them). The
        same on every process: it hangs on nothing a process decides alone."""
        if validation is None or not len(validation) or self.checks_per_epoch < 2:
            return {}
        n = self.checks_per_epoch
        marks = {math.ceil(steps_per_epoch * j / n): j for j in range(1, n)}  # few steps: a later j wins
        marks.pop(steps_per_epoch, None)
        return marks

    # ---------------------------------------------------------------------------------- evaluation

    def evaluate(self, data: Tensors, *, prefix: str = "") -> dict[str, float]:
        """Loss and headline metrics of the current weights on ``data`` (no confusion matrix)."""
        logits = infer(self.model, data.inputs, batch_size=self.config.eval_batch_size, device=self.device)
        out = {"loss": float(self._loss(logits, data.target, None))}
        if self.task == "regression":
            out.update(regression_metrics(data.target.numpy(), logits.reshape(-1).numpy()))
        else:
            out.update(classification_metrics(data.target.numpy(), torch.softmax(logits, 1).numpy(), full=False))
        return {f"{prefix}{k}": v for k, v in out.items()}

    def _early_stopping(self, state: dict[str, Any], record: dict[str, Any]) -> bool:
        rule = self.config.early_stopping
        if rule is None:
            return False
        if rule.monitor not in record:
            raise ConfigError(
                f"train.early_stopping.monitor '{rule.monitor}' is not a recorded metric; "
                f"available: {', '.join(k for k in record if k.startswith('val_'))}"
            )
        value = record[rule.monitor]
        sign = -1.0 if lower_is_better(rule.monitor) else 1.0
        best = state["best"]
        if best is None or sign * (value - best["value"]) > rule.min_delta:
            state["best"] = {
                "value": value,
                "epoch": record["epoch"],
                "weights": copy.deepcopy(self.model.state_dict()),
            }
            state["bad_epochs"] = 0
            return False
        state["bad_epochs"] += 1
        return state["bad_epochs"] >= rule.patience

    # --------------------------------------------------------------------------------- checkpoints

    def _save_checkpoint(self, state: dict[str, Any], optimizer: torch.optim.Optimizer, scheduler: Any) -> None:
        """Write the live state atomically; called only right after an optimizer step or an epoch's end."""
        if not self.dist.keeps_checkpoint:
            self._last_checkpoint = time.monotonic()
            return
        payload = {
            **state,
            "model": self.model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "rng": torch.get_rng_state(),
            "seed": self.seed,
            "world_size": self.dist.world_size,
            "threads": torch.get_num_threads(),
            "format": 1,
        }
        if self.device.type == "cuda":
            payload["cuda_rng"] = torch.cuda.get_rng_state()
        with atomic_path(self.checkpoint_path) as tmp:
            torch.save(payload, tmp)
        self._last_checkpoint = time.monotonic()

    def _stop_requested(self) -> bool:
        """Whether any process was asked to stop (all processes agree, so they stop at the same step)."""
        return self._any_rank(self.stop_signals.requested)

    def _any_rank(self, flag: bool) -> bool:
        """``flag`` OR-ed over all processes, so every process takes the same branch."""
        if self.dist.world_size == 1:
            return flag
        import torch.distributed as torch_dist

        value = torch.tensor([1.0 if flag else 0.0], device=self.device)
        torch_dist.all_reduce(value, op=torch_dist.ReduceOp.MAX)
        return bool(value.item())

    def _sync_buffers(self) -> None:
        """Give every process rank 0's buffers (batch-norm statistics drift apart within an epoch), so all
        evaluate the same model and reach the same early-stopping decisions."""
        if self.dist.world_size == 1:
            return
        import torch.distributed as torch_dist

        for buffer in self.model.buffers():
            torch_dist.broadcast(buffer, src=0)

    def _interrupted(self, state: dict[str, Any], *, written: bool) -> TrainingInterrupted:
        where = f"epoch {state['epoch'] + 1}, step {state['step']}"
        if written:
            message = f"training stopped at {where}; checkpoint written to {self.checkpoint_path}"
        elif self.checkpoint_path.exists():
            message = f"training interrupted at {where}; the last checkpoint in {self.checkpoint_path} is kept"
        else:
            message = f"training interrupted at {where} before any checkpoint was written"
        return TrainingInterrupted(message, hint="continue with the same command and --resume")

    def _load_checkpoint(self, optimizer: torch.optim.Optimizer, scheduler: Any) -> dict[str, Any]:
        try:
            payload = torch.load(self.checkpoint_path, map_location=self.device, weights_only=True)
        except Exception as exc:  # torch raises several types for a damaged file
            raise CheckpointError(
                f"{self.checkpoint_path} cannot be read ({type(exc).__name__}: {exc})",
                hint="delete it to restart this run from the beginning, or start a new run without --resume",
            ) from None
        if payload.get("world_size", 1) != self.dist.world_size:
            raise ConfigError(
                f"{self.checkpoint_path} was written by {payload.get('world_size')} processes; "
                f"resuming with {self.dist.world_size} would not continue the same run",
                hint=f"resume with --nproc {payload.get('world_size')}",
            )
        if payload.get("threads", torch.get_num_threads()) != torch.get_num_threads():
            warnings.warn(
                f"the checkpoint was written with {payload['threads']} threads and this process has "
                f"{torch.get_num_threads()}; the resumed weights may differ in the last bits (set train.threads)",
                RuntimeWarning,
                stacklevel=2,
            )
        if payload.get("seed") != self.seed:
            raise ConfigError(
                f"{self.checkpoint_path} was written with seed {payload.get('seed')}, the recipe says {self.seed}",
                hint="resume with the recipe that started the run, or start a new run without --resume",
            )
        try:
            self.model.load_state_dict(payload["model"])
        except RuntimeError as exc:  # torch's message for missing, unexpected or mis-shaped weights
            found = "; ".join(line.strip() for line in str(exc).splitlines()[1:4] if line.strip())
            raise CheckpointError(
                f"{self.checkpoint_path} does not fit this model: {found or exc}",
                hint="resume with the recipe that started the run, or start a new run without --resume",
            ) from None
        optimizer.load_state_dict(payload["optimizer"])
        scheduler.load_state_dict(payload["scheduler"])
        torch.set_rng_state(payload["rng"].cpu())
        if "cuda_rng" in payload and self.device.type == "cuda":
            torch.cuda.set_rng_state(payload["cuda_rng"].cpu())
        keys = (
            "epoch",
            "micro",
            "step",
            "history",
            "best",
            "bad_epochs",
            "epoch_losses",
            "epoch_grad_norms",
            "layer_grad_sum",
            "layer_grad_steps",
            "stopped",
        )
        return {k: payload[k] for k in keys if k in payload}

    def _write_metrics(self, history: list[dict[str, Any]]) -> None:
        write_text_atomic(self.metrics_path, "".join(json.dumps(r) + "\n" for r in history))


def untimed(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``records`` (epochs' records) without the fields that measure time: what two identical runs share."""
    return [{k: v for k, v in record.items() if k not in TIMING_KEYS} for record in records]


def _describe(record: dict[str, Any]) -> str:
    parts = [f"epoch {record['epoch']}"]
    parts += [f"{k} {v:.4f}" for k, v in record.items()
              if k not in ("epoch", "step", "lr", "grad_norm", *TIMING_KEYS) and isinstance(v, float)]  # fmt: skip
    return "  ".join(parts)


class StopSignals:
    """While active, SIGINT (Ctrl-C) and SIGTERM request a stop that the loop honours at the next optimizer
    step, after writing a checkpoint; a second Ctrl-C interrupts at once. Call :meth:`request` to stop
    from code. Only the main thread can take signals; elsewhere only :meth:`request` works."""

    def __init__(self) -> None:
        self.requested = False
        self._previous: dict[int, Any] = {}

    def request(self) -> None:
        self.requested = True

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested and signum == signal.SIGINT:
            raise KeyboardInterrupt
        self.requested = True
        console.print("stopping after the current step (a checkpoint will be written; Ctrl-C again to stop at once)")

    def __enter__(self) -> StopSignals:
        self.requested = False
        if threading.current_thread() is threading.main_thread():
            for signum in (signal.SIGINT, signal.SIGTERM):
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()
