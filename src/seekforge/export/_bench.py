"""Latency and throughput of a package's model on each backend it holds, at several batch sizes."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seekforge.core.errors import ConfigError
from seekforge.core.package import read_manifest
from seekforge.core.progress import make_progress


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
) -> list[BenchRow]:
    """Time the model alone for every backend and batch size: encoded inputs in, outputs out (raw feature
    values in, for an ONNX graph that holds its preprocessing), the preprocessor's Python work excluded.

    Each measurement runs ``warmup`` untimed calls, then timed calls for about ``seconds`` (at least 10,
    at most ``max_runs``). Inputs are the package's held-out rows, repeated to fill a batch.

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
    rows: list[BenchRow] = []
    try:
        with make_progress(transient=True) as progress:
            task = progress.add_task("bench", total=len(chosen) * len(batches), status="")
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
                    progress.update(task, status=f"{backend} batch {batch}")
                    rows.append(_time(run, _fill(inputs, batch), backend, batch, threads, warmup, seconds, max_runs))
                    progress.advance(task)
    finally:
        torch.set_num_threads(previous)
    return rows


def _fill(inputs: dict[str, Any], batch: int) -> dict[str, Any]:
    """``batch`` rows of ``inputs`` (tensors or raw arrays), repeating them as needed."""
    index = np.arange(batch) % len(next(iter(inputs.values())))
    return {k: v[torch.from_numpy(index)] if isinstance(v, torch.Tensor) else v[index] for k, v in inputs.items()}


def _time(
    run: Callable[[dict[str, torch.Tensor]], Any],
    inputs: dict[str, torch.Tensor],
    backend: str,
    batch: int,
    threads: int,
    warmup: int,
    seconds: float,
    max_runs: int,
) -> BenchRow:
    for _ in range(warmup):
        run(inputs)
    times: list[float] = []
    deadline = time.perf_counter() + seconds
    while len(times) < max_runs and (len(times) < 10 or time.perf_counter() < deadline):
        start = time.perf_counter()
        run(inputs)
        times.append(time.perf_counter() - start)
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
