"""Timing a set of calls fairly on a shared, noisy machine: latency percentiles and rows per second."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

import numpy as np

from seekforge.core.errors import ConfigError
from seekforge.core.progress import make_progress

__all__ = ["BenchRow", "bench_row", "fill_rows", "time_interleaved"]

K = TypeVar("K")


@dataclass(frozen=True)
class BenchRow:
    """One backend at one batch size: latency percentiles in milliseconds and rows per second."""

    backend: str
    batch: int
    threads: int
    runs: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    rows_per_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def time_interleaved(
    calls: Mapping[K, Callable[[], object]],
    *,
    warmup: int = 5,
    seconds: float = 2.0,
    max_runs: int = 1000,
    rounds: int = 4,
    min_runs: int = 10,
) -> dict[K, list[float]]:
    """Seconds per call of every function in ``calls``, measured in turn in ``rounds`` slices each.

    A slice lasts ``seconds / rounds`` (at least ``min_runs / rounds`` calls, at most ``max_runs / rounds``);
    the rounds go round all the calls, so that a slow spell of a shared machine falls on every call alike
    rather than on whichever was timed during it. Every call first runs ``warmup`` times untimed.
    """
    if rounds < 1:
        raise ConfigError(f"rounds must be at least 1, got {rounds}")
    times: dict[K, list[float]] = {key: [] for key in calls}
    least, most = -(-min_runs // rounds), max(1, max_runs // rounds)
    with make_progress(transient=True) as progress:
        task = progress.add_task("bench", total=rounds * len(calls), status="warming up")
        for call in calls.values():
            for _ in range(warmup):
                call()
        for round_ in range(rounds):
            for key, call in calls.items():
                progress.update(task, status=f"{_label(key)}, round {round_ + 1}/{rounds}")
                taken: list[float] = []
                deadline = time.perf_counter() + seconds / rounds
                while len(taken) < most and (len(taken) < least or time.perf_counter() < deadline):
                    start = time.perf_counter()
                    call()
                    taken.append(time.perf_counter() - start)
                times[key].extend(taken)
                progress.advance(task)
    return times


def _label(key: object) -> str:
    return " batch ".join(str(part) for part in key) if isinstance(key, tuple) else str(key)


def bench_row(backend: str, batch: int, threads: int, times: list[float]) -> BenchRow:
    """The row of ``backend`` at ``batch`` from its measured seconds per call."""
    ms = np.asarray(times) * 1000
    return BenchRow(
        backend,
        batch,
        threads,
        len(times),
        float(np.percentile(ms, 50)),
        float(np.percentile(ms, 90)),
        float(np.percentile(ms, 99)),
        float(batch / np.median(times)),
    )


def fill_rows(inputs: Mapping[str, Any], batch: int) -> dict[str, Any]:
    """``batch`` rows of ``inputs`` (numpy arrays or torch tensors, rows first), repeating them as needed."""
    index = np.arange(batch) % len(next(iter(inputs.values())))
    return {name: values[index] for name, values in inputs.items()}
