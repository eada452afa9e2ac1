"""Latency and throughput of a package's model on each backend it holds, at several batch sizes."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from seekforge.core.errors import ConfigError
from seekforge.core.package import read_manifest
from seekforge.core.progress import make_progress

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


def bench_package(
    package: str | Path,
    *,
    backends: Sequence[str] | None = None,
    batches: Sequence[int] = (1, 8, 32),
    threads: int | None = None,
    warmup: int = 5,
    seconds: float = 2.0,
    max_runs: int = 1000,
    rounds: int = 4,
) -> list[BenchRow]:
    """Time the model alone for every backend and batch size: encoded inputs in, outputs out (raw feature
    values in, for an ONNX graph that holds its preprocessing), the preprocessor's Python work excluded.

    Each measurement runs ``warmup`` untimed calls, then timed calls for about ``seconds`` (at least 10,
    at most ``max_runs``), taken in ``rounds`` slices that go round every measurement in turn (see
    :func:`time_interleaved`). Inputs are the package's held-out rows, repeated to fill a batch.

    Args:
        package: The model package.
        backends: Backends to time; default all the package holds (see :func:`available_backends`).
        batches: Batch sizes.
        threads: Threads for torch and onnxruntime; default all cores.

    Raises:
        ConfigError: A backend the package does not hold.
    """
    from seekforge.export import open_runner, raw_samples_of
    from seekforge.export._onnx import load_samples
    from seekforge.models import infer
    from seekforge.serve import build_model
    from seekforge.serve._predictor import available_backends, passing_export

    package = Path(package)
    manifest = read_manifest(package)
    have = available_backends(manifest)
    chosen = list(backends or have)
    missing = [b for b in chosen if b not in have]
    if missing:
        raise ConfigError(
            f"{package} has no {', '.join(missing)} backend; it has: {', '.join(have)}",
            hint="export first: seekforge export PACKAGE --format onnx|openvino [--precision ...]",
        )
    samples = load_samples(package, manifest)
    raw = raw_samples_of(package, manifest)
    threads = threads or torch.get_num_threads()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        calls: dict[tuple[str, int], Callable[[], Any]] = {}
        for backend in chosen:
            # One call per batch: the whole batch goes through the model at once.
            inputs: dict[str, Any] = samples.inputs
            if backend == "torch":
                run: Callable[..., Any] = functools.partial(infer, build_model(package), batch_size=10**9)
            else:
                export = passing_export(manifest, backend)
                assert export is not None
                run = functools.partial(open_runner(package, export, threads=threads), batch_size=10**9)
                if export.get("inputs") == "raw":
                    inputs = raw  # type: ignore[assignment]
            for batch in batches:
                calls[(backend, batch)] = functools.partial(run, _fill(inputs, batch))
        times = time_interleaved(calls, warmup=warmup, seconds=seconds, max_runs=max_runs, rounds=rounds)
    finally:
        torch.set_num_threads(previous)
    return [_row(backend, batch, threads, times[(backend, batch)]) for backend, batch in calls]


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


def _fill(inputs: dict[str, Any], batch: int) -> dict[str, Any]:
    """``batch`` rows of ``inputs`` (tensors or raw arrays), repeating them as needed."""
    index = np.arange(batch) % len(next(iter(inputs.values())))
    return {k: v[torch.from_numpy(index)] if isinstance(v, torch.Tensor) else v[index] for k, v in inputs.items()}


def _row(backend: str, batch: int, threads: int, times: list[float]) -> BenchRow:
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
