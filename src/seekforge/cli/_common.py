"""What every command group shares: consoles, option types, reading data and options, printing metrics."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table

from seekforge.core.errors import SeekforgeError

if TYPE_CHECKING:
    import pandas as pd
    from pydantic import BaseModel


M = TypeVar("M", bound="BaseModel")


def backend_column() -> Column:
    """A table column for backend names, never cut short."""
    from seekforge.core.variants import BACKENDS

    return Column("backend", no_wrap=True, min_width=max(map(len, BACKENDS)))


class _Console(Console):
    """A console whose tables never cut a value short: on a terminal, a cell too wide for its column folds
    onto more lines rather than ending in "…"; piped or redirected, lines are as long as their content
    (no 80-column wrap), so ``| cat`` and ``| grep`` see whole rows, and a table's title and caption are
    lines of their own rather than wrapped to the table's width."""

    def print(self, *objects: Any, **kwargs: Any) -> None:
        for item in objects:
            if not isinstance(item, Table):
                super().print(item, **kwargs)
                continue
            for column in item.columns:
                if column.overflow == "ellipsis":
                    column.overflow = "fold"
            if self.is_terminal:
                super().print(item, **kwargs)
                continue
            title, caption = item.title, item.caption
            item.title = item.caption = None
            if title:
                super().print(title, **kwargs)
            super().print(item, **kwargs)
            if caption:
                super().print(caption, **kwargs)


def _console(*, stderr: bool = False) -> Console:
    stream = sys.stderr if stderr else sys.stdout
    return _Console(stderr=stderr, width=None if stream.isatty() else 10_000)


out = _console()
err = _console(stderr=True)

SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a recipe value: dotted.key=value (repeatable)."),
]

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print the result as JSON on stdout, nothing else there (messages: stderr).")
]
Force = Annotated[
    bool, typer.Option("--force", "--overwrite", help="Replace an output that already exists (--overwrite: alias).")
]
InputArg = Annotated[
    str | None,
    typer.Argument(help="A data file, a folder of them, an image folder, or builtin:NAME.", show_default=False),
]
InputOption = Annotated[str | None, typer.Option("--input", "-i", help="The same as INPUT, as an option.")]

RunsDir = Annotated[Path, typer.Option("--runs-dir", help="Parent folder of run folders.")]
RegistryWhere = Annotated[
    str | None,
    typer.Option(
        "--registry", help="A SQLite file or SQLAlchemy URL \\[default: $SEEKFORGE_REGISTRY or runs/registry.db]."
    ),
]
ApiKeyFile = Annotated[Path | None, typer.Option("--api-key-file", help="File of accepted API keys, one per line.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the latest unfinished run from its checkpoint.")]
RunDir = Annotated[Path | None, typer.Option("--run-dir", help="Use (or resume) this run folder.")]
Nproc = Annotated[int, typer.Option("--nproc", min=1, help="Processes for distributed data-parallel training.")]
Delimiter = Annotated[str | None, typer.Option("--delimiter", help="Field separator of a text file (sniffed).")]
Encoding = Annotated[str, typer.Option("--encoding", help="Text encoding of the data file.")]


def one_input(positional: str | None, option: str | None, *, example: str) -> str:
    """The input given as INPUT or as ``--input`` (either, once)."""
    from seekforge.core.errors import ConfigError

    if positional is not None and option is not None and positional != option:
        raise ConfigError(f"two inputs given: {positional!r} and --input {option!r}", hint="give one of them")
    value = positional if positional is not None else option
    if value is None:
        raise ConfigError("missing INPUT: the data to read", hint=f"for example: {example}")
    return value


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: results (``to_dict`` or dataclasses), paths, NumPy scalars and arrays;
    NaN and infinities become null, since strict JSON has no such numbers."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, str | int | bool):
        return value
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict"):
        return jsonable(value.to_dict())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if hasattr(value, "model_dump"):
        return jsonable(value.model_dump(mode="json"))
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if hasattr(value, "tolist"):  # NumPy scalars and arrays
        return jsonable(value.tolist())
    return str(value)


def print_json(value: Any) -> None:
    """Write ``value`` to stdout as one JSON document."""
    sys.stdout.write(json.dumps(jsonable(value), indent=2, allow_nan=False) + "\n")
    sys.stdout.flush()


def options(config: type[M], values: dict[str, object], names: dict[str, str] | None = None) -> M:
    """Validate command-line options with a config model; a bad one is named as its option (``names``
    maps a field to its option where they differ)."""
    from pydantic import ValidationError

    from seekforge.core.errors import ConfigError

    try:
        return config.model_validate(values)
    except ValidationError as exc:
        error = exc.errors()[0]
        message = error["msg"].removeprefix("Value error, ")
        loc = [str(part) for part in error["loc"]]
        if not loc:  # a rule across options: its message names them
            raise ConfigError(message) from None
        names = names or {}
        field = next((part for part in reversed(loc) if part in names), loc[0])
        option = names.get(field, "--" + field.replace("_", "-"))
        got = "" if isinstance(error["input"], dict) else f", got {error['input']!r}"  # a rule over a section
        raise ConfigError(f"{option}: {message}{got}") from None


def read_frame(data: str, delimiter: str | None, encoding: str) -> pd.DataFrame:
    from seekforge.data import read_source
    from seekforge.data.config import ReadConfig

    return read_source(data, options(ReadConfig, {"delimiter": delimiter, "encoding": encoding}))


def read_columns(data: str, delimiter: str | None, encoding: str) -> dict[str, list[object]]:
    """A data file's columns without pandas, for the runtime install."""
    from seekforge.core.deps import extra_command
    from seekforge.runtime import read_records

    if data.startswith("builtin:"):
        raise SeekforgeError(
            f"{data}: the built-in data sets need the full install, and this one has the runtime only",
            hint=f"give a .csv, .tsv, .jsonl or .parquet file, or run: {extra_command('all')}",
        )
    return read_records(data, delimiter=delimiter, encoding=encoding)


def check_output(path: Path) -> None:
    if path.suffix.lower() not in (".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson"):
        raise SeekforgeError(
            f"--output {path}: unknown format '{path.suffix.lower()}'", hint="use .csv, .tsv, .parquet or .jsonl"
        )


def writer(path: Path) -> Callable[[pd.DataFrame, Path], None]:
    check_output(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return lambda frame, tmp: frame.to_csv(tmp, index=False, sep="\t" if suffix == ".tsv" else ",")
    if suffix in (".parquet", ".pq"):
        return lambda frame, tmp: frame.to_parquet(tmp, index=False)
    return lambda frame, tmp: frame.to_json(tmp, orient="records", lines=True)


def print_metrics(metrics: dict[str, object], *, title: str) -> None:
    table = Table("metric", "value", title=escape(title))
    for key, value in metrics.items():
        if isinstance(value, float):
            table.add_row(key, f"{value:.4f}")
        elif isinstance(value, int):
            table.add_row(key, str(value))
    out.print(table)
    matrix = metrics.get("confusion_matrix")
    if isinstance(matrix, list) and len(matrix) <= 12:
        out.print("confusion matrix (rows: true, columns: predicted)")
        out.print("\n".join("  " + " ".join(f"{v:5d}" for v in row) for row in matrix))
