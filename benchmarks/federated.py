"""Claim: federated training on Flower's simulation runtime reaches central training's test accuracy
within 1 point with IID sites, and reports it under label skew (Dirichlet 0.5), FedAvg and FedProx side by
side; and what a round costs (wall time per round, peak memory per client process) with 5 and 20
simulated clients on this machine.

Each data set's recipe is trained centrally (`seekforge run`: `epochs` passes over the training split) and
federated over 5 sites (`seekforge federate`: `epochs` rounds of one local epoch, each site training on all
its rows), on the same seeded split; the test split is the same rows for every variant.

    python benchmarks/federated.py [--datasets breast_cancer,digits] [--epochs 20] [--cost-rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

import seekforge
from seekforge.core.hardware import hardware
from seekforge.federate import federate
from seekforge.recipe import Recipe

RECIPES: dict[str, dict[str, Any]] = {
    "breast_cancer": {
        "name": "breast-cancer", "seed": 0,
        "data": {"source": "builtin:breast_cancer", "split": {"train": 0.7, "validation": 0.1, "test": 0.2}},
        "features": {"inputs": "*", "output": {"name": "diagnosis", "type": "category"}},
        "model": {"type": "mlp", "hidden": [64, 32]},
        "train": {"batch_size": 32, "lr": 0.003},
    },
    "digits": {
        "name": "digits", "seed": 0,
        "data": {"source": "builtin:digits", "split": {"train": 0.7, "validation": 0.1, "test": 0.2}},
        "features": {"inputs": [{"name": "image", "type": "image"}], "output": {"name": "label", "type": "category"}},
        "model": {"type": "cnn", "channels": [32, 64], "dropout": 0.2},
        "train": {"batch_size": 64, "lr": 0.003},
    },
}  # fmt: skip


def recipe(name: str, epochs: int, federated: dict[str, Any] | None = None) -> Recipe:
    spec = json.loads(json.dumps(RECIPES[name]))
    if spec["features"]["inputs"] == "*":
        from seekforge.datasets import load_builtin

        columns = [c for c in load_builtin(spec["data"]["source"]).columns if c != spec["features"]["output"]["name"]]
        spec["features"]["inputs"] = [{"name": c, "type": "numeric"} for c in columns]
    spec["train"]["epochs"] = epochs
    if federated is not None:
        spec["federated"] = {"rounds": epochs, "local_epochs": 1, "validation": 0.0, **federated}
    return Recipe.model_validate(spec)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="breast_cancer,digits")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--cost-rounds", type=int, default=3)
    args = parser.parse_args()
    facts = hardware()
    print(f"{facts.cpu}, {facts.isa}, {facts.cores} cores; torch {torch.__version__}")
    variants = {
        "IID, FedAvg": {"sites": {"iid": 5}},
        "IID, FedProx (mu 0.01)": {"sites": {"iid": 5}, "strategy": {"type": "fedprox", "mu": 0.01}},
        "Dirichlet 0.5, FedAvg": {"sites": {"dirichlet": {"clients": 5, "alpha": 0.5}}},
        "Dirichlet 0.5, FedProx (mu 0.01)": {"sites": {"dirichlet": {"clients": 5, "alpha": 0.5}},
                                             "strategy": {"type": "fedprox", "mu": 0.01}},
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp)
        for name in args.datasets.split(","):
            central = seekforge.run(recipe(name, args.epochs), runs_dir=runs / "central").metrics["accuracy"]
            print(f"\n{name}: central training, {args.epochs} epochs: test accuracy {central:.4f}")
            print(f"{'federated (5 sites, ' + str(args.epochs) + ' rounds)':36} {'accuracy':>8} {'vs central':>10}")
            for label, federated in variants.items():
                built = federate(recipe(name, args.epochs, federated), runs_dir=runs / label.replace(" ", "_"))
                accuracy = built.metrics["accuracy"]
                print(f"{label:36} {accuracy:8.4f} {100 * (accuracy - central):+9.2f} pt")
        name = args.datasets.split(",")[-1]
        print(f"\ncost per round ({name}, IID sites, {args.cost_rounds} rounds, {facts.cores} cores)")
        print(f"{'clients':>7} {'s / round':>10} {'peak MB / client process':>25}")
        for clients in (5, 20):
            start = time.perf_counter()
            built = federate(
                recipe(name, args.cost_rounds, {"sites": {"iid": clients}}), runs_dir=runs / f"cost{clients}"
            )
            wall = time.perf_counter() - start
            rounds = [json.loads(x) for x in (built.run_dir / "federated" / "rounds.jsonl").read_text().splitlines()]
            seconds = statistics.median(r["seconds"] for r in rounds[1:] or rounds)
            peak = max(s["peak_rss_mb"] for r in rounds for s in r["train"].values())
            print(f"{clients:7d} {seconds:10.2f} {peak:25.0f}   (whole run {wall:.1f} s)")


if __name__ == "__main__":
    main()
