"""The study's own progress line, printed after each trial whatever the terminal: plain, so logs keep it."""

from __future__ import annotations

import time
from typing import Any

from rich.markup import escape

from seekforge.core.deps import require
from seekforge.core.progress import console


def report_trial(study: Any, number: int, outcome: str, trials: int, started: float) -> None:
    """One line on the study after each trial: how far it is (over every worker), the best so far, and
    when it should end at the pace of the trials finished (by any worker) since this worker started."""
    optuna = require("optuna", purpose="Hyperparameter search")
    state = optuna.trial.TrialState
    finished = study.get_trials(deepcopy=False, states=(state.COMPLETE, state.PRUNED, state.FAIL))
    retried = {t.user_attrs["retry_of"] for t in finished if "retry_of" in t.user_attrs}
    count = sum(t.number not in retried for t in finished)
    if any(t.state == state.COMPLETE for t in finished):
        if len(study.directions) == 1:
            best = f"best {study.best_value:.4g} (trial {study.best_trial.number})"
        else:
            best = f"Pareto front of {len(study.best_trials)}"
    else:
        best = "no complete trial yet"
    elapsed = time.monotonic() - started
    since = time.time() - elapsed
    recent = max(1, sum(t.datetime_complete is not None and t.datetime_complete.timestamp() >= since for t in finished))
    left = max(0, trials - count)
    eta = f", eta {duration(elapsed / recent * left)}" if left else ""
    console.print(f"study {min(count, trials)}/{trials} trials: trial {number} {escape(outcome)}; {best}{eta}",
                  highlight=False)  # fmt: skip


def duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{secs:02d}" if minutes >= 60 else f"{minutes}:{secs:02d}"
