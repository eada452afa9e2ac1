"""Check a loaded table against the declared features before any work is done on it."""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd

from seekforge.core.errors import DataError
from seekforge.data._values import as_text, nested_positions
from seekforge.data.config import FeaturesConfig, InputFeature, OutputFeature


def row_place(frame: pd.DataFrame, position: int) -> str:
    """``file line N`` for text formats, ``file row N`` otherwise, for the row at ``position``.

    A split keeps its source's integer index, so the place is the row's place in the source file.
    """
    source = frame.attrs.get("source", "data")
    first = frame.attrs.get("first_line")
    label = frame.index[position]
    row = int(label) if pd.api.types.is_integer(label) else position
    return f"{source} line {row + first}" if first is not None else f"{source} row {row + 1}"


def check_table(frame: pd.DataFrame, features: FeaturesConfig, *, with_output: bool = True) -> pd.DataFrame:
    """Return a copy of ``frame`` with the declared columns, numeric ones as float.

    Raises:
        DataError: Empty table, missing column, a non-numeric value in a numeric column, a binary column
            with more than two values, or missing labels.
    """
    source = frame.attrs.get("source", "data")
    if frame.empty:
        raise DataError(f"{source} has no rows")
    declared: list[InputFeature | OutputFeature] = list(features.inputs)
    if with_output:
        declared.append(features.output)
    missing = [f.name for f in declared if f.name not in frame.columns]
    if missing:
        columns = [str(c) for c in frame.columns]
        parts = []
        for name in missing:
            close = difflib.get_close_matches(name, columns, n=1)
            parts.append(f"'{name}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
        shown = ", ".join(repr(c) for c in columns[:20]) + (" ..." if len(columns) > 20 else "")
        hint = "fix the feature names in the recipe"
        if len(columns) == 1 and any(d in columns[0] for d in ";\t|"):
            hint = "the file seems to use another delimiter: set data.read.delimiter (--delimiter on the command line)"
        raise DataError(
            f"{source}: declared column{'s' * (len(missing) > 1)} {', '.join(parts)} not found; columns present: {shown}",
            hint=hint,
        )
    out = frame[[f.name for f in declared]].copy()
    out.attrs = dict(frame.attrs)
    for feature in declared:
        column = out[feature.name]
        nested = nested_positions(column) if feature.type not in ("image", "sequence") else ()
        if len(nested):
            value = column.iloc[int(nested[0])]
            raise DataError(
                f"{row_place(frame, int(nested[0]))}: '{feature.name}' holds a {type(value).__name__} "
                f"({str(as_text(value))[:60]}), and a {feature.type} feature takes one value per cell "
                f"({len(nested)} such cells)",
                hint="flatten the nested column into plain columns (one per field), or leave it out of the features",
            )
        if feature.type == "text" and feature.missing == "error":
            require_values(column, frame, feature.name)
        if feature.type == "numeric":
            out[feature.name] = _numeric(column, frame, feature.name, is_output=feature is features.output)
        elif feature.type == "binary":
            values = column.dropna().unique()
            if len(values) > 2:
                shown = ", ".join(repr(v) for v in values[:5])
                raise DataError(
                    f"{source}: binary column '{feature.name}' has {len(values)} distinct values ({shown}...)",
                    hint=f"declare '{feature.name}' as type category",
                )
    if with_output:
        require_values(out[features.output.name], frame, features.output.name, what=" (the output)",
                  hint="drop unlabelled rows first (seekforge data clean) or fill them in")  # fmt: skip
    return out


def require_values(
    column: pd.Series, frame: pd.DataFrame, name: str, *, what: str = "", hint: str | None = None
) -> None:
    """Refuse a column of ``frame`` with missing values, naming the first one's line (or row) and the count.

    Raises:
        DataError: A value is missing.
    """
    absent = np.flatnonzero(column.isna().to_numpy())
    if len(absent):
        raise DataError(
            f"{row_place(frame, int(absent[0]))}: '{name}'{what} is empty in {len(absent)} row{'s' * (len(absent) > 1)}",
            hint=hint or f"every row needs its '{name}': drop or fill the rows without it",
        )


def require_some(present: bool, frame: pd.DataFrame, name: str, kind: str) -> None:
    """Refuse a ``kind`` input that has no value in any row of the training split (``present`` False).

    Raises:
        DataError: Naming the input and the fix.
    """
    if not present:
        raise DataError(
            f"{frame.attrs.get('source', 'data')}: the {kind} input '{name}' is empty in every row of the "
            "training split",
            hint=f"fill it, or remove '{name}' from features.inputs",
        )


def _numeric(column: pd.Series, frame: pd.DataFrame, name: str, *, is_output: bool) -> pd.Series:
    if pd.api.types.is_bool_dtype(column):
        return column.astype(float)
    if pd.api.types.is_numeric_dtype(column):
        return column.astype(float)
    converted = pd.to_numeric(column, errors="coerce")
    bad = np.flatnonzero((converted.isna() & column.notna()).to_numpy())
    if len(bad):
        pos = int(bad[0])
        raise DataError(
            f"{row_place(frame, pos)}: column '{name}' is declared numeric but holds {column.iloc[pos]!r}"
            + (f" ({len(bad)} such rows)" if len(bad) > 1 else ""),
            hint=f"fix the value, or declare '{name}' as type category" + ("" if is_output else " or text"),
        )
    return converted.astype(float)
