"""Claim: for the reviews classifier on the MiniLM encoder, the variant `seekforge optimize --target cpu`
keeps is >= 3x faster than torch eager fp32 at batch 1 and sequence 128, loses <= 1 accuracy point on the
test split, and its file is >= 3.9x smaller than the fp32 model.

Trains examples/reviews.yaml (about 12 minutes on 2 cores; or takes --package), runs optimize (every CPU
variant is built, gated and timed), then times torch eager and every built variant side by side in this
process on one review of exactly 128 tokens, and scores torch and the kept variant on the whole test split
(1,000 reviews). The timing goes round the backends in turn, --rounds times, so that a slow spell of the
machine falls on all of them alike.

    python benchmarks/minilm_optimize.py [--package PATH] [--threads 2] [--seconds 5] [--rounds 10]
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
from pathlib import Path

import torch

import seekforge
from seekforge.core.hardware import hardware
from seekforge.core.package import read_manifest
from seekforge.core.timing import bench_row, time_interleaved
from seekforge.data import load_splits
from seekforge.export import open_runner, optimize_package
from seekforge.models import build_model, infer
from seekforge.pipeline import run
from seekforge.recipe import load_recipe
from seekforge.train import Tensors

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SEQUENCE = 128


def one_full_row(package: Path) -> dict[str, torch.Tensor]:
    """A held-out review that fills all 128 tokens (long reviews are truncated to it)."""
    samples = Tensors.load(package / "samples.safetensors")
    lengths = samples.inputs["attention_mask"].sum(dim=1)
    row = int(lengths.argmax())
    if int(lengths[row]) < SEQUENCE:
        raise SystemExit(f"no held-out review reaches {SEQUENCE} tokens (longest {int(lengths[row])})")
    return {k: v[row : row + 1, :SEQUENCE] for k, v in samples.inputs.items()}


def main() -> None:
    print(f"machine: {hardware().summary()}", flush=True)  # every figure depends on it
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--package", type=Path)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seconds", type=float, default=5.0, help="timed seconds per backend")
    parser.add_argument("--rounds", type=int, default=10, help="slices the seconds are taken in, backends in turn")
    parser.add_argument("--budget", type=float, default=0.01)
    args = parser.parse_args()
    os.environ.setdefault("SEEKFORGE_NO_PROGRESS", "1")
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        package = args.package or run(EXAMPLES / "reviews.yaml", runs_dir=scratch).package
        result = optimize_package(
            package, Path(scratch) / "optimized", max_accuracy_drop=args.budget, threads=args.threads
        )
        optimized = result.package
        manifest = read_manifest(optimized)
        exports = manifest["exports"]
        row = one_full_row(optimized)
        model = build_model(optimized)
        runs = {"torch": functools.partial(infer, model, batch_size=1)}
        for record in exports.values():
            if record["parity"]["passed"]:
                runs[record["backend"]] = open_runner(optimized, record, threads=args.threads)
        times = time_interleaved(
            {backend: functools.partial(call, row) for backend, call in runs.items()},
            warmup=10,
            seconds=args.seconds,
            max_runs=100_000,
            rounds=args.rounds,
        )
        timings = {backend: bench_row(backend, 1, args.threads, taken) for backend, taken in times.items()}
        recipe = load_recipe(EXAMPLES / "reviews.yaml")
        test = load_splits(recipe.data, recipe.features, recipe.seed).test
        accuracy = {
            backend: seekforge.load(optimized, backend=backend).evaluate(test)["accuracy"]
            for backend in ("torch", result.selected)
        }
        torch_bytes = (optimized / "model.safetensors").stat().st_size
    print("\noptimize candidates (held-out rows; p50 at batch 1 and 32 of the held-out rows):")
    for c in result.candidates:
        print(
            f"  {c.backend:<22} metric {c.metric!s:<8.6} b1 {c.p50_ms_batch1!s:<8.5} b32 {c.p50_ms_batch32!s:<8.5} {c.verdict}"
        )
    print(f"\nbatch 1, sequence {SEQUENCE}, {args.threads} threads:")
    print(f"{'backend':<22} {'MB':>7} {'p50 ms':>8} {'p90 ms':>8} {'vs torch':>9}")
    print("-" * 58)
    base = timings["torch"].p50_ms
    for backend, row_ in timings.items():
        size = (
            torch_bytes if backend == "torch" else next(r["bytes"] for r in exports.values() if r["backend"] == backend)
        )
        print(f"{backend:<22} {size / 1e6:7.2f} {row_.p50_ms:8.3f} {row_.p90_ms:8.3f} {base / row_.p50_ms:8.2f}x")
    chosen = result.selected
    chosen_bytes = next((r["bytes"] for r in exports.values() if r["backend"] == chosen), torch_bytes)
    size_ratio = torch_bytes / chosen_bytes
    drop = (accuracy["torch"] - accuracy[chosen]) * 100
    print(
        f"\nkept by optimize: {chosen}: {base / timings[chosen].p50_ms:.2f}x faster than torch eager fp32 "
        f"(target >= 3.0), accuracy {accuracy[chosen]:.4f} vs {accuracy['torch']:.4f} on {len(test)} test reviews, "
        f"drop {drop:.2f} points (target <= 1), file {size_ratio:.2f}x smaller (target >= 3.9)"
    )


if __name__ == "__main__":
    main()
