"""Claim: static INT8 (QDQ) of the digits CNN is faster than the fp32 ONNX model at batch 32, and loses at
most 0.5 accuracy point on the test split.

Trains examples/digits.yaml (or takes --package), exports fp32 and INT8 ONNX, and times both with
onnxruntime, and torch eager beside them, in this process at batch 1 and 32 with the same thread count.
The test split of digits has 360 rows, all of which the package carries for its parity gate.

    python benchmarks/int8_vs_fp32.py [--package PATH] [--threads 2] [--seconds 3]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import torch

from seekforge.core.hardware import hardware
from seekforge.core.package import read_manifest
from seekforge.export import ExportConfig, bench_package, export_package
from seekforge.pipeline import run

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def main() -> None:
    print(f"machine: {hardware().summary()}", flush=True)  # every figure depends on it
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--package", type=Path)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    os.environ.setdefault("SEEKFORGE_NO_PROGRESS", "1")
    with tempfile.TemporaryDirectory() as runs:
        package = args.package or run(EXAMPLES / "digits.yaml", runs_dir=runs).package
        fp32 = export_package(package)
        int8 = export_package(package, ExportConfig(precision="int8"))
        rows = bench_package(package, batches=(1, 32), threads=args.threads, seconds=args.seconds)
        exports = read_manifest(package)["exports"]
    latency = {(r.backend, r.batch): r for r in rows}
    print()
    print(f"{'variant':<18} {'MB':>6} {'accuracy':>9} {'p50 ms b1':>10} {'p50 ms b32':>11} {'rows/s b32':>11}")
    print("-" * 70)
    names = {
        "torch": ("torch eager fp32", None),
        "onnxruntime": ("onnx fp32", "onnx"),
        "onnxruntime-int8": ("onnx int8 (QDQ)", "onnx-int8"),
    }
    for backend, (label, key) in names.items():
        size = exports[key]["bytes"] / 1e6 if key else float("nan")
        accuracy = fp32.parity.reference_metric if key is None else exports[key]["parity"]["candidate_metric"]
        b1, b32 = latency[(backend, 1)], latency[(backend, 32)]
        print(f"{label:<18} {size:6.2f} {accuracy:9.4f} {b1.p50_ms:10.3f} {b32.p50_ms:11.3f} {b32.rows_per_s:11,.0f}")
    speedup = latency[("onnxruntime", 32)].p50_ms / latency[("onnxruntime-int8", 32)].p50_ms
    drop = (int8.parity.reference_metric - int8.parity.candidate_metric) * 100
    print(
        f"\nint8 vs fp32 onnx at batch 32: {speedup:.2f}x faster (target > 1); accuracy drop {drop:.2f} points "
        f"(target <= 0.5) on {int8.parity.rows} test rows; threads {args.threads}"
    )


if __name__ == "__main__":
    main()
