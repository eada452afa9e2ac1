"""Claim: int8 exports keep their accuracy on CPUs without VNNI, because seekforge stores their weights in
7 bits there (onnxruntime's reduce_range, NNCF's overflow fix on every layer: `--reduce-range auto`).

Trains each quick example (digits, breast_cancer, wine, diabetes; 3 epochs, the recipe's seed), then
exports onnx-int8 and openvino-int8 with 8-bit weights (`--reduce-range off`) and 7-bit weights (`on`),
each on a copy of the package, and prints the drop of the headline metric (accuracy, or R2) on the
held-out rows, the predicted-class agreement and the gate's verdict (int8 limits: agreement >= 0.97,
drop <= 0.01). Every export runs twice: on this CPU as it is, and in a process started with
`ONEDNN_MAX_CPU_ISA=AVX2`, where torch's and OpenVINO's oneDNN kernels compute as on an AVX2-only CPU
(onnxruntime's own kernels ignore that cap: its rows under the cap are this CPU's). The table names the
ISA of each run.

    python benchmarks/int8_by_isa.py [--epochs 3] [--examples digits,diabetes]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from seekforge.core.hardware import hardware

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
VARIANTS = (("onnx", "onnx-int8"), ("openvino", "openvino-int8"))


def worker(packages: list[Path], scratch: Path) -> None:
    """Export every package's int8 variants both ways and print one JSON line per export."""
    from seekforge.export import ExportConfig, export_package

    isa = hardware().isa
    for package in packages:
        for fmt, name in VARIANTS:
            for reduce_range in ("off", "on"):
                copy = scratch / f"{package.parent.parent.name}-{name}-{reduce_range}"
                shutil.rmtree(copy, ignore_errors=True)
                shutil.copytree(package, copy)
                config = ExportConfig(format=fmt, precision="int8", reduce_range=reduce_range)  # type: ignore[arg-type]
                parity = export_package(copy, config, force=True).parity
                row = {
                    "example": package.parent.parent.name,
                    "variant": name,
                    "isa": isa,
                    "weights": "7-bit" if reduce_range == "on" else "8-bit",
                    "metric": parity.metric,
                    "drop": parity.reference_metric - parity.candidate_metric,
                    "agreement": parity.agreement,
                    "passed": parity.passed,
                }
                print(json.dumps(row), flush=True)


def main() -> None:
    print(f"machine: {hardware().summary()}", flush=True)  # every figure depends on it
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--examples", default="digits,breast_cancer,wine,diabetes")
    parser.add_argument("--worker", nargs="*", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--scratch", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("SEEKFORGE_NO_PROGRESS", "1")
    if args.worker is not None:
        worker(args.worker, args.scratch)
        return
    from seekforge.pipeline import run

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        packages = [
            run(EXAMPLES / f"{name}.yaml", overrides=[f"train.epochs={args.epochs}"], runs_dir=runs).package
            for name in args.examples.split(",")
        ]
        for cap in (None, "AVX2"):
            env = {**os.environ, **({"ONEDNN_MAX_CPU_ISA": cap} if cap else {})}
            command = [sys.executable, __file__, "--scratch", tmp, "--worker", *map(str, packages)]
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            rows += [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    print(f"\n{'example':<14} {'variant':<14} {'isa':<28} {'weights':<7} {'drop':>8} {'agree':>7}  gate")
    print("-" * 92)
    for r in rows:
        agreement = "" if r["metric"] == "r2" else f"{r['agreement']:.4f}"
        print(
            f"{r['example']:<14} {r['variant']:<14} {r['isa']:<28} {r['weights']:<7} {r['drop']:+8.4f} "
            f"{agreement:>7}  {'passed' if r['passed'] else 'FAILED'}"
        )
    for isa in dict.fromkeys(r["isa"] for r in rows):
        for weights in ("8-bit", "7-bit"):
            mine = [r for r in rows if r["isa"] == isa and r["weights"] == weights]
            worst = max(r["drop"] for r in mine)
            passed = sum(r["passed"] for r in mine)
            print(f"{isa}, {weights} weights: {passed}/{len(mine)} pass the gate, worst drop {worst:+.4f}")


if __name__ == "__main__":
    main()
