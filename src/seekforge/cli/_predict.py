"""``seekforge evaluate`` and ``predict``: a package on a data file."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from seekforge.core.errors import SeekforgeError

if TYPE_CHECKING:
    import pandas as pd

    from seekforge.fairness import GroupMetrics

from seekforge.cli._common import (
    Delimiter,
    Encoding,
    JsonFlag,
    check_output,
    err,
    print_json,
    print_metrics,
    read_columns,
    read_frame,
    writer,
)


def evaluate(
    package: Annotated[Path, typer.Argument(help="Model package folder.")],
    data: Annotated[str, typer.Argument(help="Labelled data file (.csv, .parquet, .jsonl) or builtin:NAME.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the metrics as JSON.")] = None,
    delimiter: Delimiter = None,
    encoding: Encoding = "utf-8",
    by: Annotated[
        str | None, typer.Option("--by", help="Also give the metrics per group of these columns (comma list).")
    ] = None,
    boot: Annotated[
        int, typer.Option("--boot", min=0, help="--by: bootstrap resamples for 95% intervals (0: none).")
    ] = 200,
    seed: Annotated[int, typer.Option("--seed", help="--by: seed of the bootstrap.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Score a package on labelled data (and, with --by, within each group of some columns)."""
    from seekforge.core.io import write_json_atomic
    from seekforge.serve import full_install, load

    predictor = load(package)
    if by is not None:
        if not full_install():
            from seekforge.core.deps import extra_command

            raise SeekforgeError(
                "--by needs the full install (pandas, fairlearn)", hint=f"run: {extra_command('explain')}"
            )
        groups = _by_groups(predictor, read_frame(data, delimiter, encoding), by, data=data, boot=boot, seed=seed)
        if as_json:
            print_json({"package": package, "data": data, "backend": predictor.backend, **groups.to_dict()})
        else:
            _print_groups(groups, title=f"{data} by {by} ({predictor.backend})")
        if output is not None:
            write_json_atomic(output, groups.to_dict())
            err.print(f"wrote {output}", markup=False)
        return
    if full_install():
        metrics = predictor.evaluate(read_frame(data, delimiter, encoding))
    else:  # the runtime install: no pandas
        metrics = predictor.evaluate(read_columns(data, delimiter, encoding))
    if as_json:
        print_json({"package": package, "data": data, "backend": predictor.backend, "metrics": metrics})
    else:
        print_metrics(metrics, title=f"{data} ({metrics['rows']} rows, {predictor.backend})")
    if output is not None:
        write_json_atomic(output, metrics)
        err.print(f"wrote {output}", markup=False)


def predict(
    package: Annotated[Path, typer.Argument(help="Model package folder.")],
    data: Annotated[str, typer.Argument(help="Data file (.csv, .parquet, .jsonl) or builtin:NAME.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Predictions file (.csv, .parquet, .jsonl).")],
    backend: Annotated[
        str,
        typer.Option(
            "--backend", help="auto, torch, or an export's backend: onnxruntime, openvino, onnxruntime-int8, ..."
        ),
    ] = "auto",
    delimiter: Delimiter = None,
    encoding: Encoding = "utf-8",
    as_json: JsonFlag = False,
) -> None:
    """Predict every row of a file; the output keeps the input columns and adds the predictions."""
    from seekforge.core.io import atomic_path
    from seekforge.serve import full_install, load

    if not full_install():  # the runtime install: no pandas
        from seekforge.runtime import write_records

        check_output(output)
        runtime = load(package, backend=backend)
        columns = read_columns(data, delimiter, encoding)
        predicted = runtime.predict(columns)
        with atomic_path(output) as tmp:
            write_records(tmp, {**columns, **predicted}, suffix=output.suffix)
        _done(output, len(predicted["prediction"]), runtime.backend, as_json=as_json)
        return
    import pandas as pd

    write = writer(output)
    predictor = load(package, backend=backend)
    frame = read_frame(data, delimiter, encoding)
    preds = predictor.predict(frame)
    keep = [c for c in frame.columns if frame[c].map(lambda v: not hasattr(v, "shape")).all()]
    result = pd.concat([frame[keep].reset_index(drop=True), preds], axis=1)
    with atomic_path(output) as tmp:
        write(result, tmp)
    _done(output, len(result), predictor.backend, as_json=as_json)


def _done(output: Path, rows: int, backend: str, *, as_json: bool) -> None:
    err.print(f"wrote {rows} predictions to {output} ({backend})", markup=False)
    if as_json:
        print_json({"output": output, "rows": rows, "backend": backend})


def _by_groups(predictor: Any, frame: pd.DataFrame, by: str, *, data: str, boot: int, seed: int) -> GroupMetrics:
    from seekforge.core.errors import DataError
    from seekforge.fairness import group_metrics

    columns = [c.strip() for c in by.split(",") if c.strip()]
    missing = [c for c in columns if c not in frame.columns]
    if not columns or missing:
        shown = ", ".join(map(str, frame.columns[:20])) + (", ..." if len(frame.columns) > 20 else "")
        raise DataError(f"--by {by}: {data} has no column {', '.join(repr(c) for c in missing) or '(none given)'}",
                        hint=f"its columns: {shown}")  # fmt: skip
    truth, predicted = predictor.outcomes(frame)  # every row: a bad one is an error, never dropped
    return group_metrics(frame[columns], truth, predicted, task=predictor.task, classes=predictor.classes,
                         n_boot=boot, seed=seed)  # fmt: skip


def _print_groups(found: GroupMetrics, *, title: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    from seekforge.cli._common import out

    table = Table(*found.by, "rows", *found.metrics, "note", title=escape(title))
    for entry in found.groups:
        cells = []
        for metric in found.metrics:
            value, interval = entry["values"][metric], (entry["interval"] or {}).get(metric)
            cells.append(f"{value:.3f}" + (f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""))
        table.add_row(
            *(escape(str(entry["group"][c])) for c in found.by), str(entry["rows"]), *cells, escape(entry["note"])
        )
    table.add_row(*(["all"] + [""] * (len(found.by) - 1)), str(sum(e["rows"] for e in found.groups)),
                  *(f"{found.overall[m]:.3f}" for m in found.metrics), "")  # fmt: skip
    out.print(table)
    level = f"{found.confidence:.0%} bootstrap interval over {found.n_boot} resamples" if found.n_boot else ""
    for metric in found.metrics:
        interval = (found.difference_interval or {}).get(metric)
        spread = f" [{interval[0]:.3f}, {interval[1]:.3f}]" if interval else ""
        out.print(f"{metric}: largest difference between groups {found.difference[metric]:.3f}{spread}, "
                  f"smallest ratio {found.ratio[metric]:.3f}", markup=False)  # fmt: skip
    if level:
        out.print(f"(intervals: {level})", markup=False)
