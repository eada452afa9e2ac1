"""Claims on the digits CNN (examples/digits.yaml, 360 test rows):

1. Structured pruning removes at least 60% of the parameters with at most 0.5 accuracy point lost after
   fine-tuning (``seekforge compress --prune 0.5 --distill``: half the channels of every convolution, then
   recovery fine-tuning that distils from the unpruned model). ``--ratio 0.4`` removes 64% of the
   parameters, which is within the claim on every seed; 0.5 removes 74%.
2. Quantization-aware training keeps at least the accuracy of post-training INT8: QAT (torchao PT2E, then
   its QDQ graph on onnxruntime) against static post-training QDQ quantization of the same parent
   (onnxruntime, calibrated on training rows), both measured as onnxruntime INT8 models on the test split.

For each seed the example recipe is trained with that seed, then compressed both ways.

    python benchmarks/compress_digits.py [--seeds 3] [--ratio 0.5] [--finetune-epochs 8] [--qat-epochs 3]
        [--importance magnitude|taylor|lamp]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("SEEKFORGE_NO_PROGRESS", "1")

from seekforge.compress import CompressConfig, compress_package
from seekforge.core.hardware import hardware
from seekforge.export import ExportConfig, export_package
from seekforge.pipeline import run

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def main() -> None:
    print(f"machine: {hardware().summary()}", flush=True)  # every figure depends on it
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--ratio", type=float, default=0.5)
    parser.add_argument("--importance", choices=["magnitude", "taylor", "lamp"], default="magnitude")
    parser.add_argument("--finetune-epochs", type=int, default=8)
    parser.add_argument("--qat-epochs", type=int, default=3)
    args = parser.parse_args()
    started = time.perf_counter()
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        for seed in range(args.seeds):
            parent = run(EXAMPLES / "digits.yaml", overrides=[f"seed={seed}"], runs_dir=root / "runs").package
            pruned = compress_package(
                parent,
                CompressConfig(
                    prune={"ratio": args.ratio, "finetune_epochs": args.finetune_epochs, "importance": args.importance},
                    distill={},
                ),
                runs_dir=root / "runs",
                seconds=0.3,
            )
            base, small = pruned.rows[0], pruned.rows[-1]
            ptq_copy = root / f"ptq-{seed}"
            shutil.copytree(parent, ptq_copy)
            ptq = export_package(ptq_copy, ExportConfig(precision="int8", quantization="static")).parity
            qat = compress_package(
                parent, CompressConfig(quantize={"epochs": args.qat_epochs}), runs_dir=root / "runs", seconds=0.3
            )
            qat_int8 = export_package(qat.package, ExportConfig(precision="int8")).parity
            rows.append({
                "seed": seed,
                "accuracy": base.metric,
                "removed": 1 - small.parameters / base.parameters,
                "pruned": small.metric,
                "ptq": ptq.candidate_metric,
                "qat": qat_int8.candidate_metric,
                "rows": ptq.rows,
            })  # fmt: skip
            r = rows[-1]
            print(f"seed {seed}: fp32 {r['accuracy']:.4f}; pruned {r['removed']:.1%} of {base.parameters:,} "
                  f"parameters -> {r['pruned']:.4f}; int8 PTQ {r['ptq']:.4f}, QAT {r['qat']:.4f} "
                  f"({r['rows']} rows)", flush=True)  # fmt: skip
    drop = [100 * (r["accuracy"] - r["pruned"]) for r in rows]
    print()
    print(f"{'seed':>4} {'fp32':>7} {'removed':>8} {'pruned':>7} {'drop pt':>8} {'PTQ int8':>9} {'QAT int8':>9}")
    for r, d in zip(rows, drop, strict=True):
        print(f"{r['seed']:>4} {r['accuracy']:>7.4f} {r['removed']:>8.1%} {r['pruned']:>7.4f} {d:>8.2f} "
              f"{r['ptq']:>9.4f} {r['qat']:>9.4f}")  # fmt: skip
    removed = min(r["removed"] for r in rows)
    print(f"parameters removed: at least {removed:.1%} (target >= 60%); accuracy drop: mean {statistics.mean(drop):.2f}, "
          f"worst {max(drop):.2f} points (target <= 0.5)")  # fmt: skip
    wins = sum(r["qat"] >= r["ptq"] for r in rows)
    mean_ptq, mean_qat = statistics.mean(r["ptq"] for r in rows), statistics.mean(r["qat"] for r in rows)
    print(f"QAT >= PTQ on {wins} of {len(rows)} seeds; mean accuracy PTQ {mean_ptq:.4f}, QAT {mean_qat:.4f}")
    print(f"{time.perf_counter() - started:.0f} s on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
