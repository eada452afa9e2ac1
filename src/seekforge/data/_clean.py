"""Clean a table step by step, accounting for every row: rows_in == rows_out + rows_dropped + rows_rejected,
with a reason for each removed row.

Steps, in order (each optional, see :class:`~seekforge.data.quality_config.CleanConfig`): type coercion
(rows whose cells do not parse are rejected), rows without a label, exact duplicates, column drops
(ID-like, constant, mostly missing), near duplicates (ignoring the dropped columns), missing values,
outliers, label issues (cleanlab), rare categories.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from seekforge.core.errors import DataError
from seekforge.data._duplicates import first_of_hash, repeats, row_hashes
from seekforge.data._profile import id_like, infer_task, infer_type
from seekforge.data._values import numbers
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
        index = frame.index
        plain = isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1
        self._positions = None if plain else pd.Series(np.arange(len(frame)), index=index)
        self.removed: list[dict[str, Any]] = []

    def positions(self, index: pd.Index) -> np.ndarray:
        """Each row's position in the table as read (its index, when the table came with 0, 1, 2, ...)."""
        if self._positions is None:
            return np.asarray(index, dtype=np.int64)
        return self._positions.loc[index].to_numpy()

    def remove(self, frame: pd.DataFrame, mask: pd.Series, step: str, reasons: pd.Series | str) -> pd.DataFrame:
        chosen = mask.to_numpy()
        gone = frame.index[chosen]
        rows = self.positions(gone)
        why = [reasons] * len(gone) if isinstance(reasons, str) else reasons.loc[gone].astype(str).tolist()
        for row, reason in zip(rows.tolist(), why, strict=True):
            line = None if self.first_line is None else self.first_line + row
            self.removed.append({"row": row, "line": line, "step": step, "reason": reason})
        return keep_rows(frame, ~chosen)


def keep_rows(data: pd.DataFrame, keep: np.ndarray) -> pd.DataFrame:
    """The rows of ``data`` where ``keep`` is true, moved over one column at a time: ``data`` is left
    without columns, so the table never needs to exist twice in memory."""
    if keep.all():
        return data
    if data.columns.has_duplicates:
        return data[keep]
    names = list(data.columns)
    index = data.index[keep]  # one index for every column: filtering each Series would give each its own
    columns = {}
    for name in names:
        column = data.pop(name)
        columns[name] = pd.Series(column.array[keep], index=index, name=name, copy=False)
        del column
    out = pd.DataFrame(columns, columns=names, copy=False)
    out.attrs = dict(data.attrs)
    return out


#: how many steps ``clean_frame`` announces
CLEAN_STEPS = 7


def clean_frame(
    frame: pd.DataFrame,
    config: DataQualityConfig,
    *,
    consume: bool = False,
    step: Callable[[str], Any] | None = None,
) -> CleanResult:
    """Clean ``frame`` as ``config`` says. ``frame`` is not modified, unless ``consume``: then its
    columns move into the result as cleaning goes (and it is left empty), so a large table is never held
    twice. ``step`` is called with the name of each step as it starts (CLEAN_STEPS of them).

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
    rows_in, attrs = len(frame), dict(frame.attrs)
    data = frame if consume else frame.copy(deep=False)  # copy on write: changes never reach ``frame``
    del frame

    step = step or (lambda name: None)
    step("types")
    data, rejected = _coerce(data, types, ledger) if clean.coerce else (data, _empty_rejected())
    steps.append({"step": "coerce", "rejected": len(rejected)})

    step("personal data")
    if clean.privacy is not None and clean.privacy.pii != "keep":
        from seekforge.data._pii import protect

        privacy = clean.privacy
        data, privacy_step = protect(data, types, action=privacy.pii, entities=privacy.entities,
                                     column_share=privacy.column_share, keep=[label] if label is not None else [])  # fmt: skip
        for name in privacy_step["columns"] if privacy.pii == "drop" else []:
            types.pop(name)
        steps.append(privacy_step)

    if label is not None:
        missing_label = data[label].isna()
        data = ledger.remove(data, missing_label, "label", f"the label '{label}' is missing")
        steps.append({"step": "missing labels", "dropped": int(missing_label.sum())})

    # exact duplicates first: a repeated row repeats its key too, which would hide an ID column
    step("duplicates")
    before = len(data)
    if clean.deduplicate.exact:
        data = _deduplicate(data, row_hashes(data), ledger, "exact duplicate", check=True)
    exact = before - len(data)

    dropped_columns = _columns_to_drop(data, types, label, clean)
    data = data.drop(columns=list(dropped_columns))
    for name in dropped_columns:
        types.pop(name)
    steps.append({"step": "drop columns", "columns": dropped_columns})

    # near duplicates after the drops: records that differ only by an ID are the same record
    if clean.deduplicate.near:
        hashes = row_hashes(data, types, clean.deduplicate.digits)
        data = _deduplicate(data, hashes, ledger, "near duplicate", check=False)
    steps.append({"step": "deduplicate", "exact": exact, "near": before - exact - len(data)})

    step("missing values")
    data, missing_step = _missing(data, types, label, clean, ledger, config.seed)
    steps.append(missing_step)

    flags: dict[str, int] = {}
    step("outliers")
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
    step("label issues")
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

    step("rare categories")
    data, rare_step = _rare(data, types, label, clean)
    steps.append(rare_step)

    removed = pd.DataFrame(ledger.removed, columns=["row", "line", "step", "reason"])
    data.attrs = attrs
    result = CleanResult(data, removed, rejected, steps, types, rows_in, issues, flags)
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
    bad: dict[int, tuple[str, str]] = {}  # position -> (column, reason), for the first bad cell of a row
    for name, kind in types.items():
        column = data[name]
        if kind == "numeric" and not pd.api.types.is_numeric_dtype(column):
            parsed = pd.Series(numbers(column), index=column.index)
            what = "a number"
        elif kind == "datetime" and not pd.api.types.is_datetime64_any_dtype(column):
            parsed = pd.to_datetime(column, errors="coerce", format="mixed")
            what = "a date"
        else:
            continue
        suspects = np.flatnonzero((parsed.isna() & column.notna()).to_numpy())
        values = column.iloc[suspects]
        for position, value, blank in zip(suspects, values, values.astype(str).str.strip() == "", strict=True):
            if not blank and position not in bad:
                bad[int(position)] = (str(name), f"{value!r} is not {what}")
        data[name] = parsed
    if not bad:
        return data, _empty_rejected()
    positions = np.array(sorted(bad))
    rejected = data.iloc[positions].copy()
    original = ledger.positions(rejected.index)
    rejected = rejected.assign(
        row=original,
        line=[None if ledger.first_line is None else ledger.first_line + int(r) for r in original],
        column=[bad[p][0] for p in positions],
        reason=[bad[p][1] for p in positions],
    )
    keep = np.ones(len(data), dtype=bool)
    keep[positions] = False
    return keep_rows(data, keep), rejected


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


def _deduplicate(data: pd.DataFrame, hashes: np.ndarray, ledger: _Ledger, what: str, *, check: bool) -> pd.DataFrame:
    """``data`` without the rows that repeat an earlier one (same hash; cell by cell too when ``check``)."""
    first = first_of_hash(hashes)
    del hashes
    duplicated = repeats(first, data if check else None)
    if not duplicated.any():
        return data
    first = ledger.positions(data.index[first[duplicated]])
    reasons = pd.Series([f"{what} of row {int(row)}" for row in first], index=data.index[duplicated])
    return ledger.remove(data, pd.Series(duplicated, index=data.index), "deduplicate", reasons)


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
    data = data.copy(deep=False)
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
    """A mask of outlying rows and, for each, why. Numbers are read one column (or one block of rows) at
    a time, so a large table is never copied whole into a matrix."""
    numeric = [c for c in data.columns if c != label and types.get(str(c)) == "numeric"]
    if not numeric:
        return pd.Series(False, index=data.index), pd.Series(dtype=object)
    settings = clean.outliers
    if settings.method == "isolation_forest":
        mask = _isolated(data, numeric, settings.contamination, seed)
        why = f"isolated by IsolationForest (contamination {settings.contamination:g})"
        return pd.Series(mask, index=data.index), pd.Series(why, index=data.index[mask], dtype=object)
    far_any = np.zeros(len(data), dtype=bool)
    first = np.full(len(data), -1)
    for position, name in enumerate(numeric):
        values = numbers(data[name])
        values = values if values.flags.writeable else values.copy()  # scored in place
        with np.errstate(invalid="ignore", divide="ignore"):
            if settings.method == "zscore":
                spread = np.nanstd(values)
                values -= np.nanmean(values)
                np.abs(values, out=values)
                far = values > settings.z * spread if spread > 0 else np.zeros(len(values), dtype=bool)
            else:
                q1, q3 = np.nanquantile(values, [0.25, 0.75])
                spread = q3 - q1
                far = (values < q1 - settings.iqr * spread) | (values > q3 + settings.iqr * spread)
                far &= spread > 0
        del values
        first[far & ~far_any] = position
        far_any |= far
    rule = f"|z| > {settings.z:g}" if settings.method == "zscore" else f"beyond {settings.iqr:g} IQR"
    rows = np.flatnonzero(far_any)
    why = [
        f"'{numeric[j]}' = {float(data[numeric[j]].iloc[i]):g} ({rule})" for i, j in zip(rows, first[rows], strict=True)
    ]
    return pd.Series(far_any, index=data.index), pd.Series(why, index=data.index[rows], dtype=object)


def _isolated(
    data: pd.DataFrame, numeric: list[str], contamination: float, seed: int, block: int = 100_000
) -> np.ndarray:
    """IsolationForest fitted on at most ``block`` rows (each tree draws 256 anyway) and scored a block of
    rows at a time; missing numbers take the column's median."""
    from sklearn.ensemble import IsolationForest

    medians = {name: pd.Series(numbers(data[name])).median() for name in numeric}

    def rows(part: pd.DataFrame) -> np.ndarray:
        return np.column_stack([np.where(np.isnan(v := numbers(part[n])), medians[n], v) for n in numeric])

    sample = data.sample(block, random_state=seed) if len(data) > block else data
    forest = IsolationForest(contamination=contamination, random_state=seed).fit(rows(sample))
    flags = [forest.predict(rows(data.iloc[start : start + block])) == -1 for start in range(0, len(data), block)]
    return np.concatenate(flags)


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
    data = data.copy(deep=False)
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
    data = data.copy(deep=False)
    for name, kind in types.items():
        if kind != "category" or name == label or name not in data.columns:
            continue
        frequencies = data[name].value_counts(normalize=True)
        rare = frequencies[frequencies < share].index
        if len(rare):
            data[name] = data[name].where(~data[name].isin(rare), clean.columns.rare_label)
            step["grouped"][name] = len(rare)
    return data, step
