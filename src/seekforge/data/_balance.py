"""Evening out the classes of a table: random over/under sampling and the SMOTE family (imbalanced-learn),
or inverse-frequency class weights for the training loss."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from seekforge.core.deps import require
from seekforge.core.errors import DataError
from seekforge.data._profile import infer_task, infer_type
from seekforge.data.clean_config import BalanceConfig

#: column types SMOTE can interpolate (numbers) or sample (categories)
_SMOTE_TYPES = ("numeric", "binary", "category")


@dataclass(frozen=True)
class BalanceResult:
    """The balanced table (input rows first, in their order, then any added rows) and what was done."""

    frame: pd.DataFrame
    report: dict[str, Any]


def balance_frame(
    frame: pd.DataFrame,
    label: str,
    config: BalanceConfig,
    *,
    types: dict[str, str] | None = None,
    seed: int = 0,
) -> BalanceResult:
    """Balance the classes of ``label`` in ``frame`` (not modified) as ``config`` says.

    Raises:
        DataError: No such label, a label that is not a class, missing labels, a class too small for SMOTE's
            neighbours, or columns SMOTE cannot interpolate (text, images, dates, missing cells).
    """
    source = frame.attrs.get("source", "data")
    if label not in frame.columns:
        raise DataError(
            f"{source}: the label column '{label}' does not exist",
            hint=f"columns: {', '.join(map(str, frame.columns[:20]))}",
        )
    kinds = {str(c): infer_type(frame[c], (types or {}).get(str(c))) for c in frame.columns}
    y = frame[label]
    missing = int(y.isna().sum())
    if missing:
        raise DataError(
            f"{source}: {missing} rows have no '{label}'",
            hint="drop them first (`seekforge data clean` does)",
        )
    if kinds[label] == "numeric" and infer_task(y, "numeric") == "regression":
        raise DataError(
            f"{source}: '{label}' holds {y.nunique()} distinct numbers, a regression target; only classes can be balanced",
            hint="pass the class column as --label",
        )
    counts = y.value_counts(sort=False)
    counts = counts[counts > 0]  # a categorical label lists categories no row has
    if len(counts) < 2:
        raise DataError(f"{source}: '{label}' has a single class ({counts.index[0]!r}); nothing to balance")
    targets = _targets(counts, config)
    report: dict[str, Any] = {
        "method": config.method,
        "label": label,
        "ratio": config.ratio,
        "rows_in": len(frame),
        "classes_before": _plain(counts),
    }
    if config.method == "class_weights":
        weights = len(y) / (len(counts) * counts)
        report.update(classes_after=_plain(counts), rows_out=len(frame), class_weights=_plain(weights.round(6)))
        return BalanceResult(frame.copy(), report)

    imblearn = require("imblearn", purpose="Balancing classes")
    if config.method in ("random_over", "random_under"):
        sampler_type = (
            imblearn.over_sampling.RandomOverSampler
            if config.method == "random_over"
            else imblearn.under_sampling.RandomUnderSampler
        )
        sampler = sampler_type(sampling_strategy=_by_code(targets, y), random_state=seed)
        positions = np.arange(len(frame)).reshape(-1, 1)
        picked, _ = sampler.fit_resample(positions, _codes(y))
        order = picked.ravel()
        if config.method == "random_under":
            order = np.sort(order)
        out = frame.iloc[order].reset_index(drop=True)
        report["sampler"] = type(sampler).__name__
    else:
        out, report["sampler"] = _smote(frame, label, kinds, targets, config, seed, source)
    out.attrs = dict(frame.attrs)
    after = out[label].value_counts(sort=False)
    report.update(classes_after=_plain(after.reindex(counts.index)), rows_out=len(out))
    report["rows_added"] = max(len(out) - len(frame), 0)
    report["rows_removed"] = max(len(frame) - len(out), 0)
    return BalanceResult(out, report)


def _targets(counts: pd.Series, config: BalanceConfig) -> pd.Series:
    """Rows each class should have: over-sampling lifts the small classes to ``ratio`` × the largest;
    under-sampling cuts the large ones to the smallest ÷ ``ratio``."""
    if config.method == "random_under":
        cap = math.floor(counts.min() / config.ratio)
        return counts.clip(upper=cap)
    floor = math.ceil(counts.max() * config.ratio)
    return counts.clip(lower=floor)


def _codes(y: pd.Series) -> np.ndarray:
    return pd.Categorical(y, categories=pd.unique(y)).codes


def _by_code(targets: pd.Series, y: pd.Series) -> dict[int, int]:
    order = list(pd.unique(y))
    return {order.index(value): int(n) for value, n in targets.items()}


def _smote(
    frame: pd.DataFrame,
    label: str,
    kinds: dict[str, str],
    targets: pd.Series,
    config: BalanceConfig,
    seed: int,
    source: str,
) -> tuple[pd.DataFrame, str]:
    over = require("imblearn.over_sampling", purpose="Balancing classes")
    features = [c for c in frame.columns if c != label]
    unusable = [f"{c} ({kinds[str(c)]})" for c in features if kinds[str(c)] not in _SMOTE_TYPES]
    if unusable:
        raise DataError(
            f"{source}: SMOTE interpolates numbers and samples categories; it cannot make up {', '.join(unusable)}",
            hint="drop those columns first, or use --method random_over or class_weights",
        )
    holes = {str(c): int(n) for c, n in frame[features].isna().sum().items() if n}
    if holes:
        listed = ", ".join(f"{c} ({n} missing)" for c, n in holes.items())
        raise DataError(
            f"{source}: SMOTE needs complete rows, but {listed}",
            hint="impute them first: `seekforge data clean` with clean.missing.strategy median, mode or iterative",
        )
    present = frame[label].value_counts()
    smallest = int(present[present > 0].min())
    if smallest < 2:
        raise DataError(
            f"{source}: a class of '{label}' has a single row; SMOTE needs two rows of a class to interpolate",
            hint="use --method random_over, or add rows of that class",
        )
    k = min(config.k_neighbors, smallest - 1)
    categorical = [c for c in features if kinds[str(c)] != "numeric"]
    strategy = _by_code(targets, frame[label])
    if not categorical:
        sampler = over.SMOTE(sampling_strategy=strategy, k_neighbors=k, random_state=seed)
    elif len(categorical) == len(features):
        sampler = over.SMOTEN(sampling_strategy=strategy, k_neighbors=k, random_state=seed)
    else:
        sampler = over.SMOTENC(categorical_features=categorical, sampling_strategy=strategy, k_neighbors=k,
                               random_state=seed)  # fmt: skip
    x = frame[features].copy()
    for c in categorical:
        x[c] = x[c].astype(str)  # compared as strings; each string maps back to the value it came from
    new_x, new_y = sampler.fit_resample(x if categorical else x.to_numpy(dtype=np.float64), _codes(frame[label]))
    added = pd.DataFrame(np.asarray(new_x, dtype=object)[len(frame) :], columns=features)
    classes = list(pd.unique(frame[label]))
    added[label] = [classes[i] for i in np.asarray(new_y)[len(frame) :]]
    for c in features:
        column = frame[c]
        if c in categorical:
            back = dict(zip(column.astype(str), column, strict=True))
            added[c] = added[c].map(back)
        elif pd.api.types.is_integer_dtype(column):
            added[c] = pd.to_numeric(added[c]).round()
        added[c] = added[c].astype(column.dtype)
    added[label] = added[label].astype(frame[label].dtype)
    out = pd.concat([frame, added[list(frame.columns)]], ignore_index=True)
    return out, type(sampler).__name__


def _plain(series: pd.Series) -> dict[str, Any]:
    return {str(k): (v.item() if hasattr(v, "item") else v) for k, v in series.items()}
