"""Claim: a CNN's channels-last (NHWC) variant is measured against NCHW and kept only where faster.

seekforge trains the digits CNN of examples/digits.yaml (scikit-learn's handwritten digits) at three image
sizes (8x8 as scanned, scaled up to 32x32 and 64x64), then times the package's torch model as trained
(`torch`, NCHW) and with its 4-D weights in channels-last memory order (`torch-channels-last`) side by
side in this process at batch 1 and 32 (interleaved rounds, as `seekforge bench` times), checks that both
give the same predictions, and applies optimize's rule (kept only when no slower at either batch size).

    python benchmarks/channels_last.py [--epochs 3] [--seconds 2] [--sizes 8,32,64]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
import yaml

import seekforge
from seekforge.core.hardware import hardware
from seekforge.export import Candidate, bench_package
from seekforge.export._optimize import select
from seekforge.models import build_model, for_backend, infer
from seekforge.train import Tensors, headline_metric

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "digits.yaml"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--sizes", default="8,32,64")
    args = parser.parse_args()
    facts = hardware()
    print(f"{facts.cpu}, {facts.isa}, {facts.cores} cores; torch {torch.__version__}")
    lines = []
    for side in (int(s) for s in args.sizes.split(",")):
        recipe = yaml.safe_load(EXAMPLE.read_text())
        recipe["features"]["inputs"][0]["size"] = [side, side]
        recipe["train"] = {**recipe["train"], "epochs": args.epochs}
        recipe.pop("card", None)
        with tempfile.TemporaryDirectory() as tmp:
            package = seekforge.run(recipe, runs_dir=Path(tmp) / "runs").package
            samples = Tensors.load(package / "samples.safetensors")
            outputs = {b: infer(for_backend(build_model(package), b), samples.inputs)
                       for b in ("torch", "torch-channels-last")}  # fmt: skip
            diff = (outputs["torch"] - outputs["torch-channels-last"]).abs().max().item()
            accuracy = headline_metric(outputs["torch"], samples.target, task="classification")[1]
            rows = bench_package(package, backends=["torch", "torch-channels-last"], batches=(1, 32),
                                 seconds=args.seconds)  # fmt: skip
        p50 = {(r.backend, r.batch): r.p50_ms for r in rows}
        candidates = [
            Candidate(b, accuracy, 0.0, p50[(b, 1)], p50[(b, 32)], "") for b in ("torch", "torch-channels-last")
        ]
        kept, judged = select(candidates, budget=0.0)
        lines.append((side, accuracy, diff, p50, kept, judged[1].verdict))
    print(f"\n{'image':>7} {'accuracy':>8} {'max diff':>9} {'NCHW b1':>8} {'NHWC b1':>8} {'NCHW b32':>9} "
          f"{'NHWC b32':>9} {'b1 x':>5} {'b32 x':>6}  kept")  # fmt: skip
    for side, accuracy, diff, p50, kept, verdict in lines:
        b1 = p50[("torch", 1)] / p50[("torch-channels-last", 1)]
        b32 = p50[("torch", 32)] / p50[("torch-channels-last", 32)]
        print(f"{side:>3}x{side:<3} {accuracy:8.4f} {diff:9.1e} {p50[('torch', 1)]:8.3f} "
              f"{p50[('torch-channels-last', 1)]:8.3f} {p50[('torch', 32)]:9.3f} {p50[('torch-channels-last', 32)]:9.3f} "
              f"{b1:5.2f} {b32:6.2f}  {kept} ({verdict})")  # fmt: skip
    print("(ms: p50 latency; b1 x, b32 x: NCHW time / NHWC time, above 1 where channels-last is faster)")


if __name__ == "__main__":
    main()
