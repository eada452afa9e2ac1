"""Inputs derived from an entity's earlier rows: lags, rolling windows, how many rows came before and how
long ago the last one was. The same numpy code serves training (each split from the rows it may see),
``predict`` and serving (from the rows given).

A derived input is a numeric input whose schema entry carries ``history``: the entity ``key`` column, the
``time`` column that orders rows (a time as the datetime input reads it: ISO 8601 text, a date, seconds
since 1970), and one of

- ``{"lag": k, "of": column}``: the column's value k rows back,
- ``{"window": w, "stat": mean|sum|min|max|std|count, "of": column}``: a statistic of the last w rows'
  values (missing values skipped; ``sum`` and ``count`` of no rows are 0, the others missing),
- ``{"count": true}``: how many earlier rows the entity has,
- ``{"gap": true}``: days since the entity's previous row.

"Earlier" is strictly earlier in time: rows of one entity at the same time do not see each other, so a
row never reads its own value or that of a row logged with it. A row without a key or a time has no
history (its derived values are missing, and imputed as any missing number).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from seekforge.core.errors import DataError
from seekforge.runtime._encode import _numbers, canonical, is_missing
from seekforge.runtime._inputs import epoch_seconds


def derived_inputs(schema: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The entries of an input schema that are derived from history."""
    return [f for f in schema if f.get("history")]


def columns_of(spec: Mapping[str, Any]) -> list[str]:
    """The columns one derived input (its schema entry's ``history``) is computed from: key, time, and the
    looked-back column where it has one."""
    return [c for c in (spec["key"], spec["time"], spec.get("of")) if c]


def history_sources(schema: Sequence[Mapping[str, Any]]) -> list[str]:
    """The columns the derived inputs of ``schema`` are computed from (keys, times, lagged columns), in
    first-use order, without the schema's own inputs."""
    names = {str(f["name"]) for f in schema}
    out: list[str] = []
    for entry in derived_inputs(schema):
        for column in columns_of(entry["history"]):
            if column not in names and column not in out:
                out.append(column)
    return out


def add_history(
    columns: Mapping[str, Sequence[Any]],
    schema: Sequence[Mapping[str, Any]],
    *,
    place: Callable[[int], str] = lambda pos: f"row {pos}",
) -> dict[str, Any]:
    """``columns`` with each derived input of ``schema`` that they lack computed from the rows given.

    A derived input the columns hold is taken as given (a missing value in it is imputed as any missing
    number); one they lack needs the key, time and looked-back columns.

    Raises:
        DataError: A derived input is absent and so is a column it is computed from; a time that does not
            parse, or a looked-back value that is not a number (naming the row).
    """
    out = dict(columns)
    lines: dict[tuple[str, str], Timeline] = {}  # the rows' order in time, one per key and time column
    for entry in derived_inputs(schema):
        name, spec = str(entry["name"]), entry["history"]
        if name in columns:
            continue
        needed = columns_of(spec)
        if absent := [c for c in needed if c not in columns]:
            raise DataError(
                f"input '{name}' is derived from each {spec['key']!r}'s earlier rows, and the records hold "
                f"neither it nor {', '.join(map(repr, absent))}",
                hint=f"give {name!r} itself, or {', '.join(map(repr, needed))} for the entity's earlier rows too",
            )
        pair = (spec["key"], spec["time"])
        if pair not in lines:
            lines[pair] = timeline(columns[spec["key"]], columns[spec["time"]], name=spec["time"], place=place)
        out[name] = history_values(
            columns[spec["key"]],
            columns[spec["time"]],
            columns[spec["of"]] if spec.get("of") else None,
            spec,
            what=(spec["time"], spec.get("of") or ""),
            place=place,
            line=lines[pair],
        )
    return out


@dataclass(frozen=True)
class Timeline:
    """The rows of a batch in entity and time order: ``order`` (positions of the rows with a key and a
    time, sorted), and for each of them its time, the position of the first row at its time and how many
    of its entity's rows are strictly earlier."""

    rows: int
    order: np.ndarray
    times: np.ndarray
    first: np.ndarray
    before: np.ndarray


def timeline(
    keys: Sequence[Any],
    times: Sequence[Any],
    *,
    name: str = "time",
    place: Callable[[int], str] = lambda pos: f"row {pos}",
) -> Timeline:
    """The order in time of rows by entity (ties in the order given), for every derived input over them.

    Raises:
        DataError: A time that does not parse, naming the row.
    """
    seconds = np.array([epoch_seconds(t, place(i), name) for i, t in enumerate(times)], dtype=np.float64)
    known = np.array([not is_missing(k) for k in keys], dtype=bool) & ~np.isnan(seconds)
    codes = np.unique([canonical(k) if ok else "" for k, ok in zip(keys, known, strict=True)], return_inverse=True)[1]
    order = np.lexsort((seconds, codes))
    order = order[known[order]]  # rows without a key or a time take no part
    key_sorted, time_sorted = codes[order], seconds[order]
    m = len(order)
    new_entity = np.r_[True, key_sorted[1:] != key_sorted[:-1]] if m else np.zeros(0, bool)
    new_time = new_entity | np.r_[True, time_sorted[1:] != time_sorted[:-1]] if m else np.zeros(0, bool)
    entity_start = np.maximum.accumulate(np.where(new_entity, np.arange(m), 0))
    first = np.maximum.accumulate(np.where(new_time, np.arange(m), 0))  # the first row at this row's time
    return Timeline(len(keys), order, time_sorted, first, first - entity_start)


def history_values(
    keys: Sequence[Any],
    times: Sequence[Any],
    of: Sequence[Any] | None,
    spec: Mapping[str, Any],
    *,
    what: tuple[str, str] = ("time", "value"),
    place: Callable[[int], str] = lambda pos: f"row {pos}",
    line: Timeline | None = None,
) -> np.ndarray:
    """One derived input (``spec``, as in the module's docstring) for every row, from the rows given;
    ``line``: their :func:`timeline`, when it is made already (several inputs derived over the same rows).

    Raises:
        DataError: A time that does not parse or a value of ``of`` that is not a number, naming the row.
    """
    line = line or timeline(keys, times, name=what[0], place=place)
    order, time_sorted, first, before = line.order, line.times, line.first, line.before
    result = np.full(len(order), np.nan)
    if spec.get("count"):
        result = before.astype(np.float64)
    elif spec.get("gap"):
        has = before > 0
        result[has] = (time_sorted[has] - time_sorted[first[has] - 1]) / 86400.0
    else:
        values = _numbers(what[1], of, place)[order]  # type: ignore[arg-type]
        values[~np.isfinite(values)] = np.nan  # an infinity would poison every window after it: read as missing
        if spec.get("lag"):
            k = int(spec["lag"])
            has = before >= k
            result[has] = values[first[has] - k]
        else:
            result = _window(values, first, before, int(spec["window"]), spec.get("stat") or "mean")
    out = np.full(line.rows, np.nan)
    out[order] = result
    return out


def _window(values: np.ndarray, first: np.ndarray, before: np.ndarray, width: int, stat: str) -> np.ndarray:
    """``stat`` of the values at positions ``[first - min(before, width), first)`` of each row."""
    start = first - np.minimum(before, width)
    present = ~np.isnan(values)
    counts = np.r_[0, np.cumsum(present)]
    count = (counts[first] - counts[start]).astype(np.float64)
    if stat == "count":
        return count
    zeroed = np.where(present, values, 0.0)
    sums = np.r_[0.0, np.cumsum(zeroed)]
    total = sums[first] - sums[start]
    if stat == "sum":
        return total
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, np.nan)
        if stat == "mean":
            return mean
        if stat == "std":  # population spread, about each window's own mean (no cancellation of large sums)
            spread = np.zeros(len(first))
            for offset in range(1, width + 1):
                at = first - offset
                inside = (offset <= before) & present[np.maximum(at, 0)]
                spread += np.where(inside, (values[np.maximum(at, 0)] - mean) ** 2, 0.0)
            return np.where(count > 0, np.sqrt(spread / np.maximum(count, 1)), np.nan)
    pick = np.fmin if stat == "min" else np.fmax
    best = np.full(len(first), np.nan)
    for offset in range(1, width + 1):
        at = np.maximum(first - offset, 0)
        best = pick(best, np.where(offset <= before, values[at], np.nan))
    return best
