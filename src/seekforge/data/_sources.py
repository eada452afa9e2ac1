"""Data sources: files, image folders and built-in data sets, open to plugins (``seekforge.sources``)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import ClassVar

import pandas as pd

from seekforge.core.errors import DataError
from seekforge.core.registry import Registry
from seekforge.data.config import ReadConfig

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")


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
        raise DataError(f"data file not found: {uri}", hint="check data.source / data.test in the recipe")
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
            frame = pd.read_csv(path, sep=sep, encoding=read.encoding, skipinitialspace=True)
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
        except ValueError as exc:
            raise DataError(f"{uri}: not valid JSON Lines ({exc})", hint="each line must be one JSON object") from None
        if frame.empty:
            raise DataError(f"{uri} has no rows")
        frame.attrs.update(source=uri, first_line=1)
        return frame


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
        raise DataError(f"data file not found: {uri}", hint="check data.source / data.test in the recipe")
    raise DataError(
        f"no data source can read '{uri}'",
        hint="use a .csv, .tsv, .parquet or .jsonl file, an image folder, or builtin:NAME",
    )
