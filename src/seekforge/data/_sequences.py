"""Sequence and datetime features: fitting what encodes a list per row (numbers' mean and spread, or a
vocabulary of tokens) and a point in time (the median that fills a missing one, the spread of its elapsed
days and years); the encoding itself is the runtime's (:func:`seekforge.runtime.encode_sequences`,
:func:`seekforge.runtime.encode_datetimes`)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from seekforge.data._validate import require_some, row_place
from seekforge.data.config import DatetimeFeature, SequenceFeature
from seekforge.runtime import calendar_parts, canonical, epoch_seconds, is_missing, read_sequence, sequence_numbers


def fit_sequence(column: pd.Series, frame: pd.DataFrame, feature: SequenceFeature) -> dict[str, Any]:
    """What encodes ``column`` (the training split's): ``kind`` (numbers or tokens), ``mean`` and ``std`` or
    ``vocab``, ``max_length``, ``keep``, and how many rows ``max_length`` cut (``truncated``, of ``rows``,
    the ``longest`` list).

    Raises:
        DataError: A cell that is not a list, a non-number where numbers are declared, or no items at all.
    """
    name = feature.name
    lists = [read_sequence(value, row_place(frame, pos), name) for pos, value in enumerate(column)]
    lengths = [len(items) for items in lists]
    require_some(any(lengths), frame, name, "sequence")
    kind = feature.values
    if kind == "auto":
        kind = "numbers" if all(numeric_item(item) for items in lists for item in items) else "tokens"
    spec: dict[str, Any] = {"kind": kind, "max_length": feature.max_length, "keep": feature.keep,
                            "rows": len(lists), "truncated": sum(n > feature.max_length for n in lengths),
                            "longest": max(lengths)}  # fmt: skip
    if kind == "numbers":
        values = np.concatenate(
            [sequence_numbers(items, row_place(frame, pos), name) for pos, items in enumerate(lists) if items]
        )
        present = values[~np.isnan(values)]
        spec["mean"] = float(present.mean()) if present.size else 0.0
        spec["std"] = float(present.std()) if present.size and present.std() > 0 else 1.0
    else:
        counts = Counter(canonical(item) for items in lists for item in items if not is_missing(item))
        kept = sorted((t for t, n in counts.items() if n >= feature.min_frequency), key=lambda t: (-counts[t], t))
        spec["vocab"] = kept[: feature.max_tokens] if feature.max_tokens is not None else kept
    return spec


def numeric_item(item: Any) -> bool:
    """A number (or a missing item); numbers written as text (``"1043"``, an identifier) are tokens."""
    return is_missing(item) or (isinstance(item, int | float) and not isinstance(item, bool))


def fit_datetime(column: pd.Series, frame: pd.DataFrame, feature: DatetimeFeature) -> dict[str, Any]:
    """What encodes ``column`` (the training split's): its ``parts``, the median time that fills a missing
    one (``fill``, seconds since 1970), and the mean and spread of the standardised parts.

    Raises:
        DataError: A value that is not a time, or no time at all.
    """
    seconds = np.array([epoch_seconds(v, row_place(frame, pos), feature.name) for pos, v in enumerate(column)])
    present = seconds[~np.isnan(seconds)]
    require_some(bool(present.size), frame, feature.name, "datetime")
    spec: dict[str, Any] = {"parts": list(feature.parts), "fill": float(np.median(present))}
    raw = calendar_parts(present, {"parts": ["elapsed", "year"], "elapsed": _UNIT, "year": _UNIT})
    for i, part in enumerate(("elapsed", "year")):
        values = raw[:, i]
        spec[part] = {"mean": float(values.mean()), "std": float(values.std()) or 1.0}
    return spec


_UNIT = {"mean": 0.0, "std": 1.0}
