"""Clean a table step by step, accounting for every row: rows_in == rows_out + rows_dropped + rows_rejected,
with a reason for each removed row.

Steps, in order (each optional, see :class:`~seekforge.data.quality_config.CleanConfig`): type coercion
(rows whose cells do not parse are rejected), rows without a label, exact duplicates, column drops
(ID-like, constant, mostly missing), near duplicates (ignoring the dropped columns), missing values,
outliers, label issues (cleanlab), rare categories.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from seekforge.core.errors import DataError
from seekforge.data._profile import id_like, infer_task, infer_type, normalized_rows
from seekforge.data.quality_config import CleanConfig, DataQualityConfig


@dataclass
class CleanResult:
    """The cleaned table and the account of what happened to every row and column.

    Attributes:
        frame: The cleaned rows (source index kept).
        removed: One row per dropped row: ``row`` (0-based data row), ``line`` (file line, when known),
            ``step`` and ``reason``.
        rejected: The rejected rows as read, with ``row``, ``line``, ``column`` and ``reason``.
        steps: What each step did (counts, columns), in order.
        types: Column types used.
    """

    frame: pd.DataFrame
    removed: pd.DataFrame
    rejected: pd.DataFrame
    steps: list[dict[str, Any]]
    types: dict[str, str]
    rows_in: int
    label_issues: pd.Series | None = None
    flags: dict[str, int] = field(default_factory=dict)

    @property
    def accounting(self) -> dict[str, int]:
        return {
            "rows_in": self.rows_in,
            "rows_out": len(self.frame),
            "rows_dropped": len(self.removed),
            "rows_rejected": len(self.rejected),
        }


class _Ledger:
    """Collects removed rows with their reasons."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self.first_line = frame.attrs.get("first_line")
        self.positions = pd.Series(np.arange(len(frame)), index=frame.index)
        self.removed: list[dict[str, Any]] = []

    def _where(self, index: Any) -> dict[str, Any]:
        row = int(self.positions.loc[index])
        return {"row": row, "line": None if self.first_line is None else self.first_line + row}

    def remove(self, frame: pd.DataFrame, mask: pd.Series, step: str, reasons: pd.Series | str) -> pd.DataFrame:
        for index in frame.index[mask.to_numpy()]:
            reason = reasons if isinstance(reasons, str) else str(reasons.loc[index])
            self.removed.append({**self._where(index), "step": step, "reason": reason})
        return frame[~mask.to_numpy()]


def clean_frame(frame: pd.DataFrame, config: DataQualityConfig) -> CleanResult:
    """Clean ``frame`` (not modified) as ``config`` says.

    Raises:
        DataError: The label column does not exist, or a step cannot run on this data.
    """
    source = frame.attrs.get("source", "data")
    if frame.empty:
        raise DataError(f"{source} holds no rows", hint="check the file and its delimiter")
    label = config.label
    if label is not None and label not in frame.columns:
        raise DataError(
            f"{source}: the label column '{label}' does not exist",
            hint=f"columns: {', '.join(map(str, frame.columns[:20]))}",
        )
    clean: CleanConfig = config.clean
    types = {str(c): infer_type(frame[c], config.types.get(str(c))) for c in frame.columns}
    ledger = _Ledger(frame)
    steps: list[dict[str, Any]] = []
    data = frame.copy()

    data, rejected = _coerce(data, types, ledger) if clean.coerce else (data, _empty_rejected())
    steps.append({"step": "coerce", "rejected": len(rejected)})

    if label is not None:
        missing_label = data[label].isna()
        data = ledger.remove(data, missing_label, "label", f"the label '{label}' is missing")
        steps.append({"step": "missing labels", "dropped": int(missing_label.sum())})

    # exact duplicates first: a repeated row repeats its key too, which would hide an ID column
    before = len(data)
    if clean.deduplicate.exact:
        data = _deduplicate(data, data, ledger, "exact duplicate")
    exact = before - len(data)

    dropped_columns = _columns_to_drop(data, types, label, clean)
    data = data.drop(columns=list(dropped_columns))
    for name in dropped_columns:
        types.pop(name)
    steps.append({"step": "drop columns", "columns": dropped_columns})

    # near duplicates after the drops: records that differ only by an ID are the same record
    if clean.deduplicate.near:
        data = _deduplicate(data, normalized_rows(data, types, clean.deduplicate.digits), ledger, "near duplicate")
    steps.append({"step": "deduplicate", "exact": exact, "near": before - exact - len(data)})

    data, missing_step = _missing(data, types, label, clean, ledger, config.seed)
    steps.append(missing_step)

    flags: dict[str, int] = {}
    if clean.outliers.method != "none":
        outliers, why = _outliers(data, types, label, clean, config.seed)
        if clean.outliers.action == "drop":
            data = ledger.remove(data, outliers, "outliers", why)
        else:
            data = data.assign(is_outlier=outliers.to_numpy())
        flags["outliers"] = int(outliers.sum())
        steps.append({"step": "outliers", "method": clean.outliers.method, "action": clean.outliers.action,
                      "rows": int(outliers.sum())})  # fmt: skip

    issues = None
    if clean.label_issues.action != "none":
        if label is None:
            raise DataError("label_issues needs the label column: set label in the configuration")
        task = infer_task(data[label], types[label]) if config.task == "auto" else config.task
        if task != "classification":
            raise DataError(f"label issues are found for classification labels; '{label}' is a regression target")
        from seekforge.data._label_issues import find_label_issues

        found = find_label_issues(data, label, types, folds=clean.label_issues.folds, seed=config.seed)
        issues = found.issues
        data, label_step = _apply_label_issues(data, label, found, clean, ledger)
        flags["label_issues"] = int(issues.sum())
        steps.append(label_step)

    data, rare_step = _rare(data, types, label, clean)
    steps.append(rare_step)

    removed = pd.DataFrame(ledger.removed, columns=["row", "line", "step", "reason"])
    data.attrs = dict(frame.attrs)
    result = CleanResult(data, removed, rejected, steps, types, len(frame), issues, flags)
    accounting = result.accounting
    if accounting["rows_in"] != accounting["rows_out"] + accounting["rows_dropped"] + accounting["rows_rejected"]:
        raise AssertionError(f"row accounting does not add up: {accounting}")  # a bug, never user input
    return result


def _empty_rejected() -> pd.DataFrame:
    return pd.DataFrame(columns=["row", "line", "column", "reason"])


def coerce_types(frame: pd.DataFrame, types: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``frame`` with numbers and dates as typed columns, without the rows whose cells do not parse; and
    those rows, with ``row``, ``line``, ``column`` and ``reason``."""
    return _coerce(frame.copy(), types, _Ledger(frame))


def _coerce(data: pd.DataFrame, types: dict[str, str], ledger: _Ledger) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Numbers and dates as typed columns; rows with a cell that does not parse go to the rejected table."""
    bad_reason = pd.Series("", index=data.index, dtype=object)
    bad_column = pd.Series("", index=data.index, dtype=object)
    for name, kind in types.items():
        column = data[name]
        if kind == "numeric" and not pd.api.types.is_numeric_dtype(column):
            parsed = pd.to_numeric(column, errors="coerce")
            what = "a number"
        elif kind == "datetime" and not pd.api.types.is_datetime64_any_dtype(column):
            parsed = pd.to_datetime(column, errors="coerce", format="mixed")
            what = "a date"
        else:
            continue
        bad = parsed.isna() & column.notna() & (column.astype(str).str.strip() != "")
        fresh = bad & (bad_reason == "")
        bad_reason[fresh] = column[fresh].map(lambda v, w=what: f"{v!r} is not {w}")
        bad_column[fresh] = name
        data[name] = parsed
    mask = bad_reason != ""
    rejected = data.loc[mask].copy()
    if mask.any():
        original = ledger.positions.loc[rejected.index]
        rejected = rejected.assign(
            row=original.to_numpy(),
            line=[None if ledger.first_line is None else ledger.first_line + int(r) for r in original],
            column=bad_column[mask].to_numpy(),
            reason=bad_reason[mask].to_numpy(),
        )
    else:
        rejected = _empty_rejected()
    return data[~mask], rejected


def _columns_to_drop(
    data: pd.DataFrame, types: dict[str, str], label: str | None, clean: CleanConfig
) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in data.columns:
        if name == label:
            continue
        column = data[name]
        share = column.isna().mean()
        if clean.missing.drop_columns_above is not None and share > clean.missing.drop_columns_above:
            out[str(name)] = f"missing in {share:.0%} of rows"
        elif clean.columns.drop_constant and column.nunique(dropna=True) <= 1:
            out[str(name)] = "constant"
        elif clean.columns.drop_id_like and (why := id_like(column, types[str(name)])):
            out[str(name)] = f"ID-like: {why}"
    return out


def _deduplicate(data: pd.DataFrame, keys: pd.DataFrame, ledger: _Ledger, what: str) -> pd.DataFrame:
    duplicated = keys.duplicated(keep="first")
    if not duplicated.any():
        return data
    hashed = pd.util.hash_pandas_object(keys, index=False)
    first = pd.Series(data.index, index=data.index).groupby(hashed.to_numpy()).transform("first")
    reasons = first.map(lambda index: f"{what} of row {int(ledger.positions.loc[index])}")
    return ledger.remove(data, duplicated, "deduplicate", reasons)


def _missing(
    data: pd.DataFrame, types: dict[str, str], label: str | None, clean: CleanConfig, ledger: _Ledger, seed: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    strategy = clean.missing.strategy
    features = [c for c in data.columns if c != label]
    counts = {str(c): int(data[c].isna().sum()) for c in features if data[c].isna().any()}
    step: dict[str, Any] = {"step": "missing", "strategy": strategy, "cells": counts}
    if strategy == "none" or not counts:
        return data, step
    if strategy == "drop":
        mask = data[features].isna().any(axis=1)
        first_missing = data[features].isna().idxmax(axis=1)
        data = ledger.remove(data, mask, "missing", first_missing.map(lambda c: f"'{c}' is missing"))
        step["dropped"] = int(mask.sum())
        return data, step
    data = data.copy()
    numeric = [c for c in counts if types[c] == "numeric"]
    if strategy == "iterative" and numeric:
        from sklearn.experimental import enable_iterative_imputer  # noqa: F401
        from sklearn.impute import IterativeImputer

        all_numeric = [c for c in features if types[str(c)] == "numeric"]
        imputer = IterativeImputer(random_state=seed, max_iter=10)
        data[all_numeric] = imputer.fit_transform(data[all_numeric].to_numpy(dtype=np.float64))
    for name in counts:
        column = data[name]
        if not column.isna().any():
            continue
        if strategy == "constant":
            value: Any = clean.missing.fill_value
        elif types[name] == "numeric" and strategy in ("median", "iterative"):
            value = column.median()
        else:
            modes = column.mode(dropna=True)
            value = modes.iloc[0] if len(modes) else None
        if value is not None:
            data[name] = column.fillna(value)
    step["imputed"] = counts
    return data, step


def _outliers(
    data: pd.DataFrame, types: dict[str, str], label: str | None, clean: CleanConfig, seed: int
) -> tuple[pd.Series, pd.Series]:
    """A mask of outlying rows and, for each, why."""
    numeric = [c for c in data.columns if c != label and types.get(str(c)) == "numeric"]
    why = pd.Series("", index=data.index, dtype=object)
    if not numeric:
        return pd.Series(False, index=data.index), why
    values = data[numeric].astype(np.float64)
    settings = clean.outliers
    if settings.method == "isolation_forest":
        from sklearn.ensemble import IsolationForest

        forest = IsolationForest(contamination=settings.contamination, random_state=seed)
        filled = values.fillna(values.median())
        mask = pd.Series(forest.fit_predict(filled.to_numpy()) == -1, index=data.index)
        why[mask] = f"isolated by IsolationForest (contamination {settings.contamination:g})"
        return mask, why
    if settings.method == "zscore":
        std = values.std(ddof=0).replace(0, np.nan)
        score = ((values - values.mean()) / std).abs()
        far = score > settings.z
        rule = f"|z| > {settings.z:g}"
    else:
        q1, q3 = values.quantile(0.25), values.quantile(0.75)
        spread = (q3 - q1).replace(0, np.nan)
        far = (values < q1 - settings.iqr * spread) | (values > q3 + settings.iqr * spread)
        rule = f"beyond {settings.iqr:g} IQR"
    mask = far.any(axis=1)
    first = far.idxmax(axis=1)
    why[mask] = [f"'{c}' = {float(values.at[i, c]):g} ({rule})" for i, c in first[mask].items()]
    return mask, why


def _apply_label_issues(
    data: pd.DataFrame, label: str, found: Any, clean: CleanConfig, ledger: _Ledger
) -> tuple[pd.DataFrame, dict[str, Any]]:
    settings = clean.label_issues
    issues = found.issues.reindex(data.index, fill_value=False)
    step: dict[str, Any] = {"step": "label issues", "action": settings.action, "rows": int(issues.sum()),
                            "model": found.model}  # fmt: skip
    reasons = found.suggested.map(lambda s: f"label looks wrong; the model says {s!r}")
    if settings.action == "flag":
        return data.assign(label_issue=issues.to_numpy()), step
    if settings.action == "drop":
        return ledger.remove(data, issues, "label issues", reasons), step
    confident = issues & (found.confidence.reindex(data.index) >= settings.threshold)
    data = data.copy()
    data.loc[confident, label] = found.suggested[confident]
    step["relabelled"] = int(confident.sum())
    low = issues & ~confident
    step["dropped"] = int(low.sum())
    return ledger.remove(data, low, "label issues", reasons), step


def _rare(
    data: pd.DataFrame, types: dict[str, str], label: str | None, clean: CleanConfig
) -> tuple[pd.DataFrame, dict[str, Any]]:
    share = clean.columns.rare_share
    step: dict[str, Any] = {"step": "rare categories", "grouped": {}}
    if share <= 0:
        return data, step
    data = data.copy()
    for name, kind in types.items():
        if kind != "category" or name == label or name not in data.columns:
            continue
        frequencies = data[name].value_counts(normalize=True)
        rare = frequencies[frequencies < share].index
        if len(rare):
            data[name] = data[name].where(~data[name].isin(rare), clean.columns.rare_label)
            step["grouped"][name] = len(rare)
    return data, step
