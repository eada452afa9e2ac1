"""Latency and throughput of a package's model on each backend it holds, at several batch sizes."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from seekforge.core.errors import ConfigError
from seekforge.core.package import read_manifest
from seekforge.core.timing import BenchRow, bench_row, fill_rows, time_interleaved


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
    from seekforge.core.variants import TORCH_BACKENDS, available_backends, passing_export, takes_raw
    from seekforge.export._onnx import load_samples
    from seekforge.export._package import open_runner, raw_samples_of
    from seekforge.models import build_model, for_backend, infer

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
    raw = raw_samples_of(package, manifest, samples)
    threads = threads or torch.get_num_threads()
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        calls: dict[tuple[str, int], Callable[[], Any]] = {}
        for backend in chosen:
            # One call per batch: the whole batch goes through the model at once.
            inputs: dict[str, Any] = samples.inputs
            if backend in TORCH_BACKENDS:
                model = for_backend(build_model(package), backend)
                run: Callable[..., Any] = functools.partial(infer, model, batch_size=10**9)
            else:
                export = passing_export(manifest, backend)
                assert export is not None
                run = functools.partial(open_runner(package, export, threads=threads), batch_size=10**9)
                if takes_raw(export):
                    inputs = raw  # type: ignore[assignment]
            for batch in batches:
                calls[(backend, batch)] = functools.partial(run, fill_rows(inputs, batch))
        times = time_interleaved(calls, warmup=warmup, seconds=seconds, max_runs=max_runs, rounds=rounds)
    finally:
        torch.set_num_threads(previous)
    return [bench_row(backend, batch, threads, times[(backend, batch)]) for backend, batch in calls]
