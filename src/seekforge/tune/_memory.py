"""Planning a study's memory: what a trial needs at its peak, and how many workers fit the machine."""

from __future__ import annotations

from typing import Any

from seekforge.train import BUDGET_SHARE, training_bytes

#: resident memory of a worker process before its trial (Python, torch, the prepared data aside)
PROCESS_BYTES = 400 * 2**20


def trial_bytes(recipe: Any, prepared: Any) -> int:
    """Peak memory of training ``recipe`` on ``prepared``, estimated before training (see
    :func:`seekforge.train.training_bytes`; with the gradient checkpointing the recipe asks for)."""
    from seekforge.build import build_seeded_model, model_io

    model = build_seeded_model(recipe, model_io(recipe, prepared))
    train = prepared.splits["train"]
    data = sum(t.numel() * t.element_size() for t in (*train.inputs.values(), train.target))
    return training_bytes(model, {k: v[:2] for k, v in train.inputs.items()}, optimizer=recipe.train.optimizer.type,
                          micro_batch=_micro(recipe.train), data_bytes=data,
                          checkpointed=recipe.train.gradient_checkpointing is True)  # fmt: skip


def _micro(train: Any) -> int:
    """Rows a trial's micro-batch has (``batch_size: auto`` fits the trial's budget: its least, one row)."""
    return 1 if train.batch_size == "auto" else train.batch_size // train.grad_accum


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
