"""What a study found: every trial, the best one, the Pareto front, and which parameters mattered."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from seekforge.core import report as html
from seekforge.core.deps import require
from seekforge.core.io import write_text_atomic
from seekforge.recipe import Recipe
from seekforge.tune._importance import param_importance
from seekforge.tune.config import metric_of


def summarize(study: Any, recipe: Recipe) -> dict[str, Any]:
    """JSON-ready: the study's settings, each trial, the best, the Pareto front and parameter importance."""
    require("optuna", purpose="Hyperparameter search")
    tune = recipe.tune
    assert tune is not None
    metric, direction = metric_of(recipe)
    names = [metric, *tune.objectives]
    trials = [_trial(t, names) for t in study.get_trials(deepcopy=False)]
    # a trial failed by another worker (its own stopped) has its reason on the retry that replaced it
    reasons = {
        t["user_attrs"]["retry_of"]: t["user_attrs"]["retry_reason"]
        for t in trials
        if "retry_reason" in t["user_attrs"]
    }
    for t in trials:
        if t["number"] in reasons:
            t["user_attrs"].setdefault("failed", reasons[t["number"]])
    complete = [t for t in trials if t["state"] == "COMPLETE"]
    sign = -1.0 if direction == "maximize" else 1.0
    # equal metrics (a saturated one) go to the lower validation loss, then the earlier trial
    best = min(complete, key=lambda t: (sign * t["values"][metric], t["user_attrs"].get("val_loss", math.inf),
                                        t["number"])) if complete else None  # fmt: skip
    if best is not None:
        tied = [t for t in complete if t["values"][metric] == best["values"][metric]]
        losses = "val_loss" in best["user_attrs"]
        rule = "the lowest val_loss won" if losses else "the earliest won (no val_loss to compare)"
        best["tie_break"] = f"{len(tied)} trials tied on {metric}: {rule}" if len(tied) > 1 else None
    pareto = []
    if tune.objectives and complete:
        pareto = sorted(t.number for t in study.best_trials)
    weighed_by, importance = param_importance(study)
    epochs = round(sum(float(t["user_attrs"].get("epochs", 0)) for t in trials), 3)  # pruned within an epoch: fractions
    return {
        "metric": metric,
        "direction": direction,
        "objectives": names,
        "sampler": tune.sampler,
        "pruner": tune.pruner,
        "checks_per_epoch": tune.checks_per_epoch,
        "counts": {
            state: sum(t["state"] == state for t in trials) for state in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")
        },
        "epochs_trained": epochs,
        "best": best,
        "pareto": pareto,
        "importance": importance,
        "importance_method": weighed_by,
        "trials": trials,
    }


def _trial(trial: Any, names: list[str]) -> dict[str, Any]:
    values = dict(zip(names, trial.values, strict=False)) if trial.values else {}
    return {
        "number": trial.number,
        "state": trial.state.name,
        "values": values,
        "params": trial.params,
        "intermediate": {int(k): v for k, v in trial.intermediate_values.items()},
        "user_attrs": dict(trial.user_attrs),
        "seconds": trial.duration.total_seconds() if trial.duration else None,
    }


#: trial states and the colour of their lines in the intermediate-values chart
STATE_COLORS = {"COMPLETE": "#1f77b4", "PRUNED": "#d62728", "FAIL": "#999999"}


def _intermediate_chart(summary: dict[str, Any]) -> str:
    """Every trial's reported values by check (an epoch, or a fraction of one), pruned trials in red: how
    early the pruner stopped the losers."""
    per_epoch = max(1, int(summary.get("checks_per_epoch", 1)))
    series, colors = {}, {}
    for t in summary["trials"]:
        if t["intermediate"] and t["state"] in STATE_COLORS:
            points = sorted((int(step), value) for step, value in t["intermediate"].items())  # JSON: str keys
            name = f"trial {t['number']}"
            series[name] = ([step / per_epoch for step, _ in points], [value for _, value in points])
            colors[name] = STATE_COLORS[t["state"]]
    if not series:
        return ""
    shown = {state for t in summary["trials"] if t["intermediate"] for state in [t["state"]]}
    legend = [(state.lower(), color) for state, color in STATE_COLORS.items() if state in shown]
    return html.curves(series, title=f"{summary['metric']} at each check", x_label="epoch", colors=colors,
                       legend=legend, markers=True)  # fmt: skip


def write_report(summary: dict[str, Any], path: Path) -> None:
    metric = summary["metric"]
    sign = 1.0 if summary["direction"] == "maximize" else -1.0
    done = [t for t in summary["trials"] if t["state"] == "COMPLETE"]
    points = [(t["number"], t["values"][metric]) for t in done]
    best_so_far, running = [], -math.inf
    for number, value in points:
        running = max(running, sign * value)
        best_so_far.append((number, sign * running))
    sections = []
    best = summary["best"]
    sections.append(("Best trial", html.table(
        [["trial", best["number"]], *[[k, v] for k, v in best["values"].items()], *[[k, v] for k, v in best["params"].items()],
         *[[f"test {k}", v] for k, v in best.get("test", {}).items() if not isinstance(v, list | dict)],
         *([["chosen", best["tie_break"]]] if best.get("tie_break") else [])],
    )))  # fmt: skip
    if points:
        chart = html.line_chart(
            {metric: [v for _, v in points], "best so far": [v for _, v in best_so_far]},
            title=f"{metric} of each complete trial, in order",
            x_label="complete trial",
        )
        sections.append(("Optimisation history", chart))
    learning = _intermediate_chart(summary)
    if learning:
        sections.append(("Intermediate values (what the pruner saw)", learning))
    if len(done) >= 2 and done[0]["params"]:
        names = [name for name in done[0]["params"] if all(name in t["params"] for t in done)]
        axes = [(name, [t["params"][name] for t in done]) for name in names]
        axes.append((metric, [t["values"][metric] for t in done]))
        chart = html.parallel_coordinates(axes, [t["values"][metric] for t in done], title="parameters of each "
                                          "complete trial, and its metric", better="higher" if sign > 0 else "lower")  # fmt: skip
        sections.append(("Parallel coordinates", chart))
    if summary["importance"]:
        rows = sorted(summary["importance"].items(), key=lambda kv: -kv[1])
        method = summary.get("importance_method", "fANOVA")
        sections.append((f"Parameter importance ({method})", html.table(rows, ["parameter", "importance"])))
    if summary["pareto"]:
        objectives = summary["objectives"]
        front = [t for t in done if t["number"] in summary["pareto"]]
        rows = [[t["number"], *[t["values"].get(o) for o in objectives]] for t in front]
        sections.append(("Pareto front", html.table(rows, ["trial", *objectives])))
    rows = [[t["number"], t["state"], *[t["values"].get(o, "") for o in summary["objectives"]], t["user_attrs"].get("epochs", ""),
             "; ".join(f"{k}={v}" for k, v in t["params"].items()), t["user_attrs"].get("failed", t["user_attrs"].get("pruned", ""))]
            for t in summary["trials"]]  # fmt: skip
    sections.append(
        ("Trials", html.table(rows, ["trial", "state", *summary["objectives"], "epochs", "parameters", "note"]))
    )
    counts = summary["counts"]
    subtitle = (f"{len(summary['trials'])} trials ({counts['COMPLETE']} complete, {counts['PRUNED']} pruned, "
                f"{counts['FAIL']} failed); {summary['epochs_trained']:g} epochs trained; sampler {summary['sampler']}, "
                f"pruner {summary['pruner']}")  # fmt: skip
    write_text_atomic(path, html.page("seekforge study", subtitle, sections))
