"""LSH attention against SDPA on a long-text task built from the reviews: test accuracy and training time.

Claim to check (the specification's: LSH keeps 98% of full attention's accuracy). Each row of the task
joins ``--join`` reviews drawn at random (the 4,000 training reviews for the training rows, the 1,000 test
reviews for the test rows) and takes the label of the first: with ``--task first`` the model has to find,
in a long text, the part that decides; with ``--task same`` every review joined has that label (a long
document whose class shows throughout). The same scratch transformer (2 layers, 128 wide, 4 heads, ``max_length`` tokens, [CLS]
pooling, so that the answer has to travel through attention) trains with ``model.attention: sdpa`` and with
LSH (32 buckets, 2 hash rounds, chunks of 64), through ``seekforge.run``, one after the other in this
process.

    .venv/bin/python benchmarks/attention_accuracy.py          # --join 4 --tokens 1024 --epochs 4
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def joined(frame: pd.DataFrame, rows: int, join: int, seed: int, task: str = "first") -> pd.DataFrame:
    """``rows`` texts of ``join`` reviews each, labelled by the first (``task: first``: the rest are noise),
    or drawn from one class (``same``: the label is spread over the whole text)."""
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(frame), size=(rows, join))
    if task == "same":
        for row in picks:
            same = np.flatnonzero(frame["score"].to_numpy() == frame["score"].iloc[row[0]])
            row[1:] = rng.choice(same, size=join - 1)
    texts = [" ".join(frame["review"].iloc[p]) for p in picks]
    return pd.DataFrame({"review": texts, "score": frame["score"].iloc[picks[:, 0]].to_numpy()})


def recipe(train: Path, test: Path, attention: Any, args: argparse.Namespace) -> dict[str, Any]:
    return {
        "name": f"long-{attention if isinstance(attention, str) else 'lsh'}",
        "seed": 0,
        "data": {"source": str(train), "test": str(test), "split": {"train": 0.9, "validation": 0.1, "test": 0.0}},
        "features": {"inputs": [{"name": "review", "type": "text", "max_length": args.tokens}],
                     "output": {"name": "score", "type": "category"}},
        "model": {"type": "transformer", "layers": 2, "heads": 4, "hidden": 128, "ffn": 256, "dropout": 0.1,
                  "pooling": "cls", "attention": attention},
        "train": {"epochs": args.epochs, "batch_size": 16, "lr": 1e-3, "schedule": {"type": "linear", "warmup": 0.05}},
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--join", type=int, default=4)
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--rows", type=int, default=4000)
    parser.add_argument("--task", choices=["first", "same"], default="first")
    args = parser.parse_args()
    import seekforge
    from seekforge.core.hardware import hardware
    from seekforge.core.package import read_manifest
    from seekforge.data import read_source

    print(f"machine: {hardware().summary()}", flush=True)
    found = {}
    with tempfile.TemporaryDirectory() as tmp:
        train, test = Path(tmp) / "train.jsonl", Path(tmp) / "test.jsonl"
        for source, path, rows, seed in (
            ("builtin:reviews", train, args.rows, 0),
            ("builtin:reviews/test", test, 1000, 1),
        ):
            joined(read_source(source), rows, args.join, seed, args.task).to_json(path, orient="records", lines=True)
        lsh = {"type": "lsh", "buckets": 32, "hashes": 2, "chunk": 64}
        for name, attention in (("sdpa", "sdpa"), ("lsh", lsh)):
            result = seekforge.run(recipe(train, test, attention, args), runs_dir=Path(tmp) / "runs")
            found[name] = {"accuracy": result.metrics["accuracy"],
                           "seconds": read_manifest(result.package)["training"]["seconds"]}  # fmt: skip
    print(f"{args.rows} rows of {args.join} reviews ({args.task}), {args.tokens} tokens, {args.epochs} epochs")
    print(f"{'':<6} {'test accuracy':>14} {'train s':>8}")
    for name, row in found.items():
        print(f"{name:<6} {row['accuracy']:>14.4f} {row['seconds']:>8.1f}")
    sdpa, lsh_row = found["sdpa"], found["lsh"]
    print(f"lsh / sdpa: accuracy {lsh_row['accuracy'] / sdpa['accuracy']:.3f}, "
          f"training time {lsh_row['seconds'] / sdpa['seconds']:.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
