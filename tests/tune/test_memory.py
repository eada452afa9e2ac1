from __future__ import annotations

from pathlib import Path

import optuna

from seekforge.recipe import load_recipe
from seekforge.tune._memory import PROCESS_BYTES, plan_workers, trial_bytes
from seekforge.tune._study import Objective, work
from tests.conftest import make_tabular, tabular_recipe


def test_workers_are_capped_to_what_fits() -> None:
    gib = 2**30
    workers, line = plan_workers(4, need=gib, available=3 * gib)
    assert workers == int(3 * gib * 0.8 // (gib + PROCESS_BYTES)) == 1 and "more would not fit" in line
    assert plan_workers(2, need=2**20, available=64 * gib)[0] == 2
    assert plan_workers(3, need=2**20, available=None)[0] == 3


def test_trial_memory_grows_with_the_model_and_the_batch(tmp_path: Path) -> None:
    from seekforge.build import prepare

    make_tabular(200).to_csv(tmp_path / "d.csv", index=False)
    small = load_recipe(tabular_recipe(str(tmp_path / "d.csv")))
    prepared = prepare(small, tmp_path)
    wide = load_recipe(small.trial_base() | {"model": {"type": "mlp", "hidden": [512, 512]}})
    big_batch = load_recipe(small.trial_base() | {"train": {**small.trial_base()["train"], "batch_size": 128}})
    base = trial_bytes(small, prepared)
    assert trial_bytes(wide, prepared) > base + 512 * 512 * 4 * 3  # weights, gradients and Adam's two moments
    assert trial_bytes(big_batch, prepared) > base


def test_a_trial_over_the_memory_budget_fails_with_its_reason_and_the_study_goes_on(tmp_path: Path) -> None:
    make_tabular(200).to_csv(tmp_path / "d.csv", index=False)
    data = tabular_recipe(str(tmp_path / "d.csv"))
    data["tune"] = {"trials": 2, "search_space": {"train.lr": {"suggest": "float", "low": 1e-3, "high": 0.1}}}
    recipe = load_recipe(data)
    study = optuna.create_study(direction="maximize")
    work(study, Objective(recipe, tmp_path, budget=1), trials=2, timeout=None)  # ends: failures count
    assert [t.state.name for t in study.trials] == ["FAIL", "FAIL"]
    assert "more than the 0 MiB each worker may use; not started" in study.trials[0].user_attrs["failed"]
