"""Inputs derived from each entity's earlier rows, computed for a recipe's splits without leaking across them.

The splits are nested in what they may read: a training row's history holds training rows only, a
validation row's the training and validation rows, a test row's every row. So nothing of a held-out row
(its values, its label when a label is lagged) reaches a training row, while the held-out rows see the
past a deployed model would have seen. The values themselves come from
:func:`seekforge.runtime.history_values`, the code ``predict`` and the server run.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import pandas as pd

from seekforge.core.errors import DataError
from seekforge.data._validate import row_place
from seekforge.data.config import FeaturesConfig
from seekforge.runtime import add_history, columns_of, epoch_seconds


def check_history_columns(frame: pd.DataFrame, features: FeaturesConfig) -> None:
    """Refuse data that lacks a column the derived inputs are computed from, or that already holds a
    derived input (whose values could not be shown to use earlier rows only).

    Raises:
        DataError: Naming the column.
    """
    assert features.history is not None
    source = frame.attrs.get("source", "data")
    needed = {features.history.key: "features.history.key", features.history.time: "features.history.time"}
    for feature in features.derived():
        if feature.history.of is not None:  # type: ignore[union-attr]
            needed.setdefault(feature.history.of, f"the 'of' of input '{feature.name}'")  # type: ignore[union-attr]
        if feature.name in frame.columns:
            raise DataError(
                f"{source}: column '{feature.name}' is in the data, and the recipe derives an input of that name "
                "from earlier rows",
                hint="rename the derived input in features.inputs, or drop its 'history' to read the column as is",
            )
    for column, role in needed.items():
        if column not in frame.columns:
            shown = ", ".join(repr(str(c)) for c in list(frame.columns)[:20])
            raise DataError(f"{source}: column '{column}' ({role}) not found; columns present: {shown}",
                            hint="fix the name in the recipe, or add the column to the data")  # fmt: skip


def with_history(frame: pd.DataFrame, features: FeaturesConfig, sees: Sequence[np.ndarray]) -> pd.DataFrame:
    """``frame`` (not modified) with a column per derived input.

    ``sees`` lists, for each group of rows, the positions of the rows that group may read, in order: the
    rows of each group first appear in its entry (a row takes its values from the first entry holding it).
    """
    assert features.history is not None
    key, time = features.history.key, features.history.time
    out = frame.copy()
    filled = np.zeros(len(frame), dtype=bool)
    schema = [{"name": f.name, "history": {"key": key, "time": time, **f.history.spec()}}  # type: ignore[union-attr]
              for f in features.derived()]  # fmt: skip
    sources = list(dict.fromkeys(c for entry in schema for c in columns_of(entry["history"])))
    values = {entry["name"]: np.full(len(frame), np.nan) for entry in schema}
    for visible in sees:
        visible = np.sort(visible)
        part = frame.iloc[visible]
        new = ~filled[visible]
        got = add_history({c: part[c].tolist() for c in sources}, schema, place=functools.partial(row_place, part))
        for name, column in values.items():
            column[visible[new]] = got[name][new]
        filled[visible] = True
    for name, column in values.items():
        out[name] = column
    return out


def derive_history(frame: pd.DataFrame, features: FeaturesConfig) -> pd.DataFrame:
    """``frame`` (not modified) with its derived inputs, each row's from every earlier row of its entity;
    ``frame`` itself when the features derive none.

    Raises:
        DataError: A column they are computed from is missing, or holds a value they cannot use.
    """
    if features.history is None:
        return frame
    check_history_columns(frame, features)
    return with_history(frame, features, [np.arange(len(frame))])


def time_order(frame: pd.DataFrame, column: str) -> np.ndarray:
    """Positions of ``frame``'s rows from earliest to latest by ``column`` (ties in file order).

    Raises:
        DataError: The column is absent, or a time is missing or does not parse (naming the row).
    """
    source = frame.attrs.get("source", "data")
    if column not in frame.columns:
        raise DataError(f"{source}: column '{column}' (data.split.order) not found",
                        hint="name a column of times in data.split.order")  # fmt: skip
    seconds = np.array(
        [epoch_seconds(v, row_place(frame, i), column) for i, v in enumerate(frame[column].tolist())], dtype=np.float64
    )
    if np.isnan(seconds).any():
        row = int(np.flatnonzero(np.isnan(seconds))[0])
        raise DataError(f"{row_place(frame, row)}: column '{column}' (data.split.order) has no time",
                        hint="fill or drop the rows without a time: the split orders every row by it")  # fmt: skip
    return np.argsort(seconds, kind="stable")
