"""Reading and writing record files with the standard library alone, for the runtime install (no pandas):
CSV and TSV, JSON Lines, a JSON array of objects, and Parquet where pyarrow is installed.

Values read from CSV stay strings, as pandas would read them before the table checks; an empty field is
missing. The graph's feeds accept numbers spelled as strings.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seekforge.core.errors import DataError

#: file suffixes these functions read and write
SUFFIXES = (".csv", ".tsv", ".jsonl", ".ndjson", ".json", ".parquet", ".pq")


def read_records(path: str | Path, *, delimiter: str | None = None, encoding: str = "utf-8") -> dict[str, list[Any]]:
    """Columns of a record file, by name.

    Raises:
        DataError: The file is missing, of an unknown kind, or a line or row cannot be read (the message
            names the file and line).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataError(f"{path}: cannot read '{suffix}' files", hint=f"use one of {', '.join(SUFFIXES)}")
    if not path.is_file():
        raise DataError(f"data file not found: {path}", hint="check the path")
    if suffix in (".parquet", ".pq"):
        from seekforge.core.deps import require

        parquet = require("pyarrow.parquet", purpose="Parquet files")
        return {str(k): v for k, v in parquet.read_table(path).to_pydict().items()}
    try:
        with path.open(encoding=encoding, newline="") as handle:
            if suffix in (".csv", ".tsv"):
                return _csv(path, handle, delimiter or ("\t" if suffix == ".tsv" else ","))
            return _json(path, handle, lines=suffix != ".json")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{path}: not {encoding} text ({exc.reason} at byte {exc.start})", hint="pass --encoding"
        ) from None


def _csv(path: Path, handle: Any, delimiter: str) -> dict[str, list[Any]]:
    reader = csv.reader(handle, delimiter=delimiter)
    header = next(reader, None)
    if not header:
        raise DataError(f"{path} is empty: it has no header row")
    columns: dict[str, list[Any]] = {name: [] for name in header}
    for row in reader:
        if not row:
            continue
        if len(row) != len(header):
            raise DataError(
                f"{path} line {reader.line_num}: {len(row)} fields where the header has {len(header)}",
                hint="fix the row, or pass --delimiter if the file uses another separator",
            )
        for name, value in zip(header, row, strict=True):
            columns[name].append(None if value == "" else value)
    return columns


def _json(path: Path, handle: Any, *, lines: bool) -> dict[str, list[Any]]:
    rows: list[Any] = []
    if lines:
        for number, line in enumerate(handle, start=1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataError(f"{path} line {number}: not JSON ({exc.msg})") from None
    else:
        try:
            rows = json.load(handle)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path} line {exc.lineno}: not JSON ({exc.msg})") from None
        if not isinstance(rows, list):
            raise DataError(f"{path} holds a JSON {type(rows).__name__}, not a list of records")
    bad = next((i for i, row in enumerate(rows) if not isinstance(row, Mapping)), None)
    if bad is not None:
        raise DataError(f"{path}: record {bad + 1} is not a JSON object", hint='each record is {"column": value, ...}')
    names = list(dict.fromkeys(k for row in rows for k in row))
    return {str(name): [row.get(name) for row in rows] for name in names}


def write_records(path: str | Path, columns: Mapping[str, Sequence[Any]], *, suffix: str | None = None) -> None:
    """Write ``columns`` to ``path`` in the format ``suffix`` (default: the path's own) names. Not atomic:
    write to a temporary path, then rename it.

    Raises:
        DataError: An unknown suffix.
    """
    path = Path(path)
    suffix = (suffix or path.suffix).lower()
    plain = {name: [_plain(v) for v in values] for name, values in columns.items()}
    names = list(plain)
    rows = [dict(zip(names, values, strict=True)) for values in zip(*plain.values(), strict=True)]
    if suffix in (".csv", ".tsv"):
        with path.open("w", encoding="utf-8", newline="") as handle:
            writer = csv.DictWriter(handle, names, delimiter="\t" if suffix == ".tsv" else ",")
            writer.writeheader()
            writer.writerows({k: "" if v is None else v for k, v in row.items()} for row in rows)
    elif suffix in (".jsonl", ".ndjson"):
        with path.open("w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(row) + "\n" for row in rows)
    elif suffix in (".parquet", ".pq"):
        from seekforge.core.deps import require

        pa = require("pyarrow", purpose="Parquet files")
        require("pyarrow.parquet", purpose="Parquet files").write_table(pa.table(plain), path)
    else:
        raise DataError(f"{path}: unknown format '{suffix}'", hint="use .csv, .tsv, .parquet or .jsonl")


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value
