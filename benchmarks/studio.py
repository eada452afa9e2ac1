"""Claim: the studio's first pages stay under 1 s at scale: a folder of 1,000 runs (each with 30 epochs of
metrics and of weight histograms for 12 layers) and a study of 5,000 trials over two parameters, first page cold (a new studio: nothing read yet) and warm (asked again:
a run's summary is kept until its files change; a study's journal is read on from where it stopped). The
pages are served in-process (Starlette's test client), as a browser asks for them.

    python benchmarks/studio.py [--runs 1000] [--trials 5000] [--epochs 30]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

import yaml

from seekforge.core.hardware import hardware


def make_runs(root: Path, runs: int, epochs: int) -> None:
    for r in range(runs):
        folder = root / f"run{r % 50:02d}" / f"20260101-{r:06d}"
        folder.mkdir(parents=True)
        (folder / "recipe.yaml").write_text(yaml.safe_dump({"name": folder.parent.name, "model": {"type": "mlp"}}))
        lines = [json.dumps({"epoch": e, "train_loss": 1 / e, "lr": 0.01, "val_loss": 1.1 / e, "val_accuracy": 0.5 + e / 100})
                 for e in range(1, epochs + 1)]  # fmt: skip
        (folder / "metrics.jsonl").write_text("\n".join(lines) + "\n")
        (folder / "weights.jsonl").write_text("".join(weights_line(e) for e in range(1, epochs + 1)))
        if r % 2 == 0:
            (folder / "package").mkdir()
            (folder / "package" / "package.json").write_text(
                json.dumps({"task": "classification", "metrics": {"test": {"accuracy": 0.9}}})
            )


def weights_line(epoch: int, layers: int = 12, bins: int = 32) -> str:
    """An epoch's histograms as the trainer writes them (a bell of counts between -1 and 1 per layer)."""
    counts = [int(1000 * math.exp(-(((b - bins / 2) / (bins / 6)) ** 2))) for b in range(bins)]
    entry = {"shape": [64, 64], "min": -1.0 / epoch, "max": 1.0 / epoch, "counts": counts, "mean": 0.0, "std": 0.3,
             "norm": 20.0, "grad_norm": 0.5 / epoch}  # fmt: skip
    return (
        json.dumps({"epoch": epoch, "bins": bins, "layers": {f"layer{k}.weight": entry for k in range(layers)}}) + "\n"
    )


def make_study(root: Path, trials: int) -> str:
    import optuna

    folder = root / "big" / "tune-20260101-000000"
    folder.mkdir(parents=True)
    (folder / "recipe.yaml").write_text(yaml.safe_dump({"name": "big", "tune": {"metric": "val_accuracy"}}))
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(folder / "study.journal")))
    study = optuna.create_study(storage=storage, study_name="big-0", direction="maximize",
                                sampler=optuna.samplers.RandomSampler(seed=0))  # fmt: skip
    study.optimize(lambda t: t.suggest_float("lr", 1e-4, 0.1, log=True) * 5 + 0.01 * t.suggest_int("layers", 1, 4),
                   n_trials=trials)  # fmt: skip
    return "big/tune-20260101-000000"


def timed(client: object, url: str, repeats: int = 3) -> float:
    best = []
    for _ in range(repeats):
        started = time.perf_counter()
        answer = client.get(url)  # type: ignore[attr-defined]
        best.append(time.perf_counter() - started)
        assert answer.status_code == 200, (url, answer.status_code)
    return min(best)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=30)
    args = parser.parse_args()
    from fastapi.testclient import TestClient

    from seekforge.studio import create_app

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "runs"
        made = time.perf_counter()
        make_runs(root, args.runs, args.epochs)
        study = make_study(root, args.trials)
        print(f"made {args.runs} runs and a {args.trials}-trial study in {time.perf_counter() - made:.1f} s")
        rows = []
        for name, url in (("runs, first page", "/"), ("runs API, sorted by test metric", "/api/runs?sort=test"),
                          ("a run's page", "/runs/run00/20260101-000000"),
                          ("a run's curves", "/api/runs/run00/20260101-000000/curves"),
                          ("a run's weights", "/api/runs/run00/20260101-000000/weights"),
                          ("study, first page of trials", f"/studies/{study}"),
                          ("study, sorted by value", f"/api/studies/{study}?sort=value"),
                          ("study history", f"/api/studies/{study}/history"),
                          ("study parallel coordinates", f"/api/studies/{study}/parameters"),
                          ("study parameter importance", f"/api/studies/{study}/importance"),
                          ("studies", "/studies")):  # fmt: skip
            cold_client = TestClient(create_app(root), base_url="http://127.0.0.1")
            started = time.perf_counter()
            assert cold_client.get(url).status_code == 200
            cold = time.perf_counter() - started
            warm = timed(cold_client, url)
            rows.append((name, cold, warm))
        facts = hardware()
        print(f"\n{facts.cpu}, {facts.isa}, {facts.cores} cores")
        print(f"{'page':36} {'cold s':>8} {'warm s':>8} {'warm / 1 s target':>18}")
        for name, cold, warm in rows:
            print(f"{name:36} {cold:8.3f} {warm:8.3f} {warm:18.3f}")
        print(f"slowest warm page: {max(w for _, _, w in rows):.3f} s; slowest cold: {max(c for _, c, _ in rows):.3f} s;"
              f" median warm {statistics.median(w for _, _, w in rows):.3f} s")  # fmt: skip


if __name__ == "__main__":
    main()
