"""Claim: on the reviews classifier (all-MiniLM-L6-v2 fine-tuned with an exit head after each of its 6
layers), early exit cuts the mean latency per review by >= 35% at <= 1 accuracy point lost on the test
split, at batch 1 and at batch 32, on torch and on onnxruntime.

Trains examples/reviews.yaml with `model.early_exit` (entropy policy, joint training, the threshold
calibrated on the validation split to a 1-point budget; 12-18 minutes on 2 cores), or takes --package
(a package with early exit). Then, in this process, on the 1,000 test reviews:

- torch, full: the same model, every row through all 6 layers (no threshold);
- torch, early exit: rows leave at their exit, the rest go on as a smaller batch;
- onnxruntime, full: the model exported as one graph (the usual export of a model without exits);
- onnxruntime, early exit: the package's ONNX export, one graph per segment, chained.

Each pass predicts every test review (in batches of 1 or 32, in the file's order), passes go round the
four in turn --rounds times, and the mean milliseconds per review is the median pass's. The accuracy of
each is scored on the same rows.

    python benchmarks/early_exit.py [--package PATH] [--threads 2] [--rounds 3] [--rows 1000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import yaml

from seekforge.core.hardware import hardware
from seekforge.core.package import read_manifest, read_package_json
from seekforge.core.timing import time_interleaved
from seekforge.data import Preprocessor, load_splits
from seekforge.export import export_package, open_runner
from seekforge.export._onnx import OnnxRunner, export_onnx
from seekforge.models import build_model, infer, infer_exits, through_all_layers
from seekforge.pipeline import run
from seekforge.recipe import Recipe, load_recipe

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def exit_recipe(budget: float) -> Recipe:
    data = yaml.safe_load((EXAMPLES / "reviews.yaml").read_text())
    data["name"] = "reviews_exit"
    data["model"]["early_exit"] = {"policy": "entropy", "budget": {"max_accuracy_drop": budget}}
    return load_recipe(data)


def passes(calls: dict[str, Callable[[], Any]], rounds: int) -> dict[str, float]:
    """Median seconds of one call of each, the calls taken in turn ``rounds`` times after one warm-up each."""
    taken = time_interleaved(calls, warmup=1, seconds=0.0, max_runs=rounds, rounds=rounds, min_runs=rounds)
    return {name: statistics.median(values) for name, values in taken.items()}


def batched(
    run: Callable[[dict[str, torch.Tensor]], Any], inputs: dict[str, torch.Tensor], size: int
) -> Callable[[], Any]:
    rows = len(inputs["input_ids"])

    def every_row() -> list[Any]:
        return [run({k: v[start : start + size] for k, v in inputs.items()}) for start in range(0, rows, size)]

    return every_row


def main() -> None:
    print(f"machine: {hardware().summary()}", flush=True)  # every figure depends on it
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--package", type=Path)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1000, help="test reviews to time (all are scored)")
    parser.add_argument("--budget", type=float, default=0.01)
    parser.add_argument("--runs-dir", type=Path, default=Path("runs"))
    args = parser.parse_args()
    os.environ.setdefault("SEEKFORGE_NO_PROGRESS", "1")
    torch.set_num_threads(args.threads)
    recipe = exit_recipe(args.budget)
    package = args.package or run(recipe, runs_dir=args.runs_dir).package
    print(f"package: {package}", flush=True)
    manifest = read_manifest(package)
    summary = manifest["model"]["early_exit"]
    print(f"calibrated: {summary['policy']} threshold {summary['threshold']} "
          f"(validation accuracy {summary['validation']['accuracy_full']:.4f} full, "
          f"{summary['validation']['accuracy']:.4f} with exits)")  # fmt: skip
    if "onnx" not in manifest.get("exports", {}):
        export_package(package)
        manifest = read_manifest(package)
    preprocessor = Preprocessor.from_dict(read_package_json(package, "preprocessor.json"))
    test = load_splits(recipe.data, recipe.features, recipe.seed).test
    encoded = preprocessor.transform(test)
    target = preprocessor.transform_target(test)
    model = build_model(package, merge=True).eval()
    full = through_all_layers(model)
    with tempfile.TemporaryDirectory() as scratch:
        single = Path(scratch) / "full.onnx"
        export_onnx(full, {k: v[:8] for k, v in encoded.items()}, single, opset=18)
        ort_full = OnnxRunner(single, threads=args.threads)
        ort_exit = open_runner(package, manifest["exports"]["onnx"], threads=args.threads)
        runners: dict[str, Callable[[dict[str, torch.Tensor]], Any]] = {
            "torch full": lambda batch: infer(full, batch, batch_size=10**9),
            "torch early exit": lambda batch: infer_exits(model, batch, batch_size=10**9),
            "onnxruntime full": lambda batch: ort_full(batch, batch_size=10**9),
            "onnxruntime early exit": lambda batch: ort_exit(batch, batch_size=10**9),
        }
        scored = {}
        for name, runner in runners.items():
            out = runner(encoded)
            logits, layers = out if isinstance(out, tuple) else (out, None)
            mean_layers = float(layers.double().mean()) if layers is not None else float(summary["layers"])
            scored[name] = (float((logits.argmax(1) == target).double().mean()), mean_layers)
        timed = {k: v[: args.rows] for k, v in encoded.items()}
        results = {}
        for size in (1, 32):
            calls = {name: batched(runner, timed, size) for name, runner in runners.items()}
            results[size] = passes(calls, args.rounds)
    rows = len(timed["input_ids"])
    print(f"\n{len(target)} test reviews scored; {rows} timed per pass; {args.threads} threads; "
          f"median of {args.rounds} passes")  # fmt: skip
    print(f"{'runtime':<24} {'accuracy':>9} {'layers':>7} {'ms/row b1':>10} {'ms/row b32':>11}")
    print("-" * 66)
    for name, (accuracy, layers) in scored.items():
        b1, b32 = (results[s][name] * 1000 / rows for s in (1, 32))
        print(f"{name:<24} {accuracy:9.4f} {layers:7.2f} {b1:10.3f} {b32:11.3f}")
    print()
    for backend in ("torch", "onnxruntime"):
        drop = (scored[f"{backend} full"][0] - scored[f"{backend} early exit"][0]) * 100
        for size in (1, 32):
            cut = 1 - results[size][f"{backend} early exit"] / results[size][f"{backend} full"]
            print(f"{backend:<12} batch {size:>2}: early exit cuts mean latency by {cut:.1%} (target >= 35%), "
                  f"accuracy drop {drop:.2f} points (target <= 1)")  # fmt: skip


if __name__ == "__main__":
    main()
