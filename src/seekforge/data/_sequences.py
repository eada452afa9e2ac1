"""Sequence and datetime features: fitting what encodes a list per row (numbers' mean and spread, or a
vocabulary of tokens) and a point in time (the median that fills a missing one, the spread of its elapsed
days and years); the encoding itself is the runtime's (:func:`seekforge.runtime.encode_sequences`,
:func:`seekforge.runtime.encode_datetimes`)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
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
    lists = read_lists(column, frame, name)
    require_some(any(lists), frame, name, "sequence")
    kind = sequence_kind(lists, feature)
    spec: dict[str, Any] = {"kind": kind, "max_length": feature.max_length, "keep": feature.keep,
                            **list_lengths(lists, feature)}  # fmt: skip
    if kind == "numbers":
        present = present_numbers(lists, frame, name)
        spec["mean"] = float(present.mean()) if present.size else 0.0
        spec["std"] = float(present.std()) if present.size and present.std() > 0 else 1.0
    else:
        spec["vocab"] = vocabulary(token_counts(lists), feature)
    return spec


def read_lists(column: pd.Series, frame: pd.DataFrame, name: str) -> list[list[Any]]:
    """Each row's list (a bad cell named by its row)."""
    return [read_sequence(value, row_place(frame, pos), name) for pos, value in enumerate(column)]


def sequence_kind(lists: list[list[Any]], feature: SequenceFeature) -> str:
    """``numbers`` or ``tokens``: the declared kind, or for ``auto``, numbers when every item is one."""
    if feature.values != "auto":
        return feature.values
    return "numbers" if all(numeric_item(item) for items in lists for item in items) else "tokens"


def list_lengths(lists: list[list[Any]], feature: SequenceFeature) -> dict[str, int]:
    """How many ``rows``, how many of them ``max_length`` cuts (``truncated``), the ``longest`` list."""
    lengths = [len(items) for items in lists]
    return {"rows": len(lists), "truncated": sum(n > feature.max_length for n in lengths),
            "longest": max(lengths, default=0)}  # fmt: skip


def present_numbers(lists: list[list[Any]], frame: pd.DataFrame, name: str) -> np.ndarray:
    """Every item of the lists as a number, missing items left out (a non-number named by its row)."""
    values = [sequence_numbers(items, row_place(frame, pos), name) for pos, items in enumerate(lists) if items]
    joined = np.concatenate(values) if values else np.empty(0)
    return joined[~np.isnan(joined)]


def token_counts(lists: list[list[Any]]) -> Counter[str]:
    return Counter(canonical(item) for items in lists for item in items if not is_missing(item))


def vocabulary(counts: Mapping[str, int], feature: SequenceFeature) -> list[str]:
    """The tokens seen at least ``min_frequency`` times, most frequent first, at most ``max_tokens``."""
    kept = sorted((t for t, n in counts.items() if n >= feature.min_frequency), key=lambda t: (-counts[t], t))
    return kept[: feature.max_tokens] if feature.max_tokens is not None else kept


def numeric_item(item: Any) -> bool:
    """A number (or a missing item); numbers written as text (``"1043"``, an identifier) are tokens."""
    return is_missing(item) or (isinstance(item, int | float) and not isinstance(item, bool))


def fit_datetime(column: pd.Series, frame: pd.DataFrame, feature: DatetimeFeature) -> dict[str, Any]:
    """What encodes ``column`` (the training split's): its ``parts``, the median time that fills a missing
    one (``fill``, seconds since 1970), and the mean and spread of the standardised parts.

    Raises:
        DataError: A value that is not a time, or no time at all.
    """
    present = present_seconds(column, frame, feature.name)
    require_some(bool(present.size), frame, feature.name, "datetime")
    spec: dict[str, Any] = {"parts": list(feature.parts), "fill": float(np.median(present))}
    for part, values in scaled_parts(present).items():
        spec[part] = {"mean": float(values.mean()), "std": float(values.std()) or 1.0}
    return spec


def present_seconds(column: pd.Series, frame: pd.DataFrame, name: str) -> np.ndarray:
    """The times as seconds since 1970, missing ones left out (a value that is not a time named by its row)."""
    seconds = np.array([epoch_seconds(v, row_place(frame, pos), name) for pos, v in enumerate(column)], dtype=float)
    return seconds[~np.isnan(seconds)]


def scaled_parts(seconds: np.ndarray) -> dict[str, np.ndarray]:
    """The parts a fit standardises (``elapsed`` days and ``year``) of times in seconds since 1970."""
    raw = calendar_parts(seconds, {"parts": ["elapsed", "year"], "elapsed": _UNIT, "year": _UNIT})
    return {"elapsed": raw[:, 0], "year": raw[:, 1]}


_UNIT = {"mean": 0.0, "std": 1.0}
