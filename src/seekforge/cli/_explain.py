"""``seekforge explain``: which inputs a package's predictions rest on."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from seekforge.cli._common import Delimiter, Encoding, Force, JsonFlag, err, out, print_json, read_frame
from seekforge.core.errors import SeekforgeError


def explain(
    package: Annotated[Path, typer.Argument(help="Model package folder.")],
    data: Annotated[
        str, typer.Argument(help="Data file (.csv, .parquet, .jsonl) or builtin:NAME; its first rows are explained.")
    ],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Folder for the report and attributions \\[default: the run's explain/]."),
    ] = None,
    rows: Annotated[int, typer.Option("--rows", min=1, help="Explain the first N rows.")] = 100,
    method: Annotated[
        str, typer.Option("--method", help="auto (SHAP for tables, IG for text and images), shap, ig, occlusion.")
    ] = "auto",
    background: Annotated[
        int,
        typer.Option(
            "--background", min=1, help="Tables: rows sampled from the data that stand for an unknown feature."
        ),
    ] = 100,
    steps: Annotated[int, typer.Option("--steps", min=2, help="Integrated gradients' steps.")] = 20,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the background sample, SHAP's permutations, the deletion test.")
    ] = 0,
    delimiter: Delimiter = None,
    encoding: Encoding = "utf-8",
    force: Force = False,
    as_json: JsonFlag = False,
) -> None:
    """Explain predictions: per-row attributions (CSV, JSON) and an HTML report, checked for completeness
    and faithfulness."""
    from seekforge.explain import explain as explain_rows
    from seekforge.explain import write_explanation

    folder = output or package.resolve().parent / "explain"
    if folder.exists() and not force:
        raise SeekforgeError(f"{folder} already exists", hint="pass --force to replace it, or choose --output")
    frame = read_frame(data, delimiter, encoding)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", UserWarning)
        found = explain_rows(package, frame, rows=rows, method=method, background=background, steps=steps, seed=seed)
    for warning in caught:
        err.print(f"note: {warning.message}", markup=False)
    write_explanation(found, folder, overwrite=force)
    summary = {"output": folder, "report": folder / "report.html", **found.to_dict()}
    if as_json:
        print_json({k: v for k, v in summary.items() if k != "attributions"})
        return
    check, faith = found.completeness, found.faithfulness
    verdict = "not applicable" if check["passed"] is None else ("passed" if check["passed"] else "FAILED")
    out.print(f"explained {len(found.rows)} rows of {escape(data)} with {found.method} in {found.seconds:.1f} s: "
              f"{escape(found.output)}")  # fmt: skip
    ratio = faith["area_ratio"]
    deletion = f"attributions {ratio:.2f}x random" if ratio is not None else "random removal moves nothing"
    out.print(f"completeness {verdict} (largest gap {check['max_error']:.2g}); deletion test: {deletion}")
    if found.features:
        table = Table("feature", "mean |attribution|", title="most important features")
        for name, value in found.importance()[:10]:
            table.add_row(escape(name), f"{value:.4g}")
        out.print(table)
    err.print(f"report: {folder / 'report.html'}", markup=False)
