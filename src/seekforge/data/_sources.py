"""Data sources: files, image folders and built-in data sets, open to plugins (``seekforge.sources``)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pandas as pd

from seekforge.core.errors import DataError
from seekforge.core.memory import release_free_memory
from seekforge.core.progress import progress_task
from seekforge.core.registry import Registry
from seekforge.data.config import ReadConfig

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
#: rows parsed at a time from delimited text: the parser's buffers stay small, whatever the file's size
CHUNK_ROWS = 200_000
#: files at least this large show a progress bar while they are read
PROGRESS_BYTES = 32 * 2**20
_MISSING_HINT = (
    "check the path: relative paths start from the current folder, or, for a recipe's data.source and data.test, "
    "from the recipe's folder"
)


class DataSource:
    """Base of a data source. ``matches`` is asked for every ``data.source``; the first match loads it.

    ``load`` returns a DataFrame; it sets ``frame.attrs["source"]`` (shown in errors) and, for text
    formats, ``frame.attrs["first_line"]``: the file line of row 0, so an error can name a line.
    """

    name: ClassVar[str] = ""

    def matches(self, uri: str) -> bool:
        raise NotImplementedError

    def load(self, uri: str, read: ReadConfig) -> pd.DataFrame:
        raise NotImplementedError


SOURCES: Registry[type[DataSource] | DataSource] = Registry("data source", "seekforge.sources")


def _existing_file(uri: str) -> Path:
    path = Path(uri)
    if not path.exists():
        raise DataError(f"data file not found: {uri}", hint=_MISSING_HINT)
    if path.is_dir():
        raise DataError(f"{uri} is a folder, expected a file")
    if path.stat().st_size == 0:
        raise DataError(f"{uri} is empty (0 bytes)", hint="point the recipe at a file with a header and rows")
    return path


@SOURCES.register("builtin")
class BuiltinSource(DataSource):
    name = "builtin"

    def matches(self, uri: str) -> bool:
        return uri.startswith("builtin:")

    def load(self, uri: str, read: ReadConfig) -> pd.DataFrame:
        from seekforge.datasets import load_builtin

        return load_builtin(uri)


@SOURCES.register("csv")
class CsvSource(DataSource):
    """Comma, semicolon, tab or pipe separated text; the delimiter is sniffed unless given."""

    name = "csv"

    def matches(self, uri: str) -> bool:
        return uri.lower().endswith((".csv", ".tsv", ".txt", ".csv.gz"))

    def load(self, uri: str, read: ReadConfig) -> pd.DataFrame:
        path = _existing_file(uri)
        sep = read.delimiter or self._sniff(path, read.encoding)
        try:
            frame = read_delimited(path, sep, read.encoding)
        except UnicodeDecodeError as exc:
            raise DataError(
                f"{uri}: not valid {read.encoding} text at byte {exc.start}",
                hint="give the file's encoding (e.g. latin-1): data.read.encoding in a recipe, --encoding on the command line",
            ) from None
        except pd.errors.EmptyDataError:
            raise DataError(f"{uri} has no header and no rows", hint="add a header line") from None
        except pd.errors.ParserError as exc:
            raise DataError(
                f"{uri}: cannot parse as delimited text ({exc})",
                hint="give the file's separator: data.read.delimiter in a recipe, --delimiter on the command line",
            ) from None
        if frame.empty:
            raise DataError(f"{uri} has a header but no rows", hint="add data rows")
        frame.attrs.update(source=uri, first_line=2, delimiter=sep)
        return frame

    @staticmethod
    def _sniff(path: Path, encoding: str) -> str:
        try:
            with open(path, encoding=encoding, errors="replace") as fh:
                sample = fh.read(65536)
            return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
        except csv.Error:
            return "\t" if path.suffix.lower() == ".tsv" else ","


class _Counting(io.RawIOBase):
    """A binary file that reports how many bytes have been read from it."""

    def __init__(self, raw: io.BufferedReader, advance: Callable[[int], Any]) -> None:
        self._raw, self._advance = raw, advance

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int | None:
        n = self._raw.readinto(buffer)
        self._advance(n or 0)
        return n


def read_delimited(path: Path, sep: str, encoding: str) -> pd.DataFrame:
    """Delimited text, parsed CHUNK_ROWS rows at a time and joined column by column, so reading needs
    little more memory than the table itself; a progress bar (bytes, ETA) for large files.

    A column that parses as numbers in some chunks and not in others is text throughout, as a single
    pass over the whole file would make it.
    """
    size = path.stat().st_size
    parts: dict[int, list[pd.Series]] = {}
    with open(path, "rb") as raw, progress_task(f"reading {path.name}", size, show=size >= PROGRESS_BYTES) as advance:
        handle = io.BufferedReader(_Counting(raw, advance), 1 << 20)
        reader = pd.read_csv(handle, sep=sep, encoding=encoding, skipinitialspace=True, chunksize=CHUNK_ROWS)
        names: list[Any] = []
        for chunk in reader:
            names = list(chunk.columns)
            for position in range(len(names)):  # one copy per column frees the chunk's 2-D blocks
                parts.setdefault(position, []).append(chunk.iloc[:, position].copy())
            del chunk
    columns = {}
    for position, name in enumerate(names):
        pieces = parts.pop(position)
        if len({p.dtype for p in pieces}) > 1 and any(_is_text(p) for p in pieces):
            pieces = [p if _is_text(p) else p.astype("str") for p in pieces]
        columns[name] = pd.concat(pieces, ignore_index=True)
        del pieces
    frame = pd.DataFrame(columns, columns=names, copy=False)
    del columns
    release_free_memory()
    return frame


def _is_text(column: pd.Series) -> bool:
    return pd.api.types.is_string_dtype(column) or column.dtype == object


@SOURCES.register("parquet")
class ParquetSource(DataSource):
    name = "parquet"

    def matches(self, uri: str) -> bool:
        return uri.lower().endswith((".parquet", ".pq"))

    def load(self, uri: str, read: ReadConfig) -> pd.DataFrame:
        path = _existing_file(uri)
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # pyarrow raises several unrelated types for a bad file
            raise DataError(f"{uri}: not a readable Parquet file ({exc})") from None
        if frame.empty:
            raise DataError(f"{uri} has no rows")
        frame.attrs.update(source=uri)
        return frame


@SOURCES.register("jsonl")
class JsonLinesSource(DataSource):
    """One JSON object per line."""

    name = "jsonl"

    def matches(self, uri: str) -> bool:
        return uri.lower().endswith((".jsonl", ".ndjson"))

    def load(self, uri: str, read: ReadConfig) -> pd.DataFrame:
        path = _existing_file(uri)
        try:
            frame = pd.read_json(path, lines=True, encoding=read.encoding)
        except (ValueError, TypeError) as exc:  # TypeError: a line that is a list, not an object
            raise DataError(
                f"{uri}{_bad_json_line(path, read.encoding) or f': not valid JSON Lines ({exc})'}",
                hint="each line must be one JSON object",
            ) from None
        if frame.empty:
            raise DataError(f"{uri} has no rows")
        frame.attrs.update(source=uri, first_line=1)
        return frame


def _bad_json_line(path: Path, encoding: str) -> str | None:
    """`` line N: why`` for the first line of ``path`` that is not one JSON object (read again, line by
    line, once reading it whole has failed); None when every line is one."""
    with open(path, encoding=encoding, errors="replace") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except (ValueError, RecursionError) as exc:
                return f" line {number}: not valid JSON ({exc})"
            if not isinstance(value, dict):
                return f" line {number}: a JSON {type(value).__name__}, not an object"
    return None


@SOURCES.register("image_folder")
class ImageFolderSource(DataSource):
    """A folder of ``class_name/*.png`` images: columns ``image`` (the file path) and ``label``."""

    name = "image_folder"

    def matches(self, uri: str) -> bool:
        return Path(uri).is_dir()

    def load(self, uri: str, read: ReadConfig) -> pd.DataFrame:
        root = Path(uri)
        rows = [
            (str(file), class_dir.name)
            for class_dir in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
            for file in sorted(class_dir.iterdir())
            if file.suffix.lower() in IMAGE_SUFFIXES
        ]
        if not rows:
            raise DataError(
                f"{uri}: no images found",
                hint=f"lay the folder out as class_name/image.png ({', '.join(IMAGE_SUFFIXES)})",
            )
        frame = pd.DataFrame(rows, columns=["image", "label"])
        frame.attrs.update(source=uri)
        return frame


def read_source(uri: str, read: ReadConfig | None = None) -> pd.DataFrame:
    """Load ``uri`` with the first registered source that matches it.

    Raises:
        DataError: No source matches, or the source cannot read it.
    """
    read = read or ReadConfig()
    for name in SOURCES.names():
        entry = SOURCES.get(name)
        source = entry() if isinstance(entry, type) else entry
        if source.matches(uri):
            return source.load(uri, read)
    if not uri.startswith("builtin:") and not Path(uri).exists():
        raise DataError(f"data file not found: {uri}", hint=_MISSING_HINT)
    raise DataError(
        f"no data source can read '{uri}'",
        hint="use a .csv, .tsv, .parquet or .jsonl file, an image folder, or builtin:NAME",
    )
