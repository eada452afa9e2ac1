"""Duplicate rows: a hash per row (exact, or with numbers rounded and texts normalised), the first row of
each hash, and which rows repeat an earlier one (checked value by value, so a hash collision is no
duplicate)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from seekforge.data._values import numbers


def _normalized(column: pd.Series, kind: str, digits: int) -> pd.Series:
    """Numbers rounded to ``digits`` significant digits; strings lower-cased with runs of spaces and
    punctuation collapsed. Rows equal once every column is normalised are near duplicates."""
    if kind == "numeric":
        values = numbers(column)
        with np.errstate(divide="ignore", invalid="ignore"):
            magnitude = np.where(values == 0, 0, np.floor(np.log10(np.abs(values))))
        scale = 10.0 ** (digits - 1 - np.nan_to_num(magnitude))
        return pd.Series(np.round(values * scale) / scale)
    if kind in ("text", "category", "binary"):
        return column.astype("str").str.lower().str.replace(r"[\W_]+", " ", regex=True).str.strip()
    return column


def row_hashes(frame: pd.DataFrame, kinds: Mapping[str, str] | None = None, digits: int | None = None) -> np.ndarray:
    """A 64-bit hash of each row's values, or of its normalised values when ``digits`` is given (near
    duplicates). Built one column at a time, numbers from their values and other columns from their
    factorized codes (equal codes, equal values), so it needs memory for a few columns, not a copy of
    the table."""
    combined = np.zeros(len(frame), dtype=np.uint64)
    for position, name in enumerate(frame.columns):
        column = frame.iloc[:, position]
        if digits is not None:
            column = _normalized(column, (kinds or {}).get(str(name), "category"), digits)
        if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
            values = column.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            values = pd.factorize(column)[0]  # missing values share code -1
        combined *= np.uint64(1_000_003)  # wraps around: a mix, as pandas combines hashes
        combined ^= pd.util.hash_array(values, categorize=False)
        del values
    return combined


def first_of_hash(hashes: np.ndarray) -> np.ndarray:
    """For each row, the position of the first row with the same hash (by a stable sort, which needs
    less memory than a hash table over the rows)."""
    if not len(hashes):
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(hashes, kind="stable")
    ordered = hashes[order]
    starts = np.empty(len(hashes), dtype=bool)
    starts[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts[1:])
    del ordered
    group = np.cumsum(starts)
    group -= 1
    np.take(order[starts], group, out=group)  # a stable sort puts each hash's first row first
    first = np.empty(len(hashes), dtype=np.int64)
    first[order] = group
    return first


def repeats(first: np.ndarray, frame: pd.DataFrame | None = None) -> np.ndarray:
    """Whether each row repeats an earlier one, from ``first_of_hash``. Given ``frame``, each repeat is
    also checked cell by cell against the first row of its hash, so a hash collision is never called a
    repeat."""
    repeated = first != np.arange(len(first))
    if frame is None or not repeated.any():
        return repeated
    later = np.flatnonzero(repeated)
    earlier = first[later]
    same = np.ones(len(later), dtype=bool)
    for position in range(len(frame.columns)):
        column = frame.iloc[:, position]
        a, b = column.iloc[later].to_numpy(), column.iloc[earlier].to_numpy()
        same &= (a == b) | (pd.isna(a) & pd.isna(b))
    repeated[later[~same]] = False
    return repeated


def duplicate_counts(frame: pd.DataFrame, kinds: Mapping[str, str], digits: int = 4) -> dict[str, int]:
    """Rows that repeat an earlier row exactly, and further rows that repeat one nearly."""
    exact = repeats(first_of_hash(row_hashes(frame)), frame)
    near = repeats(first_of_hash(row_hashes(frame, kinds, digits))) & ~exact
    return {"exact": int(exact.sum()), "near": int(near.sum())}
