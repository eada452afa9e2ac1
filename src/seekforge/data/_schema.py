"""``schema.json``: what clean data looks like (types, ranges, categories, missing values allowed), and the
check of new data against it."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from seekforge.core.errors import DataError
from seekforge.data._values import numbers

SCHEMA_VERSION = 1
#: categories listed in the schema at most; a column with more is checked for type only
MAX_CATEGORIES = 1000


def build_schema(frame: pd.DataFrame, types: dict[str, str], *, label: str | None = None) -> dict[str, Any]:
    """The schema of a (cleaned) frame."""
    columns: dict[str, Any] = {}
    for name in frame.columns:
        kind = types.get(str(name), "category")
        column = frame[name]
        entry: dict[str, Any] = {"type": kind, "nullable": bool(column.isna().any())}
        present = column.dropna()
        if kind == "numeric" and len(present):
            values = pd.Series(numbers(present))
            entry.update(min=float(values.min()), max=float(values.max()))
            entry["integer"] = bool((values == values.round()).all())
        elif kind in ("category", "binary"):
            values = sorted({str(v) for v in present.unique()})
            if len(values) <= MAX_CATEGORIES:
                entry["values"] = values
        elif kind == "datetime" and len(present):
            parsed = pd.to_datetime(present, errors="coerce", format="mixed")
            entry.update(min=str(parsed.min()), max=str(parsed.max()))
        elif kind == "text" and len(present):
            entry["max_chars"] = int(present.astype(str).str.len().max())
        columns[str(name)] = entry
    return {"format_version": SCHEMA_VERSION, "label": label, "rows": len(frame), "columns": columns}


@dataclass(frozen=True)
class Violation:
    """One way new data breaks the schema: the column, what is wrong, how many rows, and an example."""

    column: str
    problem: str
    rows: int
    example: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def validate_frame(frame: pd.DataFrame, schema: dict[str, Any], *, tolerance: float = 0.0) -> list[Violation]:
    """Every way ``frame`` breaks ``schema``.

    Args:
        tolerance: Numbers may stray beyond the schema's range by this share of the range.

    Raises:
        DataError: ``schema`` is not a seekforge schema.
    """
    if schema.get("format_version") != SCHEMA_VERSION or "columns" not in schema:
        raise DataError(
            f"not a seekforge schema (format {schema.get('format_version')!r}, expected {SCHEMA_VERSION})",
            hint="use the schema.json that `seekforge data clean` wrote",
        )
    out: list[Violation] = []
    source = frame.attrs.get("source", "data")
    first_line = frame.attrs.get("first_line")

    def where(mask: np.ndarray) -> str:
        row = int(np.flatnonzero(mask)[0])
        return f"line {first_line + row}" if first_line is not None else f"row {row}"

    for name, rule in schema["columns"].items():
        if name not in frame.columns:
            if name != schema.get("label"):
                out.append(Violation(name, "column is missing", len(frame), f"{source} has no column '{name}'"))
            continue
        column = frame[name]
        missing = column.isna().to_numpy()
        if missing.any() and not rule.get("nullable", True):
            out.append(Violation(name, "missing values, none in the schema", int(missing.sum()), where(missing)))
        kind = rule["type"]
        if kind == "numeric":
            values = numbers(column)
            bad = np.isnan(values) & ~missing
            if bad.any():
                first = column.iloc[int(np.flatnonzero(bad)[0])]
                out.append(Violation(name, "values that are not numbers", int(bad.sum()), f"{where(bad)}: {first!r}"))
            if "min" in rule:
                slack = tolerance * (rule["max"] - rule["min"])
                outside = (values < rule["min"] - slack) | (values > rule["max"] + slack)
                if outside.any():
                    first = values[np.flatnonzero(outside)[0]]
                    out.append(
                        Violation(
                            name,
                            f"values outside [{rule['min']:g}, {rule['max']:g}]",
                            int(outside.sum()),
                            f"{where(outside)}: {first:g}",
                        )
                    )
        elif kind in ("category", "binary") and "values" in rule:
            known = set(rule["values"])
            unseen = ~missing & ~column.astype(str).isin(known).to_numpy()
            if unseen.any():
                first = column.iloc[int(np.flatnonzero(unseen)[0])]
                out.append(
                    Violation(name, "values never seen in clean data", int(unseen.sum()), f"{where(unseen)}: {first!r}")
                )
        elif kind == "datetime":
            parsed = pd.to_datetime(column, errors="coerce", format="mixed")
            bad = parsed.isna().to_numpy() & ~missing
            if bad.any():
                first = column.iloc[int(np.flatnonzero(bad)[0])]
                out.append(Violation(name, "values that are not dates", int(bad.sum()), f"{where(bad)}: {first!r}"))
    return out  # columns the schema does not name are not checked: new data may carry more
