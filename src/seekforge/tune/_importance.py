"""Which parameters mattered to a study's (first) objective: Optuna's fANOVA (a seeded random forest,
variance by parameter) up to ``FANOVA_TRIALS`` complete trials, its PED-ANOVA past them (fANOVA's forest
takes 20 s at 5,000 trials on 2 cores, PED-ANOVA half a second). The study's report and the studio both
weigh parameters here, so they show the same numbers."""

from __future__ import annotations

import threading
import warnings
from typing import Any

from seekforge.core.deps import require

#: parameter importance by fANOVA up to this many complete trials, by PED-ANOVA past them
FANOVA_TRIALS = 1000
_LOCK = threading.Lock()  # warnings' filters are process-wide: one computation at a time


def param_importance(study: Any) -> tuple[str, dict[str, float]]:
    """The method used and each parameter's importance (summing to 1) over ``study``'s complete trials;
    none for fewer than 3 trials or when no parameter varied."""
    optuna = require("optuna", purpose="Parameter importance")
    done = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
    method = "fANOVA" if len(done) <= FANOVA_TRIALS else "PED-ANOVA"
    if len(done) < 3:
        return method, {}
    directions = study.directions
    target = None
    if len(directions) > 1:  # the first objective; PED-ANOVA with a target takes lower as better
        maximize = directions[0] == optuna.study.StudyDirection.MAXIMIZE
        target = (lambda t: -t.values[0]) if maximize and method == "PED-ANOVA" else (lambda t: t.values[0])
    with _LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # few trials; PED-ANOVA is marked experimental
        evaluator: Any = (optuna.importance.FanovaImportanceEvaluator(seed=0) if method == "fANOVA"
                          else optuna.importance.PedAnovaImportanceEvaluator())  # fmt: skip
        try:
            found = optuna.importance.get_param_importances(study, evaluator=evaluator, target=target)
        except (RuntimeError, ValueError):  # too few distinct values to attribute anything
            return method, {}
    return method, {k: float(v) for k, v in found.items()}
