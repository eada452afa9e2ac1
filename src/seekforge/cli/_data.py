"""``seekforge data``: profile, clean, balance, derive features, validate and report on a data set."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from seekforge.cli._common import Force, InputArg, InputOption, JsonFlag, err, one_input, out, print_json

data_app = typer.Typer(help="Profile, clean, balance, derive features, validate and report on a data set.")


@data_app.callback()
def _settings() -> None:
    from seekforge.core.memory import lean_memory

    lean_memory()  # these commands hold one large table: freed columns go back to the system at once


ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="data_quality.yaml.")]
Output = Annotated[Path, typer.Option("--output", "-o", help="The folder to write (must not exist, or --force).")]


def _print_summary(profile: dict[str, Any], quality: dict[str, Any], after: dict[str, Any] | None = None) -> None:
    from seekforge.data.quality import column_notes, moved

    score = f"{quality['score']:.1f}" + (f" -> {after['score']:.1f}" if after else "")
    out.print(f"[bold]quality score {score}[/] / 100  ({escape(str(profile['source']))}: {profile['rows']} rows, "
              f"{len(profile['columns'])} columns)")  # fmt: skip
    table = Table("component", "value", *(["after"] if after else []), "what it means")
    for c, later in moved(quality, after):
        extra = [f"{later:.3f}" if later is not None else ""] if after else []
        table.add_row(c["name"], f"{c['value']:.3f}", *extra, escape(c["explanation"]))
    out.print(table)
    columns = Table("column", "type", "missing", "unique", "importance", "notes", title="columns")
    for name, col in profile["columns"].items():
        notes = column_notes(col)
        weight = f"{col['importance']:.3f}" if col.get("importance") is not None else ""
        columns.add_row(
            escape(name), col["type"], str(col["missing"]), str(col["unique"]), weight, escape("; ".join(notes))
        )
    out.print(columns)
    for warning in profile.get("warnings", []):
        out.print(f"[yellow]warning:[/] {escape(warning)}")


@data_app.command("profile")
def profile_command(
    input_arg: InputArg = None,
    input_opt: InputOption = None,
    label: Annotated[str | None, typer.Option("--label", help="The label column.")] = None,
    config: ConfigOption = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output", "-o", help="The HTML report; the profile's JSON goes beside it (default: runs/profiles/NAME/)."
        ),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Types, missing values, distributions, duplicates, ID-like and leaking columns, class balance."""
    from seekforge.core.io import write_json_atomic
    from seekforge.data.quality import profile, write_profile_report

    input = one_input(input_arg, input_opt, example="seekforge data profile raw.csv --label y")
    if output is None:
        name = input.removeprefix("builtin:").strip("/").replace("/", "-")
        output = Path("runs", "profiles", Path(name).stem or "data", "report.html")
    if output.suffix.lower() != ".html":
        from seekforge.core.errors import ConfigError

        raise ConfigError(f"--output {output}: the report is HTML (its JSON goes beside it)",
                          hint=f"use --output {output.with_suffix('.html')}")  # fmt: skip
    summary = profile(input, config, label=label)
    write_profile_report(summary, output)
    write_json_atomic(output.with_suffix(".json"), summary)
    if as_json:
        print_json(summary)
    else:
        _print_summary(summary, summary["quality"])
    err.print(f"report: {output} (JSON: {output.with_suffix('.json')})", markup=False)


@data_app.command("clean")
def clean_command(
    output: Output,
    input_arg: InputArg = None,
    input_opt: InputOption = None,
    config: ConfigOption = None,
    force: Force = False,
    as_json: JsonFlag = False,
) -> None:
    """Deduplicate, coerce types, handle missing values, outliers and label issues, drop useless columns."""
    from seekforge.data.quality import clean

    input = one_input(input_arg, input_opt, example="seekforge data clean raw.csv -o cleaned/")
    result = clean(input, output, config, overwrite=force)
    err.print(f"cleaned data: {result.data}\nreport: {result.output / 'report.html'}", markup=False)
    if as_json:
        print_json(result)
        return
    report = result.report
    _print_summary(report["profile"]["before"], report["quality"]["before"], report["quality"]["after"])
    acc = report["accounting"]
    out.print(
        f"{acc['rows_in']} rows in = {acc['rows_out']} out + {acc['rows_dropped']} dropped + "
        f"{acc['rows_rejected']} rejected (reasons in removed.csv and rejected.csv)"
    )


@data_app.command("balance")
def balance_command(
    output: Output,
    input_arg: InputArg = None,
    input_opt: InputOption = None,
    label: Annotated[str | None, typer.Option("--label", help="The class column.")] = None,
    method: Annotated[
        str | None,
        typer.Option(
            "--method", "-m", help="random_over, random_under, smote (SMOTENC with categories) or class_weights."
        ),
    ] = None,
    ratio: Annotated[
        float | None, typer.Option("--ratio", help="Smallest class size / largest after balancing (default 1).")
    ] = None,
    config: ConfigOption = None,
    force: Force = False,
    as_json: JsonFlag = False,
) -> None:
    """Even out the classes: random over/under sampling, SMOTE/SMOTENC, or class weights for training."""
    from seekforge.data.quality import balance

    input = one_input(input_arg, input_opt, example="seekforge data balance cleaned/ -o balanced/ --label y")
    result = balance(input, output, config, label=label, method=method, ratio=ratio, overwrite=force)
    err.print(f"balanced data: {result.data}\nreport: {result.output / 'balance.json'}", markup=False)
    if as_json:
        print_json(result)
        return
    report = result.report
    table = Table(
        "class", "rows before", "rows after", title=f"{report['label']}: {report.get('sampler', report['method'])}"
    )
    for name, before in report["classes_before"].items():
        table.add_row(escape(name), str(before), str(report["classes_after"][name]))
    out.print(table)
    out.print(f"{report['rows_in']} rows in, {report['rows_out']} out")
    if "class_weights" in report:
        weights = ", ".join(f"{json.dumps(k)}: {v:.4g}" for k, v in report["class_weights"].items())
        out.print("rows left as they are; to weight the training loss, put in the recipe:", markup=False)
        out.print(f"  train:\n    class_weights: {{{weights}}}", markup=False)


@data_app.command("features")
def features_command(
    output: Output,
    config: Annotated[Path, typer.Option("--config", "-c", help="data_quality.yaml with a features section.")],
    input_arg: InputArg = None,
    input_opt: InputOption = None,
    label: Annotated[str | None, typer.Option("--label", help="The label (tree binning learns from it).")] = None,
    apply: Annotated[
        Path | None, typer.Option("--apply", help="A features.json written before: reuse its bin edges.")
    ] = None,
    force: Force = False,
    as_json: JsonFlag = False,
) -> None:
    """Derive columns: quantile, k-means or tree bins of numbers; STL trend/seasonal/residual of a series."""
    from seekforge.data.quality import features

    input = one_input(input_arg, input_opt, example="seekforge data features cleaned/ -o featured/ -c dq.yaml")
    result = features(input, output, config, label=label, apply=apply, overwrite=force)
    err.print(f"data: {result.data}\nfitted: {result.output / 'features.json'}", markup=False)
    if as_json:
        print_json(result)
        return
    report = result.report
    table = Table("new column", "from", "how", "details", title="derived columns")
    for entry in report["bins"]:
        edges = ", ".join(f"{e:.4g}" for e in entry["edges"])
        table.add_row(escape(entry["new_column"]), escape(entry["column"]), f"{entry['method']} bins",
                      f"{entry['bins']} bins; edges {edges}; rows {entry['rows_per_bin']}")  # fmt: skip
    for entry in report["stl"]:
        table.add_row(escape(", ".join(entry["new_columns"])), escape(entry["column"]), f"STL, period {entry['period']}",
                      f"{entry['series']} series; trend strength {entry['trend_strength']:.2f}, "
                      f"seasonal strength {entry['seasonal_strength']:.2f}")  # fmt: skip
    out.print(table)


@data_app.command("validate")
def validate_command(
    schema: Annotated[Path, typer.Option("--schema", help="schema.json written by `seekforge data clean`.")],
    input_arg: InputArg = None,
    input_opt: InputOption = None,
    as_json: JsonFlag = False,
) -> None:
    """Check new data against a schema; exit code 1 when it breaks it."""
    from seekforge.data.quality import validate

    input = one_input(input_arg, input_opt, example="seekforge data validate new.csv --schema cleaned/schema.json")
    violations = validate(input, schema)
    if as_json:
        print_json({"input": input, "schema": schema, "ok": not violations, "violations": violations})
        if violations:
            raise typer.Exit(1)
        return
    if not violations:
        out.print(f"{escape(input)} matches {escape(str(schema))}")
        return
    table = Table("column", "problem", "rows", "first", title=f"{len(violations)} violations")
    for v in violations:
        table.add_row(escape(v.column), escape(v.problem), str(v.rows), escape(v.example))
    out.print(table)
    raise typer.Exit(1)


@data_app.command("report")
def report_command(
    input_arg: InputArg = None,
    input_opt: InputOption = None,
    config: ConfigOption = None,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the HTML report here.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """The quality score and what moved it: from a `clean` output folder, or by profiling the data."""
    from seekforge.core.io import write_text_atomic
    from seekforge.data.quality import profile, render_report

    input = one_input(input_arg, input_opt, example="seekforge data report cleaned/")
    folder = Path(input)
    if (folder / "report.json").is_file():
        report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
        if not as_json:
            _print_summary(report["profile"]["before"], report["quality"]["before"], report["quality"]["after"])
            acc = report["accounting"]
            out.print(f"{acc['rows_in']} rows in = {acc['rows_out']} out + {acc['rows_dropped']} dropped + "
                      f"{acc['rows_rejected']} rejected", markup=False)  # fmt: skip
    else:
        summary = profile(input, config)
        if not as_json:
            _print_summary(summary, summary["quality"])
        report = {"input": input, "profile": {"before": summary}, "quality": {"before": summary["quality"]}}
    if as_json:
        print_json(report)
    if output is not None:
        write_text_atomic(output, render_report(report))
