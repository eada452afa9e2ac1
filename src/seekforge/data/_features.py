"""Derived columns: bins of a number (quantile, k-means or a supervised tree; scikit-learn) and the
seasonal-trend decomposition of a time series (statsmodels' STL)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from seekforge.core.deps import require
from seekforge.core.errors import DataError
from seekforge.core.progress import progress_task
from seekforge.data._profile import infer_task, infer_type
from seekforge.data._values import numbers
from seekforge.data.clean_config import BinConfig, FeatureEngineeringConfig, StlConfig

#: rows the binning methods learn their edges from, at most (a seeded sample beyond that)
FIT_ROWS = 200_000
#: format of ``features.json``
FEATURES_VERSION = 1


@dataclass(frozen=True)
class FeaturesResult:
    """The table with its new columns, and ``fitted``: the bin edges learned (reusable on new data) and
    what each step made (bin counts; trend and seasonal strength)."""

    frame: pd.DataFrame
    fitted: dict[str, Any]


def engineer_frame(
    frame: pd.DataFrame,
    config: FeatureEngineeringConfig,
    *,
    label: str | None = None,
    task: str = "auto",
    seed: int = 0,
    fitted: dict[str, Any] | None = None,
) -> FeaturesResult:
    """Add the columns ``config`` declares to ``frame`` (not modified).

    With ``fitted`` (a ``features.json`` written before), bins reuse its edges instead of learning new
    ones, so new data is binned exactly as the data the edges came from.

    Raises:
        DataError: A column that does not exist or holds no numbers, a new column's name already taken, a
            supervised binning without a label, or a series STL cannot decompose.
    """
    source = frame.attrs.get("source", "data")
    out = frame.copy(deep=False)
    learned = {entry["new_column"]: entry for entry in (fitted or {}).get("bins", [])}
    bins = []
    for spec in config.bins:
        _need(frame, spec.column, source, "features.bins")
        name = _free_name(out, spec.name or f"{spec.column}_bin", source)
        if fitted is not None:
            if name not in learned or learned[name]["column"] != spec.column:
                raise DataError(
                    f"the fitted features hold no bins of '{spec.column}' called '{name}'",
                    hint="fit them again without --apply, or drop that entry from features.bins",
                )
            entry = {k: v for k, v in learned[name].items() if k not in ("new_column", "rows_per_bin")}
        else:
            entry = _fit_bins(frame, spec, label=label, task=task, seed=seed, source=source)
        codes = _apply_bins(numbers(frame[spec.column]), entry).set_axis(frame.index)
        out[name] = codes
        counts = codes.value_counts(sort=False).reindex(range(len(entry["edges"]) + 1), fill_value=0)
        bins.append({**entry, "new_column": name, "rows_per_bin": [int(n) for n in counts]})
    stl = []
    for spec in config.stl:
        for column in (spec.column, spec.time, spec.group):
            if column is not None:
                _need(frame, column, source, "features.stl")
        names = [_free_name(out, f"{spec.column}_{part}", source) for part in ("trend", "seasonal", "residual")]
        parts, summary = _decompose(frame, spec, source)
        for name, values in zip(names, parts, strict=True):
            out[name] = values
        stl.append({**spec.model_dump(), "new_columns": names, **summary})
    out.attrs = dict(frame.attrs)
    return FeaturesResult(out, {"format_version": FEATURES_VERSION, "bins": bins, "stl": stl})


def _need(frame: pd.DataFrame, column: str, source: str, where: str) -> None:
    if column not in frame.columns:
        raise DataError(
            f"{source}: {where} names the column '{column}', which does not exist",
            hint=f"columns: {', '.join(map(str, frame.columns[:20]))}",
        )


def _free_name(frame: pd.DataFrame, name: str, source: str) -> str:
    if name in frame.columns:
        raise DataError(f"{source} already has a column '{name}'", hint="rename or drop it, then derive it again")
    return name


def _fit_bins(
    frame: pd.DataFrame, spec: BinConfig, *, label: str | None, task: str, seed: int, source: str
) -> dict[str, Any]:
    """The inner edges of ``spec.column``'s bins; a value goes to the bin of the edges around it."""
    values = numbers(frame[spec.column])
    present = ~np.isnan(values)
    if present.sum() < spec.bins:
        raise DataError(
            f"{source}: '{spec.column}' holds {int(present.sum())} numbers, too few for {spec.bins} bins",
            hint="bin a numeric column, or ask for fewer bins",
        )
    rows = np.flatnonzero(present)
    if len(rows) > FIT_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(rows, FIT_ROWS, replace=False))
    x = values[rows].reshape(-1, 1)
    if spec.method == "tree":
        edges = _tree_edges(frame, spec, x, rows, label=label, task=task, seed=seed, source=source)
        side = "left"  # a tree sends x <= threshold left
    else:
        from sklearn.preprocessing import KBinsDiscretizer

        binner = KBinsDiscretizer(
            n_bins=spec.bins, encode="ordinal", strategy=spec.method, subsample=None, random_state=seed
        )
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # bins too narrow to hold anything are merged; the count says so
            binner.fit(x)
        edges = [float(e) for e in binner.bin_edges_[0][1:-1]]
        side = "right"  # as KBinsDiscretizer assigns them
    return {"column": spec.column, "method": spec.method, "bins": len(edges) + 1, "edges": edges, "side": side}


def _tree_edges(
    frame: pd.DataFrame,
    spec: BinConfig,
    x: np.ndarray,
    rows: np.ndarray,
    *,
    label: str | None,
    task: str,
    seed: int,
    source: str,
) -> list[float]:
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    if label is None:
        raise DataError(
            f"tree binning of '{spec.column}' learns from the label, and none is given",
            hint="pass --label, or set label: in the configuration",
        )
    _need(frame, label, source, "label")
    target = frame[label].iloc[rows]
    known = target.notna().to_numpy()
    kind = infer_type(frame[label])
    task = infer_task(frame[label], kind) if task == "auto" else task
    if not known.any():
        raise DataError(
            f"{source}: '{label}' has no values where '{spec.column}' has numbers; tree bins learn from both"
        )
    y = target[known].astype(str) if task == "classification" else numbers(target[known])
    leaf = max(1, math.ceil(spec.min_share * int(known.sum())))
    model = (DecisionTreeClassifier if task == "classification" else DecisionTreeRegressor)(
        max_leaf_nodes=spec.bins, min_samples_leaf=leaf, random_state=seed
    )
    model.fit(x[known], y)
    splits = model.tree_.threshold[model.tree_.feature >= 0]
    return sorted(float(t) for t in splits)


def _apply_bins(values: np.ndarray, entry: dict[str, Any]) -> pd.Series:
    codes = np.searchsorted(np.asarray(entry["edges"], dtype=np.float64), values, side=entry["side"])
    return pd.Series(pd.array(codes, dtype="Int64")).mask(np.isnan(values))


def _decompose(frame: pd.DataFrame, spec: StlConfig, source: str) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Trend, seasonal and residual parts of each series, in the frame's row order; and per series the
    strength of trend and seasonality (1 - var(residual) / var(part + residual), floored at 0)."""
    stl = require("statsmodels.tsa.seasonal", purpose="STL decomposition").STL
    values = numbers(frame[spec.column])
    if spec.time is not None:
        raw = frame[spec.time]
        times = (
            pd.Series(numbers(raw))
            if pd.api.types.is_numeric_dtype(raw)
            else pd.to_datetime(raw, errors="coerce", format="mixed").reset_index(drop=True)
        )
        bad = np.flatnonzero(times.isna().to_numpy())
        if len(bad):
            raise DataError(
                f"{source}: '{spec.time}' at row {bad[0]} is {raw.iloc[bad[0]]!r}, not a time",
                hint="fix or drop rows without a time before decomposing",
            )
    else:
        times = pd.Series(np.arange(len(frame)))
    keys = frame[spec.group].astype(str).to_numpy() if spec.group is not None else np.zeros(len(frame), dtype=int)
    groups = pd.Series(np.arange(len(frame))).groupby(keys, sort=True)
    parts = [np.full(len(frame), np.nan) for _ in range(3)]
    strengths = []
    with progress_task(f"decomposing {spec.column}", groups.ngroups) as advance:
        for key, positions in groups:
            where = "" if spec.group is None else f" for {spec.group} = {key}"
            order = positions.to_numpy()[np.argsort(times.iloc[positions.to_numpy()].to_numpy(), kind="stable")]
            if times.iloc[order].duplicated().any():
                raise DataError(
                    f"{source}: '{spec.time}' repeats a time{where}; a series needs one row per time",
                    hint="aggregate the rows of each time first, or set group to the column that tells series apart",
                )
            series = values[order]
            missing = np.flatnonzero(np.isnan(series))
            if len(missing):
                raise DataError(
                    f"{source}: '{spec.column}'{where} has no number at row {order[missing[0]]} "
                    f"({len(missing)} such rows); STL needs a complete series",
                    hint="impute them first: `seekforge data clean` with clean.missing.strategy median or iterative",
                )
            if len(series) < 2 * spec.period:
                raise DataError(
                    f"{source}: the series{where} has {len(series)} rows; STL needs at least two periods "
                    f"({2 * spec.period})",
                    hint="use a shorter period, or longer series",
                )
            fit = stl(series, period=spec.period, seasonal=spec.seasonal, robust=spec.robust).fit()
            for part, got in zip(parts, (fit.trend, fit.seasonal, fit.resid), strict=True):
                part[order] = got
            strengths.append((_strength(fit.trend, fit.resid), _strength(fit.seasonal, fit.resid)))
            advance(1)
    if not strengths:
        raise DataError(f"{source} has no rows to decompose")
    trend, seasonal = np.mean(strengths, axis=0)
    return parts, {"series": len(strengths), "trend_strength": float(trend), "seasonal_strength": float(seasonal)}


def _strength(part: np.ndarray, residual: np.ndarray) -> float:
    total = np.var(part + residual)
    return float(max(0.0, 1.0 - np.var(residual) / total)) if total > 0 else 0.0
