"""Reading a column's values as numbers, whatever type the file gave it; telling nested values (lists,
arrays, objects, as Parquet and JSON Lines may hold) from plain ones."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

#: what ``numbers`` parses: a decimal or scientific number, inf or nan (surrounding spaces ignored)
_NUMBER = r"(?i)^[+-]?((\d+\.?\d*|\.\d+)(e[+-]?\d+)?|inf|infinity|nan)$"


def numbers(column: pd.Series) -> np.ndarray:
    """The column as float64, NaN where a value is missing or not a number. Text held by pyarrow is parsed
    by pyarrow, without making a Python object of each value (a large text column would cost several
    times its size)."""
    if pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column):
        return column.to_numpy(dtype=np.float64, na_value=np.nan)
    data = getattr(column.array, "_pa_array", None)
    if data is not None and pd.api.types.is_string_dtype(column):
        import pyarrow as pa
        import pyarrow.compute as pc

        text = pc.utf8_trim_whitespace(data)
        parseable = pc.match_substring_regex(text, _NUMBER)
        parsed = pc.cast(pc.if_else(parseable, text, pa.scalar(None, pa.string())), pa.float64())
        return parsed.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


_NESTED = (list, tuple, dict, set, np.ndarray)


def nested_positions(column: pd.Series) -> np.ndarray:
    """Positions of the cells of ``column`` that hold a list, array or object rather than one value
    (only a column of Python objects can)."""
    if column.dtype != object:
        return np.empty(0, dtype=np.intp)
    return np.flatnonzero(column.map(lambda value: isinstance(value, _NESTED)).to_numpy(dtype=bool))


def as_text(value: object) -> object:
    """A nested value as one text (JSON where it can be), so it can be counted and compared; others as they are."""
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, _NESTED):
        try:
            return json.dumps(value, sort_keys=True, default=str)
        except (TypeError, ValueError):
            return str(value)
    return value
