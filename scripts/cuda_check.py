"""Checks on a CUDA machine what CI (CPU-only) cannot: the example recipes train on the GPU in fp32 and in
bf16 autocast, reach the accuracy they reach on the CPU, and their packages export to ONNX and pass the
parity gate against the torch model. Prints one line per check and writes cuda_check.json.

    python scripts/cuda_check.py [--out DIR]        # needs a CUDA device; nothing is downloaded
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def train(recipe: str, overrides: list[str], runs: Path) -> dict[str, Any]:
    import seekforge

    started = time.perf_counter()
    result = seekforge.run(recipe, overrides=overrides, runs_dir=runs)
    seconds = time.perf_counter() - started
    metric = "accuracy" if "accuracy" in result.metrics else "r2"
    return {"recipe": Path(recipe).stem, "overrides": overrides, "seconds": round(seconds, 2),
            metric: float(result.metrics[metric]), "epochs": len(result.history),
            "package": str(result.package)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("."))
    parser.add_argument("--device", default="cuda", help="cpu: a dry run of the script itself")
    args = parser.parse_args()
    os.environ.setdefault("SEEKFORGE_NO_PROGRESS", "1")
    import torch

    from seekforge.core.hardware import hardware
    from seekforge.export import export_package

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: this check runs on a GPU machine")
    cuda = args.device == "cuda"
    root = Path(__file__).resolve().parent.parent / "examples"
    found: dict[str, Any] = {
        "machine": hardware().summary(),
        "gpu": torch.cuda.get_device_name(0) if cuda else None,
        "torch": torch.__version__,
        "bf16": torch.cuda.is_bf16_supported() if cuda else None,
        "runs": [],
    }
    print(f"machine: {found['machine']}; GPU {found['gpu']}; torch {found['torch']}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        plan = [
            ("digits.yaml", ["train.device=cpu"]),
            ("digits.yaml", [f"train.device={args.device}"]),
            ("digits.yaml", [f"train.device={args.device}", "train.precision=bf16"]),
            ("breast_cancer.yaml", [f"train.device={args.device}"]),
        ]
        for recipe, overrides in plan:
            row = train(str(root / recipe), overrides, runs)
            if f"train.device={args.device}" in overrides:
                export_package(row["package"])  # raises when the export fails its parity gate
                row["onnx_parity"] = _parity(row["package"])
            row.pop("package")
            found["runs"].append(row)
            print(json.dumps(row), flush=True)
        found["peak_gpu_memory_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1) if cuda else None
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "cuda_check.json").write_text(json.dumps(found, indent=2))
    print(f"peak GPU memory: {found['peak_gpu_memory_mib']} MiB", flush=True)


def _parity(package: str) -> dict[str, Any]:
    from seekforge.core.package import read_manifest

    record = read_manifest(Path(package))["exports"]["onnx"]["parity"]
    return {k: record[k] for k in ("passed", "max_abs_diff", "agreement", "rows")}


if __name__ == "__main__":
    sys.exit(main())
