"""``seekforge evaluate`` and ``predict``: a package on a data file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
    as_json: JsonFlag = False,
) -> None:
    """Score a package on labelled data."""
    from seekforge.core.io import write_json_atomic
    from seekforge.serve import full_install, load

    predictor = load(package)
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
