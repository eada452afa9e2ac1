"""The search problem both search benchmarks share: an MLP on scikit-learn's digits (64 pixel columns,
1,797 rows; seekforge's split 70/15/15), trained by seekforge, with learning rate, weight decay, batch
size, width/depth and dropout searched. Trials run through seekforge's own trial code and samplers (the
Objective and sampler settings of `seekforge tune`) in an in-memory Optuna study, so nothing but the
sampler and pruner differ."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from seekforge.recipe import Recipe, load_recipe
from seekforge.tune._study import Objective, _pruner, _sampler

EPOCHS = 10


def digits_recipe(folder: Path, epochs: int = EPOCHS, checks: int = 1) -> Recipe:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    frame = pd.DataFrame(bunch.data, columns=[f"p{i}" for i in range(64)])
    frame["digit"] = bunch.target.astype(str)
    frame.to_csv(folder / "digits.csv", index=False)
    return load_recipe(
        {
            "name": "digits-mlp",
            "seed": 0,
            "data": {"source": str(folder / "digits.csv"), "split": {"train": 0.7, "validation": 0.15, "test": 0.15}},
            "features": {
                "inputs": [{"name": f"p{i}", "type": "numeric"} for i in range(64)],
                "output": {"name": "digit", "type": "category"},
            },
            "model": {"type": "mlp", "hidden": [64]},
            "train": {"epochs": epochs, "batch_size": 64, "lr": 1e-3, "threads": 1},
            "tune": {
                "metric": "val_accuracy",
                "checks_per_epoch": checks,
                "search_space": {
                    "train.lr": {"suggest": "float", "low": 1e-5, "high": 1.0, "log": True},
                    "train.optimizer.weight_decay": {"suggest": "float", "low": 1e-6, "high": 0.3, "log": True},
                    "train.batch_size": {"suggest": "categorical", "choices": [16, 32, 64, 128, 256]},
                },
                "models": [
                    {"type": "mlp", "hidden": {"suggest": "categorical", "choices": [[8], [32], [128], [64, 64], [256, 128]]},
                     "dropout": {"suggest": "float", "low": 0.0, "high": 0.7}},
                ],
            },
        }
    )  # fmt: skip


class Problem:
    """A prepared study folder and the trial objective, made once and shared by every run."""

    def __init__(self, epochs: int = EPOCHS, checks: int = 1) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="seekforge-search-"))
        self.epochs, self.checks = epochs, checks
        self.recipe = digits_recipe(self.folder, epochs, checks)
        self.objective = Objective(self.recipe, self.folder)

    def study(self, sampler: str, pruner: str, seed: int) -> Any:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.ERROR)
        samplers = {  # as `seekforge tune` makes them (TPE: multivariate, conditional parameters grouped)
            "tpe": lambda: _sampler(optuna, "tpe", seed, multi=False),
            "random": lambda: _sampler(optuna, "random", seed, multi=False),
        }
        # a fixed name: Hyperband assigns trials to brackets by a hash of the study's name
        return optuna.create_study(
            study_name=f"digits-{sampler}-{pruner}-{seed}",
            direction="maximize",
            sampler=samplers[sampler](),
            pruner=_pruner(optuna, pruner, self.epochs * self.checks),
        )
