"""Data engineering before training: profile, clean, validate and report on a data set.

Example:
    >>> from seekforge.data.quality import clean, profile, validate
    >>> summary = profile("raw.csv", label="target")            # dict, with summary["quality"]["score"]
    >>> result = clean("raw.csv", "cleaned/", "data_quality.yaml")
    >>> violations = validate("new.csv", "cleaned/schema.json")
    >>> balanced = balance("cleaned/", "balanced/", label="target", method="smote")
    >>> featured = features("cleaned/", "featured/", "data_quality.yaml")   # bins, STL parts
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from seekforge.core import report as html
from seekforge.core.errors import ConfigError, DataError
from seekforge.core.io import atomic_dir, write_text_atomic
from seekforge.core.memory import release_free_memory
from seekforge.core.progress import progress_task
from seekforge.data._clean import CLEAN_STEPS, clean_frame
from seekforge.data._correlation import correlation_sections
from seekforge.data._profile import infer_type, profile_frame, profile_steps
from seekforge.data._quality import column_notes, moved, quality_score
from seekforge.data._schema import Violation, build_schema, validate_frame
from seekforge.data._sources import IMAGE_SUFFIXES, read_source
from seekforge.data.config import ReadConfig
from seekforge.data.quality_config import DataQualityConfig

DATA_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".jsonl", ".ndjson")

__all__ = [
    "DataOutput",
    "DataQualityConfig",
    "Violation",
    "balance",
    "clean",
    "features",
    "load_quality_config",
    "profile",
    "read_input",
    "render_report",
    "validate",
]


@dataclass(frozen=True)
class DataOutput:
    """Where ``clean``, ``balance`` or ``features`` wrote its folder, its data file, and the report it
    wrote there (``report.json``, ``balance.json`` or ``features.json``)."""

    output: Path
    data: Path
    report: dict[str, Any]


def load_quality_config(source: str | Path | dict[str, Any] | DataQualityConfig | None) -> DataQualityConfig:
    """Read and validate ``data_quality.yaml`` (every problem at once, with its dotted path and line)."""
    from seekforge.core.config_file import load_config

    if source is None:
        return DataQualityConfig()
    if isinstance(source, DataQualityConfig):
        return source
    return load_config(source, DataQualityConfig, what="data quality configuration")


def read_input(path: str | Path, read: ReadConfig | None = None) -> pd.DataFrame:
    """A table from a file, a folder of same-shaped data files, an image folder, a ``clean`` output
    folder, or ``builtin:NAME``.

    Raises:
        DataError: Nothing readable there, or files whose columns differ.
    """
    text = str(path)
    if text.startswith("builtin:"):
        return read_source(text, read)
    folder = Path(path)
    if not folder.is_dir():
        return read_source(text, read)
    if (folder / "schema.json").is_file():
        found = [p for p in sorted(folder.iterdir()) if p.stem == "data" and p.suffix in DATA_SUFFIXES]
        if not found:
            raise DataError(f"{folder} holds schema.json but no data file", hint="clean the data again")
        return read_source(str(found[0]), read)
    files = [p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in DATA_SUFFIXES]
    if not files:
        if any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.rglob("*")):
            return read_source(text, read)
        raise DataError(f"{folder} holds no data files", hint=f"expected {', '.join(DATA_SUFFIXES)} files or images")
    frames = [read_source(str(p), read) for p in files]
    first = list(frames[0].columns)
    for p, frame in zip(files[1:], frames[1:], strict=True):
        if list(frame.columns) != first:
            raise DataError(
                f"{p} has columns {list(frame.columns)[:8]}, unlike {files[0].name} ({first[:8]})",
                hint="put only files of the same table in the folder",
            )
    if len(frames) == 1:
        return frames[0]
    out = pd.concat(frames, ignore_index=True)
    out.attrs["source"] = f"{folder} ({len(files)} files)"
    return out


def profile(path: str | Path, config: Any = None, *, label: str | None = None) -> dict[str, Any]:
    """Profile a data set; the result holds ``quality`` (score and components) and ``warnings``."""
    settings = load_quality_config(config)
    target = label or settings.label
    with progress_task(f"profiling {Path(path).name}", 1 + profile_steps(target)) as advance:
        step = _Steps(advance)
        step("reading")
        frame = read_input(path, settings.read)
        base = Path(path) if Path(path).is_dir() else Path(path).parent
        result = profile_frame(
            frame, label=target, types=settings.types, task=settings.task, seed=settings.seed, base=base, step=step
        )
    result["quality"] = quality_score(result)
    return result


class _Steps:
    """Turns "this step starts" calls into a progress bar that advances as each step ends."""

    def __init__(self, advance: Callable[..., None]) -> None:
        self._advance, self._started = advance, False

    def __call__(self, name: str) -> None:
        self._advance(1 if self._started else 0, status=name)
        self._started = True


def clean(input: str | Path, output: str | Path, config: Any = None, *, overwrite: bool = False) -> DataOutput:
    """Clean a data set into the folder ``output`` (written atomically): ``data.parquet`` (or the input's
    format), ``schema.json``, ``rejected.csv``, ``removed.csv``, ``report.json`` and ``report.html``.

    Raises:
        DataError: Unreadable input, or a label column that does not exist.
        ConfigError: ``output`` exists (unless ``overwrite``) or lies inside the input.
    """
    settings = load_quality_config(config)
    source, out = Path(input), Path(output)
    _check_output(source, out, overwrite)
    stages = 2 + 2 * profile_steps(settings.label) + CLEAN_STEPS
    with progress_task(f"cleaning {source.name}", stages) as advance:
        step = _Steps(advance)
        step("reading")
        frame = read_input(input, settings.read)
        options = {"label": settings.label, "task": settings.task, "seed": settings.seed, "step": step}
        before = profile_frame(frame, types=settings.types, **options)
        result = clean_frame(frame, settings, consume=True, step=step)  # the table as read is not needed again
        del frame
        release_free_memory()
        after = profile_frame(
            result.frame.drop(columns=[c for c in ("is_outlier", "label_issue") if c in result.frame.columns]),
            types={k: v for k, v in result.types.items() if k in result.frame.columns},
            **options,
        )
        step("writing")
        checked = len(result.frame) + len(result.removed)
        # what cleaning found scores the data as read; after it, only the rows it flagged and kept count
        actions = {"outliers": settings.clean.outliers.action, "label_issues": settings.clean.label_issues.action}
        kept = {k: v if actions[k] == "flag" else 0 for k, v in result.flags.items()}
        report = {
            "input": str(input),
            "config": settings.model_dump(mode="json"),
            "accounting": result.accounting,
            "steps": result.steps,
            "quality": {
                "before": quality_score(before, {"flags": result.flags, "checked_rows": checked}),
                "after": quality_score(after, {"flags": kept, "checked_rows": len(result.frame)}),
            },
            "profile": {"before": before, "after": after},
        }
        with atomic_dir(out, overwrite=overwrite) as tmp:
            data_path = tmp / f"data{_output_suffix(source)}"
            _write_table(result.frame, data_path)
            schema = build_schema(result.frame, result.types, label=settings.label)
            (tmp / "schema.json").write_text(json.dumps(schema, indent=2), encoding="utf-8")
            result.rejected.to_csv(tmp / "rejected.csv", index=False)
            result.removed.to_csv(tmp / "removed.csv", index=False)
            (tmp / "report.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
            (tmp / "report.html").write_text(render_report(report), encoding="utf-8")
    return DataOutput(out, out / data_path.name, report)


def balance(
    input: str | Path,
    output: str | Path,
    config: Any = None,
    *,
    label: str | None = None,
    method: str | None = None,
    ratio: float | None = None,
    overwrite: bool = False,
) -> DataOutput:
    """Balance the classes of ``label`` into the folder ``output`` (written atomically): the data (added
    rows after the input's rows), ``schema.json`` and ``balance.json`` (class counts before and after; for
    ``class_weights``, the weights to give training). ``label``, ``method`` and ``ratio`` override the
    config's ``label`` and ``balance`` section.

    Raises:
        DataError: Unreadable input, no label, or data the method cannot balance.
        ConfigError: ``output`` exists (unless ``overwrite``) or lies inside the input.
    """
    from seekforge.data._balance import balance_frame

    settings = load_quality_config(config)
    changes = {k: v for k, v in (("method", method), ("ratio", ratio)) if v is not None}
    try:
        steps = settings.balance.model_validate({**settings.balance.model_dump(), **changes})
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0])
        raise ConfigError(f"--{name} {changes.get(name, '')}: {error['msg']}".replace(" :", ":")) from None
    target = label or settings.label
    if target is None:
        raise ConfigError("no label column to balance", hint="pass --label, or set label: in the configuration")
    source, out = Path(input), Path(output)
    _check_output(source, out, overwrite)
    frame = read_input(input, settings.read)
    types = {**_schema_types(source), **settings.types}
    result = balance_frame(frame, target, steps, types=types, seed=settings.seed)
    report = {"input": str(input), "seed": settings.seed, **result.report}
    return _write_output(source, out, result.frame, types, target, "balance.json", report, overwrite=overwrite)


def features(
    input: str | Path,
    output: str | Path,
    config: Any = None,
    *,
    label: str | None = None,
    apply: str | Path | None = None,
    overwrite: bool = False,
) -> DataOutput:
    """Derive the columns of the config's ``features`` section into the folder ``output`` (written
    atomically): the data with its new columns, ``schema.json`` and ``features.json`` (the bin edges
    learned, and what each step made). With ``apply`` (a ``features.json`` written before), bins reuse its
    edges, so new data is binned like the data they were learned from.

    Raises:
        DataError: Unreadable input, or columns the steps cannot use.
        ConfigError: Nothing to derive, an unreadable ``apply`` file, or ``output`` exists (unless
            ``overwrite``) or lies inside the input.
    """
    from seekforge.data._features import engineer_frame

    settings = load_quality_config(config)
    steps = settings.features
    if not steps.bins and not steps.stl:
        raise ConfigError(
            "the configuration declares no features to derive",
            hint="add features.bins or features.stl to data_quality.yaml and pass it with --config",
        )
    fitted = None
    if apply is not None:
        path = Path(apply)
        try:
            fitted = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"--apply {path}: not a readable features.json ({exc})") from None
        if not isinstance(fitted, dict) or not isinstance(fitted.get("bins", []), list):
            raise ConfigError(f"--apply {path}: not a features.json written by `seekforge data features`")
    source, out = Path(input), Path(output)
    _check_output(source, out, overwrite)
    frame = read_input(input, settings.read)
    types = {**_schema_types(source), **settings.types}
    result = engineer_frame(
        frame, steps, label=label or settings.label, task=settings.task, seed=settings.seed, fitted=fitted
    )
    report = {"input": str(input), "seed": settings.seed, "applied": None if apply is None else str(apply),
              **result.fitted}  # fmt: skip
    types.update({entry["new_column"]: "category" for entry in result.fitted["bins"]})
    target = label or settings.label
    return _write_output(source, out, result.frame, types, target, "features.json", report, overwrite=overwrite)


def _write_output(
    source: Path,
    out: Path,
    frame: pd.DataFrame,
    types: dict[str, str],
    label: str | None,
    report_name: str,
    report: dict[str, Any],
    *,
    overwrite: bool,
) -> DataOutput:
    """The folder ``out``, written atomically: the data (in the input's format), its ``schema.json`` and
    the step's report."""
    with atomic_dir(out, overwrite=overwrite) as tmp:
        data_path = tmp / f"data{_output_suffix(source)}"
        _write_table(frame, data_path)
        kinds = {str(c): infer_type(frame[c], types.get(str(c))) for c in frame.columns}
        schema = build_schema(frame, kinds, label=label)
        (tmp / "schema.json").write_text(json.dumps(schema, indent=2), encoding="utf-8")
        (tmp / report_name).write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    return DataOutput(out, out / data_path.name, report)


def _check_output(source: Path, out: Path, overwrite: bool) -> None:
    if out.exists() and not overwrite:
        raise ConfigError(f"--output {out} already exists", hint="choose a new folder, or pass --force to replace it")
    if source.exists() and source.is_dir() and source.resolve() in out.resolve().parents:
        raise ConfigError(f"--output {out} lies inside the input folder", hint="write it elsewhere")


def _schema_types(source: Path) -> dict[str, str]:
    """Column types from the ``schema.json`` of a ``clean`` output folder (none for other inputs)."""
    path = source / "schema.json"
    if not source.is_dir() or not path.is_file():
        return {}
    try:
        columns = json.loads(path.read_text(encoding="utf-8"))["columns"]
        return {str(name): str(entry["type"]) for name, entry in columns.items()}
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError) as exc:
        raise DataError(f"{path} is not a schema written by `seekforge data clean` ({exc})") from None


def _output_suffix(source: Path) -> str:
    """Output in the input's format for CSV and JSON Lines files; Parquet otherwise."""
    if source.is_file() and source.suffix.lower() in (".csv", ".jsonl"):
        return source.suffix.lower()
    return ".parquet"


def _write_table(frame: pd.DataFrame, path: Path, rows: int = 25_000) -> None:
    """CSV, JSON Lines or Parquet, a block of ``rows`` rows at a time (one Parquet row group each), so
    writing never holds a second copy of a large table."""
    if path.suffix == ".csv":
        frame.to_csv(path, index=False, chunksize=rows)
        return
    if path.suffix == ".jsonl":
        with open(path, "w", encoding="utf-8") as fh:
            for start in range(0, len(frame), rows):
                text = frame.iloc[start : start + rows].to_json(orient="records", lines=True)
                fh.write(text if text.endswith("\n") else text + "\n")
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.Schema.from_pandas(frame, preserve_index=False)  # every row's values decide a column's type
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, max(len(frame), 1), rows):
            block = pa.Table.from_pandas(frame.iloc[start : start + rows], schema=schema, preserve_index=False)
            writer.write_table(block)


def validate(input: str | Path, schema: str | Path, *, read: ReadConfig | None = None) -> list[Violation]:
    """Every way the data at ``input`` breaks ``schema`` (a ``schema.json`` from ``clean``)."""
    path = Path(schema)
    if not path.is_file():
        raise DataError(f"schema file not found: {path}", hint="pass the schema.json that `seekforge data clean` wrote")
    try:
        rules = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path} is not valid JSON: {exc}") from None
    return validate_frame(read_input(input, read), rules)


def write_profile_report(summary: dict[str, Any], path: Path) -> None:
    """The profile as report.html (beside it, the caller may keep the JSON)."""
    write_text_atomic(path, render_report({"input": summary["source"], "profile": {"before": summary},
                                           "quality": {"before": summary["quality"]}}))  # fmt: skip


def render_report(report: dict[str, Any]) -> str:
    """report.html for a profile or a clean run: score and what moved it, warnings, columns, steps."""
    sections: list[tuple[str, str]] = []
    quality = report["quality"]
    rows = []
    after = quality.get("after")
    for component, later in moved(quality["before"], after):
        rows.append([component["name"], component["value"], "" if later is None else later, component["explanation"]])
    head = f"{quality['before']['score']:.1f}" + (f" → {after['score']:.1f} after cleaning" if after else "")
    sections.append(
        (
            f"Quality score: {head}",
            "<p class='muted'>Each component is a share from 0 to 1; the score is their weighted mean × 100.</p>"
            + html.table(
                [row if after else [row[0], row[1], row[3]] for row in rows],
                ["component", "as read", *(["after cleaning"] if after else []), "what it means"],
            ),
        )
    )
    if "accounting" in report:
        acc = report["accounting"]
        steps = [
            [s["step"], json.dumps({k: v for k, v in s.items() if k != "step"}, default=str)] for s in report["steps"]
        ]
        sections.append(
            (
                "What cleaning did",
                f"<p>{acc['rows_in']} rows in = {acc['rows_out']} out + {acc['rows_dropped']} dropped + "
                f"{acc['rows_rejected']} rejected (see removed.csv and rejected.csv for each row's reason).</p>"
                + html.table(steps, ["step", "details"]),
            )
        )
    before = report["profile"]["before"]
    warnings = before.get("warnings", [])
    sections.append(("Warnings", "<ul>" + "".join(f"<li>{html.esc(w)}</li>" for w in warnings) + "</ul>" if warnings
                     else "<p>None.</p>"))  # fmt: skip
    column_rows = []
    charts = []
    for name, col in before["columns"].items():
        alone = col.get("leakage", "")
        weight = col.get("importance", "")
        notes = "; ".join(column_notes(col))
        column_rows.append([name, col["type"], col["missing"], col["unique"], alone, weight, notes])
        if "histogram" in col:
            charts.append(html.histogram(col["histogram"]["edges"], col["histogram"]["counts"], title=name))
    header = ["column", "type", "missing", "unique", "alone predicts the label", "permutation importance", "notes"]
    sections.append(("Columns", html.table(column_rows, header)))
    if charts:
        sections.append(("Distributions", "<div class='charts'>" + "".join(charts[:40]) + "</div>"))
    sections += correlation_sections(before)
    label = before.get("label")
    if label and label.get("classes"):
        sections.append(("Label", html.table(list(label["classes"].items()), ["class", "rows"])))
    subtitle = f"{report['input']}: {before['rows']} rows, {len(before['columns'])} columns"
    return html.page("seekforge data report", subtitle, sections)
