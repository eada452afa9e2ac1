"""Reading a column's values as numbers, whatever type the file gave it."""

from __future__ import annotations

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
