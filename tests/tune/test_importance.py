"""Parameter importance as the study's report and the studio weigh it: seeded fANOVA up to FANOVA_TRIALS
complete trials, PED-ANOVA past them; both find the parameter the objective follows."""

from __future__ import annotations

import pytest

optuna = pytest.importorskip("optuna")
from seekforge.tune import _importance, param_importance  # noqa: E402


def _study(trials: int) -> object:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    study.optimize(lambda t: -((t.suggest_float("lr", 0, 1) - 0.3) ** 2) + 0 * t.suggest_int("noise", 0, 9),
                   n_trials=trials)  # fmt: skip
    return study


def test_the_parameter_that_matters_comes_first_by_either_method(monkeypatch: pytest.MonkeyPatch) -> None:
    study = _study(60)
    method, found = param_importance(study)
    assert method == "fANOVA" and found["lr"] > 0.9 and sum(found.values()) == pytest.approx(1.0)
    assert param_importance(study) == (method, found)  # seeded: the same answer twice
    monkeypatch.setattr(_importance, "FANOVA_TRIALS", 50)
    method, found = param_importance(study)
    assert method == "PED-ANOVA" and found["lr"] > found["noise"]
    assert param_importance(_study(2)) == ("fANOVA", {})  # too few trials to weigh anything
