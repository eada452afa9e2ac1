"""Per-group metrics through fairlearn's ``MetricFrame``: each group's value with a bootstrap interval,
and between groups the largest difference and the smallest ratio (with an interval for the difference)."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from seekforge.core.deps import require
from seekforge.fairness.config import GROUP_METRICS, metric_kind

#: Rows a group needs for its interval to mean something; smaller groups are listed, with a note.
MIN_GROUP_ROWS = 30
MISSING = "(missing)"


@dataclass(frozen=True)
class GroupMetrics:
    """Metrics by group.

    Attributes:
        by: The sensitive columns.
        metrics: The metric names, in order.
        overall: Each metric over all rows.
        groups: One entry per group: ``group`` (column -> value), ``rows``, ``values`` (metric -> value),
            ``interval`` (metric -> [low, high], or None without bootstrap) and ``note`` (why a group has no
            interval).
        difference, ratio: Between groups with enough rows: largest minus smallest, smallest over largest.
        difference_interval: The difference's bootstrap interval per metric (None without bootstrap).
        n_boot, confidence, seed: The bootstrap's resamples, interval level and seed.
    """

    by: list[str]
    metrics: list[str]
    overall: dict[str, float]
    groups: list[dict[str, Any]]
    difference: dict[str, float]
    ratio: dict[str, float]
    difference_interval: dict[str, list[float]] | None
    n_boot: int
    confidence: float
    seed: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _metrics(task: str, classes: list[Any] | None) -> dict[str, Any]:
    from fairlearn.metrics import false_positive_rate, selection_rate, true_positive_rate
    from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, r2_score, root_mean_squared_error

    every: dict[str, Any] = {
        "mae": mean_absolute_error,
        "rmse": root_mean_squared_error,
        "r2": r2_score,
        "accuracy": accuracy_score,
        # the second class is the positive one, as in proba_<class>
        "selection_rate": lambda t, p: selection_rate(t, p, pos_label=1),
        "tpr": lambda t, p: true_positive_rate(t, p, pos_label=1),
        "fpr": lambda t, p: false_positive_rate(t, p, pos_label=1),
        "f1_macro": lambda t, p: f1_score(t, p, average="macro", labels=np.unique(t), zero_division=0),
    }
    kind = metric_kind(task, len(classes) if classes is not None else None)
    return {name: every[name] for name in GROUP_METRICS[kind]}


def group_metrics(
    sensitive: pd.DataFrame,
    truth: np.ndarray,
    predicted: np.ndarray,
    *,
    task: str,
    classes: list[Any] | None = None,
    n_boot: int = 200,
    confidence: float = 0.95,
    seed: int = 0,
) -> GroupMetrics:
    """Metrics within each group of the ``sensitive`` columns' values (missing values are a group of their
    own). ``truth`` and ``predicted`` are class indices into ``classes`` for a classifier (with two classes,
    index 1 is the positive class: selection rate, TPR and FPR), values for a regressor.

    Args:
        n_boot: Bootstrap resamples for the intervals (0: none). Groups with fewer than ``MIN_GROUP_ROWS``
            rows get no interval and a note saying so, and are left out of the difference and ratio.
    """
    require("fairlearn", purpose="Per-group metrics")
    from fairlearn.metrics import MetricFrame

    by = [str(c) for c in sensitive.columns]
    groups = sensitive.astype(object).where(sensitive.notna(), MISSING).astype(str).reset_index(drop=True)
    groups.columns = by
    functions = _metrics(task, classes)
    tail = (1 - confidence) / 2
    boot = {"n_boot": n_boot, "ci_quantiles": [tail, 1 - tail], "random_state": seed} if n_boot else {}
    truth, predicted = np.asarray(truth), np.asarray(predicted)

    def measure(rows: np.ndarray) -> Any:
        with warnings.catch_warnings():  # a small group's resample may hold one class only
            warnings.simplefilter("ignore")
            return MetricFrame(
                metrics=functions,
                y_true=truth[rows],
                y_pred=predicted[rows],
                sensitive_features=groups[rows].reset_index(drop=True),
                **boot,
            )

    frame = measure(np.ones(len(groups), dtype=bool))
    size = groups.groupby(by, sort=False)[by[0]].transform("size").to_numpy()
    compared = size >= MIN_GROUP_ROWS  # small groups stay out of the difference and ratio
    between = frame if compared.all() else (measure(compared) if compared.any() else None)
    by_group = frame.by_group
    lows, highs = frame.by_group_ci if n_boot else (None, None)
    entries = []
    for key in by_group.index:
        values = key if isinstance(key, tuple) else (key,)
        inside = np.logical_and.reduce([groups[c].to_numpy() == v for c, v in zip(by, values, strict=True)])
        rows = int(inside.sum())
        entry: dict[str, Any] = {
            "group": dict(zip(by, values, strict=True)),
            "rows": rows,
            "values": {m: _number(by_group.loc[key, m]) for m in functions},
            "interval": None,
            "note": "",
        }
        if rows < MIN_GROUP_ROWS:
            entry["note"] = f"{rows} rows: too few for an interval, and left out of the difference and ratio"
        elif lows is not None:
            entry["interval"] = {m: [_number(lows.loc[key, m]), _number(highs.loc[key, m])] for m in functions}
        entries.append(entry)
    difference = dict.fromkeys(functions, 0.0)
    ratio = dict.fromkeys(functions, 1.0)
    interval = None
    if between is not None and len(between.by_group) > 1:
        difference = {m: _number(v) for m, v in between.difference(method="between_groups").items()}
        ratio = {m: _number(v) for m, v in between.ratio(method="between_groups").items()}
        if n_boot:
            low, high = between.difference_ci(method="between_groups")
            interval = {m: [_number(low[m]), _number(high[m])] for m in functions}
    overall = {m: _number(v) for m, v in frame.overall.items()}
    return GroupMetrics(by, list(functions), overall, entries, difference, ratio, interval, n_boot, confidence, seed)


def _number(value: Any) -> float:
    value = float(value)
    return value if np.isfinite(value) else float("nan")
