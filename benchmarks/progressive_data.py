"""Progressive data against training on every row every epoch: training time and test accuracy.

Claim to check (the specification's): starting on 10% of the rows and growing by 20% an epoch cuts the
training time and keeps the accuracy. Measured on digits (``examples/digits.yaml``'s CNN, without its early
stopping so that both runs have the same epochs) and on the reviews (a scratch transformer, 2 layers, 128
wide, 8 epochs: the MiniLM fine-tune's 2 epochs would give progressive data 10% and 30% of the rows). Both
runs of a data set go through ``seekforge.run`` in this process, one after the other, the same recipe but
``train.progressive``; the ratio is of the training seconds the runs record, whatever it is.

    .venv/bin/python benchmarks/progressive_data.py          # --start 0.1 --grow 0.2
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]

REVIEWS: dict[str, Any] = {
    "name": "reviews-scratch",
    "seed": 0,
    "data": {"source": "builtin:reviews", "test": "builtin:reviews/test",
             "split": {"train": 0.9, "validation": 0.1, "test": 0.0}},
    "features": {"inputs": [{"name": "review", "type": "text", "max_length": 128}],
                 "output": {"name": "score", "type": "category"}},
    "model": {"type": "transformer", "layers": 2, "heads": 4, "hidden": 128, "ffn": 256, "dropout": 0.1},
    "train": {"epochs": 8, "batch_size": 32, "lr": 1e-3, "schedule": {"type": "linear", "warmup": 0.05}},
}  # fmt: skip


def digits() -> dict[str, Any]:
    recipe = yaml.safe_load((ROOT / "examples" / "digits.yaml").read_text(encoding="utf-8"))
    recipe["train"].pop("early_stopping", None)
    recipe.pop("card", None)
    return dict(recipe)


def one(recipe: dict[str, Any], runs: Path) -> dict[str, Any]:
    import seekforge
    from seekforge.core.package import read_manifest

    result = seekforge.run(recipe, runs_dir=runs)
    manifest = read_manifest(result.package)
    return {"accuracy": result.metrics["accuracy"], "seconds": manifest["training"]["seconds"],
            "steps": manifest["training"]["steps"]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--start", type=float, default=0.1)
    parser.add_argument("--grow", type=float, default=0.2)
    parser.add_argument("--only", choices=["digits", "reviews"])
    args = parser.parse_args()
    from seekforge.core.hardware import hardware

    print(f"machine: {hardware().summary()}", flush=True)
    progressive = {"start": args.start, "grow": args.grow}
    table = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, recipe in (("digits", digits()), ("reviews", REVIEWS)):
            if args.only not in (None, name):
                continue
            every = one(recipe, Path(tmp) / f"{name}-every")
            grown = one({**recipe, "train": {**recipe["train"], "progressive": progressive}}, Path(tmp) / name)
            table.append((name, every, grown))
    print(f"{'':<8} {'every row: acc':>15} {'s':>7} {'steps':>6}   {'progressive: acc':>17} {'s':>7} {'steps':>6}"
          f"   {'time ratio':>10} {'acc drop (pt)':>13}")  # fmt: skip
    for name, every, grown in table:
        drop = 100 * (every["accuracy"] - grown["accuracy"])
        print(f"{name:<8} {every['accuracy']:>15.4f} {every['seconds']:>7.1f} {every['steps']:>6}   "
              f"{grown['accuracy']:>17.4f} {grown['seconds']:>7.1f} {grown['steps']:>6}   "
              f"{grown['seconds'] / every['seconds']:>10.2f} {drop:>13.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
