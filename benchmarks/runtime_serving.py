"""Claim: the torch-free runtime serves a text package (the reviews classifier, all-MiniLM-L6-v2 fine-tuned:
examples/reviews.yaml) and an image package (digits: examples/digits.yaml) from an install at most 1/4 the
size of the one the torch backend needs, with a p50 latency per request no worse than the torch backend's.

Sizes: ``du`` of two virtual environments built from the lock (``--venvs DIR``; built there when missing,
which needs the package index): the one a text or image package's Dockerfile installs
(``runtime,serve,runtime-text,runtime-image``) and the one the torch backend gets (``all``), and the
least a torch backend needs (``train,text,serve``).

Latency: in this process, per package, one raw record per request (the package's held-out rows in turn),
through (a) the runtime's predictor (the record encoded in numpy, the ONNX graph on onnxruntime: what the
runtime install runs) and (b) the full install's predictor on the torch backend. The calls take turns in
--rounds slices; p50 of each.

    python benchmarks/runtime_serving.py --text PACKAGE --image PACKAGE [--venvs /tmp/venvs] [--threads 2]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from seekforge.core.hardware import hardware
from seekforge.core.timing import time_interleaved
from seekforge.data import load_splits
from seekforge.export import export_package
from seekforge.recipe import load_recipe
from seekforge.runtime import load as load_runtime
from seekforge.serve import load as load_full

ROOT = Path(__file__).resolve().parent.parent
#: the runtime install a text or image package's Dockerfile uses; the one its torch backend gets (all), and the
#: least a torch backend needs to serve such a package (train, text, serve)
INSTALLS = {"runtime": "runtime,serve,runtime-text,runtime-image", "torch": "all", "torch-min": "train,text,serve"}


def venv_bytes(folder: Path, extras: str) -> int:
    if not (folder / "bin" / "python").is_file():
        subprocess.run([sys.executable, "-m", "venv", str(folder)], check=True)
        subprocess.run([str(folder / "bin" / "pip"), "install", "--quiet", "--constraint", str(ROOT / "constraints.txt"),
                        f"{ROOT}[{extras}]"], check=True)  # fmt: skip
    return int(subprocess.run(["du", "-sb", str(folder)], capture_output=True, text=True, check=True).stdout.split()[0])


def records(package: Path, rows: int) -> list[dict[str, Any]]:
    """The first ``rows`` raw records of the package's test split, as its recipe reads them."""
    recipe = load_recipe(package / "recipe.yaml")
    names = [f.name for f in recipe.features.inputs]
    return load_splits(recipe.data, recipe.features, recipe.seed).test[names].head(rows).to_dict(orient="records")


def latency(package: Path, rows: int, threads: int, rounds: int) -> dict[str, float]:
    if "onnx" not in (load_full(package, backend="torch").manifest.get("exports") or {}):
        export_package(package)
    runtime = load_runtime(package, threads=threads)
    torch_backend = load_full(package, backend="torch")
    chosen = records(package, rows)
    agree = sum(
        runtime.predict([r])["prediction"][0] == torch_backend.predict(pd.DataFrame([r]))["prediction"][0]
        for r in chosen
    )
    turn = {"runtime": 0, "torch": 0}

    def one(kind: str) -> None:
        record = chosen[turn[kind] % len(chosen)]
        turn[kind] += 1
        if kind == "runtime":
            runtime.predict([record])
        else:
            torch_backend.predict(pd.DataFrame([record]))

    taken = time_interleaved({k: (lambda k=k: one(k)) for k in turn}, warmup=5, seconds=4.0 * rounds, rounds=rounds)
    return {"agreement": agree / len(chosen), **{k: 1000 * statistics.median(v) for k, v in taken.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", type=Path, required=True, help="a package of examples/reviews.yaml")
    parser.add_argument("--image", type=Path, required=True, help="a package of examples/digits.yaml")
    parser.add_argument("--venvs", type=Path, default=Path("/tmp/seekforge-venvs"))
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    sizes = {name: venv_bytes(args.venvs / name, extras) for name, extras in INSTALLS.items()}
    facts = hardware()
    print(f"{facts.cpu}, {facts.isa}, {facts.cores} cores; {args.threads} threads")
    print(f"{'install':10} {'extras':45} {'MB':>8}")
    for name, extras in INSTALLS.items():
        print(f"{name:10} {extras:45} {sizes[name] / 1e6:8.0f}")
    for torch_install in ("torch", "torch-min"):
        print(f"runtime / {torch_install} install size: {sizes['runtime'] / sizes[torch_install]:.3f}")
    print()
    print(f"{'package':10} {'runtime p50 ms':>15} {'torch p50 ms':>13} {'ratio':>7} {'agreement':>10}")
    for name, package in (("reviews", args.text), ("digits", args.image)):
        found = latency(package, args.rows, args.threads, args.rounds)
        print(f"{name:10} {found['runtime']:15.3f} {found['torch']:13.3f} {found['runtime'] / found['torch']:7.3f} "
              f"{found['agreement']:10.3f}")  # fmt: skip


if __name__ == "__main__":
    main()
