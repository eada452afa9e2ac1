"""Typer app: every command is a thin call into a documented Python function."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table
from typer.exceptions import Abort, Exit, TyperException

from seekforge import __version__
from seekforge.cli._data import data_app
from seekforge.cli._env import env_command
from seekforge.core.errors import SeekforgeError

if TYPE_CHECKING:
    import pandas as pd
    from pydantic import BaseModel

    from seekforge.compress import CompressResult

M = TypeVar("M", bound="BaseModel")


def _backend_column() -> Column:
    """A table column for backend names, never cut short."""
    from seekforge.export.config import BACKENDS

    return Column("backend", no_wrap=True, min_width=max(map(len, BACKENDS)))


app = typer.Typer(
    name="seekforge",
    help="Raw data to a deployed, monitored model: data, training, search, compression, export, serving.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
datasets_app = typer.Typer(help="Built-in real data sets (shipped by installed packages, no downloads).")
app.add_typer(datasets_app, name="datasets")
app.add_typer(data_app, name="data")
app.command("env")(env_command)

out = Console()
err = Console(stderr=True)
_state = {"debug": bool(os.environ.get("SEEKFORGE_DEBUG"))}

TEMPLATES = ("tabular", "regression", "image", "text")
SetOption = Annotated[
    list[str] | None,
    typer.Option("--set", "-s", help="Override a recipe value: dotted.key=value (repeatable)."),
]


def _version(value: bool) -> None:
    if value:
        out.print(f"seekforge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    if debug:
        _state["debug"] = True


@app.command()
def init(
    template: Annotated[str, typer.Option("--template", "-t", help=f"One of: {', '.join(TEMPLATES)}.")] = "tabular",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Print a starter recipe that runs as it is on a built-in data set."""
    if template not in TEMPLATES:
        raise typer.BadParameter(f"unknown template '{template}'; choose one of: {', '.join(TEMPLATES)}")
    text = resources.files("seekforge").joinpath("templates", f"{template}.yaml").read_text(encoding="utf-8")
    if output is None:
        sys.stdout.write(text)
        return
    if output.exists():
        raise SeekforgeError(f"{output} already exists", hint="choose another --output or remove the file")
    from seekforge.core.io import write_text_atomic

    write_text_atomic(output, text)
    err.print(f"wrote {output}", markup=False)


@app.command()
def validate(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")],
    set_: SetOption = None,
    data: Annotated[bool, typer.Option("--data/--no-data", help="Also read the data and check the columns.")] = True,
) -> None:
    """Check a recipe (and its data) and report every problem at once."""
    from seekforge.recipe import load_recipe

    resolved = load_recipe(recipe, overrides=set_ or [])
    if data:
        from seekforge.data import check_table, read_source

        check_table(read_source(resolved.data.source, resolved.data.read), resolved.features)
        if resolved.data.test:
            check_table(read_source(resolved.data.test, resolved.data.read), resolved.features)
    out.print(
        f"[green]ok[/] {escape(str(recipe))}: '{resolved.name}', {resolved.task}, model {resolved.model.type}, "
        f"{len(resolved.features.inputs)} inputs"
    )


RunsDir = Annotated[Path, typer.Option("--runs-dir", help="Parent folder of run folders.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the latest unfinished run from its checkpoint.")]
RunDir = Annotated[Path | None, typer.Option("--run-dir", help="Use (or resume) this run folder.")]
Nproc = Annotated[int, typer.Option("--nproc", min=1, help="Processes for distributed data-parallel training.")]


def run_cmd(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")],
    set_: SetOption = None,
    runs_dir: RunsDir = Path("runs"),
    resume: Resume = False,
    run_dir: RunDir = None,
    nproc: Nproc = 1,
) -> None:
    from seekforge.pipeline import run

    result = run(recipe, overrides=set_ or [], runs_dir=runs_dir, resume=resume, run_dir=run_dir, nproc=nproc)
    _print_metrics(result.metrics, title=f"test metrics ({result.metrics.get('rows', '?')} rows)")
    out.print(f"package: {result.package}", markup=False)
    out.print(f"report:  {result.package / 'report.html'}", markup=False)
    if result.compression is not None:
        _print_variants(result.compression)
        out.print(f"compressed package ({result.compression.selected}): {result.compression.package}", markup=False)


app.command("run", help="Run the whole recipe: data -> train -> evaluate -> package -> report.")(run_cmd)
app.command(
    "train",
    help="Train the recipe's model and write its package (--nproc N trains with DDP under torchrun); "
    "the same as run until a recipe declares later stages.",
)(run_cmd)


@app.command()
def tune(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file with a tune section.")],
    set_: SetOption = None,
    trials: Annotated[int | None, typer.Option("--trials", min=1, help="Trials in all (tune.trials).")] = None,
    workers: Annotated[int | None, typer.Option("--workers", min=1, help="Worker processes on this host.")] = None,
    storage: Annotated[
        str | None, typer.Option("--storage", help="RDB URL shared by workers on several hosts (tune.storage).")
    ] = None,
    objectives: Annotated[
        str | None,
        typer.Option(
            "--objectives", help="accuracy,latency or accuracy,parameters (first: the metric): a Pareto front."
        ),
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the latest study of this recipe.")] = False,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Search hyperparameters and architectures (the recipe's tune section) with Optuna; package the best."""
    from seekforge.tune import run_study

    overrides = list(set_ or [])
    if objectives is not None:
        first, *extra = [o.strip() for o in objectives.split(",")]  # the first is the validation metric
        overrides.append(f"tune.objectives={[o for o in extra if o]}")
        if first and first != "metric":  # "metric": the recipe's own; "accuracy" means val_accuracy
            overrides.append(f"tune.metric={first if first.startswith(('val_', 'train_')) else 'val_' + first}")
        overrides.append("tune.pruner=none")
    result = run_study(
        recipe, overrides=overrides, runs_dir=runs_dir, trials=trials, workers=workers, storage=storage, resume=resume
    )
    best = result.best
    values = ", ".join(f"{k} {v:.4g}" for k, v in best["values"].items())
    out.print(f"best trial {best['number']}: {values}")
    for name, value in best["params"].items():
        out.print(f"  {escape(name)} = {escape(str(value))}")
    _print_metrics(best["test"], title=f"best trial's test metrics ({best['test'].get('rows', '?')} rows)")
    out.print(f"best recipe: {result.best_recipe}", markup=False)
    out.print(f"package:     {result.package}", markup=False)
    out.print(f"report:      {result.study_dir / 'report.html'}", markup=False)


Delimiter = Annotated[str | None, typer.Option("--delimiter", help="Field separator of a text file (sniffed).")]
Encoding = Annotated[str, typer.Option("--encoding", help="Text encoding of the data file.")]


def _options(config: type[M], values: dict[str, object], names: dict[str, str] | None = None) -> M:
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


def _read(data: str, delimiter: str | None, encoding: str) -> pd.DataFrame:
    from seekforge.data import read_source
    from seekforge.data.config import ReadConfig

    return read_source(data, _options(ReadConfig, {"delimiter": delimiter, "encoding": encoding}))


@app.command()
def evaluate(
    package: Annotated[Path, typer.Argument(help="Model package folder.")],
    data: Annotated[str, typer.Argument(help="Labelled data file (.csv, .parquet, .jsonl) or builtin:NAME.")],
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the metrics as JSON.")] = None,
    delimiter: Delimiter = None,
    encoding: Encoding = "utf-8",
) -> None:
    """Score a package on labelled data."""
    from seekforge.core.io import write_json_atomic
    from seekforge.serve import full_install, load

    predictor = load(package)
    if full_install():
        metrics = predictor.evaluate(_read(data, delimiter, encoding))
    else:  # the runtime install: no pandas
        metrics = predictor.evaluate(_read_records(data, delimiter, encoding))
    _print_metrics(metrics, title=f"{data} ({metrics['rows']} rows, {predictor.backend})")
    if output is not None:
        write_json_atomic(output, metrics)
        err.print(f"wrote {output}", markup=False)


@app.command()
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
) -> None:
    """Predict every row of a file; the output keeps the input columns and adds the predictions."""
    from seekforge.core.io import atomic_path
    from seekforge.serve import full_install, load

    if not full_install():  # the runtime install: no pandas
        from seekforge.runtime import write_records

        _check_output(output)
        runtime = load(package, backend=backend)
        columns = _read_records(data, delimiter, encoding)
        predicted = runtime.predict(columns)
        with atomic_path(output) as tmp:
            write_records(tmp, {**columns, **predicted}, suffix=output.suffix)
        rows = len(predicted["prediction"])
        err.print(f"wrote {rows} predictions to {output} ({runtime.backend})", markup=False)
        return
    import pandas as pd

    writer = _writer(output)
    predictor = load(package, backend=backend)
    frame = _read(data, delimiter, encoding)
    preds = predictor.predict(frame)
    keep = [c for c in frame.columns if frame[c].map(lambda v: not hasattr(v, "shape")).all()]
    result = pd.concat([frame[keep].reset_index(drop=True), preds], axis=1)
    with atomic_path(output) as tmp:
        writer(result, tmp)
    err.print(f"wrote {len(result)} predictions to {output} ({predictor.backend})", markup=False)


def _read_records(data: str, delimiter: str | None, encoding: str) -> dict[str, list[object]]:
    """A data file's columns without pandas, for the runtime install."""
    from seekforge.core.deps import extra_command
    from seekforge.runtime import read_records

    if data.startswith("builtin:"):
        raise SeekforgeError(
            f"{data}: the built-in data sets need the full install, and this one has the runtime only",
            hint=f"give a .csv, .tsv, .jsonl or .parquet file, or run: {extra_command('all')}",
        )
    return read_records(data, delimiter=delimiter, encoding=encoding)


def _check_output(path: Path) -> None:
    if path.suffix.lower() not in (".csv", ".tsv", ".parquet", ".pq", ".jsonl", ".ndjson"):
        raise SeekforgeError(
            f"--output {path}: unknown format '{path.suffix.lower()}'", hint="use .csv, .tsv, .parquet or .jsonl"
        )


def _writer(path: Path) -> Callable[[pd.DataFrame, Path], None]:
    _check_output(path)
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return lambda frame, tmp: frame.to_csv(tmp, index=False, sep="\t" if suffix == ".tsv" else ",")
    if suffix in (".parquet", ".pq"):
        return lambda frame, tmp: frame.to_parquet(tmp, index=False)
    return lambda frame, tmp: frame.to_json(tmp, orient="records", lines=True)


@app.command()
def export(
    package: Annotated[Path, typer.Argument(help="Model package folder.")],
    format_: Annotated[str, typer.Option("--format", help="onnx or openvino.")] = "onnx",
    precision: Annotated[str, typer.Option("--precision", help="fp32; fp16 (onnx); bf16 (openvino); int8.")] = "fp32",
    quantization: Annotated[
        str, typer.Option("--quantization", help="onnx int8: auto (static for CNNs), static or dynamic.")
    ] = "auto",
    optimize_graph: Annotated[
        bool, typer.Option("--optimize-graph", help="onnx fp32: save onnxruntime's graph optimisations.")
    ] = False,
    reduce_range: Annotated[
        str,
        typer.Option(
            "--reduce-range",
            help="int8: 7-bit weights, which CPUs without VNNI need: auto (where this one lacks VNNI), on, off.",
        ),
    ] = "auto",
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset version.")] = 18,
    force: Annotated[bool, typer.Option("--force", help="Write an export that fails the parity gate.")] = False,
) -> None:
    """Export the package's model; it is added to the package only if it passes the parity gate."""
    from seekforge.export import ExportConfig, check_format, export_package

    check_format(format_)
    values = {
        "format": format_,
        "precision": precision,
        "quantization": quantization,
        "optimize_graph": optimize_graph,
        "reduce_range": reduce_range,
        "opset": opset,
    }
    config = _options(ExportConfig, values)
    result = export_package(package, config, force=force)
    parity = result.parity
    table = Table("check", "value", title=escape(f"parity on {parity.rows} held-out rows"))
    table.add_row("max abs difference", f"{parity.max_abs_diff:.3g}")
    if parity.metric != "r2":
        table.add_row("predicted class agreement", f"{parity.agreement:.4f}")
    table.add_row(
        f"{parity.metric} torch / {result.record['backend']}",
        f"{parity.reference_metric:.4f} / {parity.candidate_metric:.4f}",
    )
    out.print(table)
    verdict = "passed" if parity.passed else "FAILED (written because of --force)"
    how = f", {result.record['quantization']} quantization" if "quantization" in result.record else ""
    how += ", 7-bit weights" if result.record.get("reduce_range") else ""
    how += ", raw feature values in" if result.record["inputs"] == "raw" else ""
    out.print(f"{result.path} ({result.bytes / 1e6:.2f} MB{how}): parity {verdict}", markup=False, soft_wrap=True)


@app.command()
def bench(
    package: Annotated[Path, typer.Argument(help="Model package folder.")],
    backend: Annotated[str, typer.Option("--backend", help="all, or a comma list: torch,onnxruntime,...")] = "all",
    batch: Annotated[str, typer.Option("--batch", help="Comma list of batch sizes.")] = "1,8,32",
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="Threads (default: all cores).")] = None,
    seconds: Annotated[float, typer.Option("--seconds", min=0.1, help="Timed seconds per measurement.")] = 2.0,
    rounds: Annotated[
        int, typer.Option("--rounds", min=1, help="Slices each measurement is taken in, in turn with the others.")
    ] = 4,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the rows as JSON.")] = None,
) -> None:
    """Latency (p50/p90/p99) and throughput of the model on each backend and batch size; without torch, of
    the package's raw-input ONNX exports."""
    from seekforge.core.errors import ConfigError
    from seekforge.core.hardware import hardware
    from seekforge.core.io import write_json_atomic
    from seekforge.serve import full_install

    try:
        batches = [int(b) for b in batch.split(",") if b.strip()]
    except ValueError:
        raise ConfigError(f"--batch must be a comma list of whole numbers, got {batch!r}") from None
    if not batches or min(batches) < 1:
        raise ConfigError(f"--batch must list batch sizes of at least 1, got {batch!r}")
    backends = None if backend == "all" else [b.strip() for b in backend.split(",")]
    if full_install():
        from seekforge.export import bench_package
    else:
        from seekforge.runtime import bench_runtime as bench_package
    rows = bench_package(package, backends=backends, batches=batches, threads=threads, seconds=seconds, rounds=rounds)
    hw = hardware()
    table = Table(
        _backend_column(), "batch", "threads", "runs", "p50 ms", "p90 ms", "p99 ms", "rows/s", caption=hw.summary()
    )
    for row in rows:
        table.add_row(
            row.backend, str(row.batch), str(row.threads), str(row.runs),
            f"{row.p50_ms:.3f}", f"{row.p90_ms:.3f}", f"{row.p99_ms:.3f}", f"{row.rows_per_s:,.0f}",
        )  # fmt: skip
    out.print(table)
    if output is not None:
        write_json_atomic(output, {"hardware": hw.to_dict(), "rows": [row.to_dict() for row in rows]})
        err.print(f"wrote {output}", markup=False)


@app.command()
def optimize(
    package: Annotated[Path, typer.Argument(help="Model package folder.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The optimized package to write.")],
    target: Annotated[str, typer.Option("--target", help="cpu (gpu and edge need their toolchains).")] = "cpu",
    max_accuracy_drop: Annotated[
        float, typer.Option("--max-accuracy-drop", min=0.0, help="Largest accepted drop of accuracy (or R2).")
    ] = 0.01,
    seconds: Annotated[float, typer.Option("--seconds", min=0.1, help="Timed seconds per measurement.")] = 1.0,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="Threads (default: all cores).")] = None,
) -> None:
    """Build the variants for a target, measure them here, and keep the fastest within the budget."""
    from seekforge.export import optimize_package

    result = optimize_package(
        package, output, target=target, max_accuracy_drop=max_accuracy_drop, seconds=seconds, threads=threads
    )
    table = Table(_backend_column(), "metric", "drop", "p50 ms b1", "p50 ms b32", "verdict", title="candidates")
    for c in result.candidates:
        table.add_row(
            c.backend,
            "" if c.metric is None else f"{c.metric:.4f}",
            "" if c.drop is None else f"{c.drop:+.4f}",
            "" if c.p50_ms_batch1 is None else f"{c.p50_ms_batch1:.3f}",
            "" if c.p50_ms_batch32 is None else f"{c.p50_ms_batch32:.3f}",
            escape(c.verdict),
        )
    out.print(table)
    out.print(f"selected {result.selected}; wrote {result.package}", markup=False)


_COMPRESS_OPTIONS = {
    "ratio": "--prune",
    "student": "--student",
    "temperature": "--temperature",
    "alpha": "--alpha",
    "epochs": "--epochs",
    "finetune_epochs": "--finetune-epochs",
    "importance": "--importance",
    "scope": "--scope",
    "steps": "--steps",
    "keep": "--keep",
    "method": "--quantize",
    "copies": "--augment",
}


@app.command()
def compress(
    package: Annotated[Path, typer.Argument(help="Model package folder (never modified).")],
    prune: Annotated[
        str | None, typer.Option("--prune", help="Share of channels/neurons to remove (0-1), or auto.")
    ] = None,
    importance: Annotated[str, typer.Option("--importance", help="magnitude, taylor or lamp.")] = "magnitude",
    scope: Annotated[str, typer.Option("--scope", help="layer: each layer the same share; global.")] = "layer",
    steps: Annotated[int, typer.Option("--steps", help="Iterative pruning: steps, fine-tuning after each.")] = 1,
    finetune_epochs: Annotated[int, typer.Option("--finetune-epochs", help="Fine-tuning epochs a step.")] = 5,
    keep: Annotated[list[str] | None, typer.Option("--keep", help="A layer never pruned (repeatable).")] = None,
    distill: Annotated[
        bool, typer.Option("--distill", help="Fine-tune from the unpruned model's outputs (distillation).")
    ] = False,
    student: Annotated[
        Path | None, typer.Option("--student", help="Distil into this model (a YAML file with a model: section).")
    ] = None,
    temperature: Annotated[float, typer.Option("--temperature", help="Distillation temperature.")] = 4.0,
    alpha: Annotated[float, typer.Option("--alpha", help="Weight of the teacher's soft targets (0-1).")] = 0.7,
    augment: Annotated[
        int | None,
        typer.Option("--augment", help="Distil on this many altered copies of each training text too (text models)."),
    ] = None,
    quantize: Annotated[
        str | None, typer.Option("--quantize", help="qat: quantization-aware training, int8 ONNX export.")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, help="Epochs of quantization-aware training or of a student.")
    ] = None,
    max_accuracy_drop: Annotated[
        float,
        typer.Option(
            "--max-accuracy-drop",
            help="Largest accepted drop of accuracy (or R2): test for verdicts, validation for auto.",
        ),
    ] = 0.01,
    lr: Annotated[float | None, typer.Option("--lr", help="Fine-tuning learning rate (default: the recipe's).")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The new package (default: in the work folder).")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the latest unfinished compression.")] = False,
    work_dir: Annotated[Path | None, typer.Option("--work-dir", help="Use (or resume) this work folder.")] = None,
    runs_dir: RunsDir = Path("runs"),
) -> None:
    """Prune, distil and quantize a package into a new, measured one whose lineage names its parent."""
    from seekforge.compress import CompressConfig, compress_package
    from seekforge.core.errors import ConfigError

    values: dict[str, object] = {"max_accuracy_drop": max_accuracy_drop, "lr": lr}
    if prune is not None:
        values["prune"] = {
            "ratio": prune, "importance": importance, "scope": scope, "steps": steps,
            "finetune_epochs": finetune_epochs, "keep": keep or [],
        }  # fmt: skip
    if distill or student is not None:
        values["distill"] = {"temperature": temperature, "alpha": alpha, "student": student}
        if student is not None and epochs is not None:
            values["distill"]["epochs"] = epochs  # type: ignore[index]
        if augment is not None:
            values["distill"]["augment"] = {"copies": augment}  # type: ignore[index]
    elif augment is not None:
        raise ConfigError("--augment feeds distillation: add --distill or --student")
    if quantize is not None:
        values["quantize"] = {"method": quantize, **({"epochs": epochs} if epochs is not None else {})}
    config = _options(CompressConfig, values, _COMPRESS_OPTIONS)
    result = compress_package(package, config, output=output, runs_dir=runs_dir, work_dir=work_dir, resume=resume)
    _print_variants(result)
    out.print(f"selected {result.selected}; package: {result.package}", markup=False)


def _print_variants(result: CompressResult) -> None:
    def ms(one: float | None, many: float | None) -> str:
        return "" if one is None or many is None else f"{one:.2f} / {many:.2f}"

    table = Table(
        "variant", "parameters", "MMACs", "ONNX MB", "torch ms b1 / b32", "ORT ms b1 / b32", result.metric, "drop",
        "verdict", title=f"compression (budget: a drop of {result.budget:g})",
    )  # fmt: skip
    for row in result.rows:
        table.add_row(
            escape(row.name), f"{row.parameters:,}", f"{row.macs / 1e6:.2f}",
            "" if row.onnx_bytes is None else f"{row.onnx_bytes / 1e6:.3f}",
            ms(row.torch_ms_batch1, row.torch_ms_batch32), ms(row.onnxruntime_ms_batch1, row.onnxruntime_ms_batch32),
            f"{row.metric:.4f}", f"{row.drop:+.4f}", escape(row.verdict),
        )  # fmt: skip
    out.print(table)


@app.command()
def serve(
    package: Annotated[Path, typer.Argument(help="Model package folder.")],
    http_port: Annotated[int, typer.Option("--http-port", min=0, max=65535, help="HTTP port (0: any free).")] = 8000,
    grpc_port: Annotated[int, typer.Option("--grpc-port", min=0, max=65535, help="gRPC port (0: any free).")] = 50051,
    no_http: Annotated[bool, typer.Option("--no-http", help="Serve gRPC only.")] = False,
    no_grpc: Annotated[bool, typer.Option("--no-grpc", help="Serve HTTP only.")] = False,
    host: Annotated[str, typer.Option("--host", help="Interface to bind; 0.0.0.0 in a container.")] = "127.0.0.1",
    backend: Annotated[str, typer.Option("--backend", help="auto, torch, onnxruntime, openvino, ...")] = "auto",
    max_batch_rows: Annotated[int, typer.Option("--max-batch-rows", min=1, help="Most rows in one batch.")] = 64,
    max_wait_ms: Annotated[
        float, typer.Option("--max-wait-ms", min=0, help="Longest a batch waits for more rows.")
    ] = 5.0,
    no_batching: Annotated[bool, typer.Option("--no-batching", help="Run each request alone.")] = False,
    inline_below_ms: Annotated[
        float,
        typer.Option("--inline-below-ms", min=0, help="Run batches faster than this on the event loop (0: never)."),
    ] = 0.5,
    max_queue_rows: Annotated[
        int, typer.Option("--max-queue-rows", min=1, help="Rows queued before requests get 503.")
    ] = 4096,
    max_request_rows: Annotated[int, typer.Option("--max-request-rows", min=1, help="Records per request.")] = 1024,
    max_request_mb: Annotated[float, typer.Option("--max-request-mb", min=0.001, help="Request body limit.")] = 8.0,
    timeout_ms: Annotated[
        float, typer.Option("--timeout-ms", min=1, help="Default request deadline (clients may ask for less).")
    ] = 10_000.0,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="Inference threads.")] = None,
    api_key_file: Annotated[
        Path | None, typer.Option("--api-key-file", help="File of accepted API keys, one per line.")
    ] = None,
    log: Annotated[
        Path | None, typer.Option("--log", help="Prediction log (SQLite); default: predictions.db by the package.")
    ] = None,
    no_log: Annotated[bool, typer.Option("--no-log", help="Keep no prediction log.")] = False,
    log_retention: Annotated[
        str | None, typer.Option("--log-retention", help="Delete logged rows older than this (e.g. 30d).")
    ] = None,
    ready_file: Annotated[
        Path | None, typer.Option("--ready-file", help="Write the bound ports here as JSON once serving.")
    ] = None,
    print_dockerfile: Annotated[
        bool, typer.Option("--print-dockerfile", help="Print a Dockerfile; serve nothing.")
    ] = False,
    print_k8s: Annotated[
        bool, typer.Option("--print-k8s", help="Print a Kubernetes manifest (Deployment, Service, HPA); serve nothing.")
    ] = False,
    image: Annotated[str | None, typer.Option("--image", help="Image name for --print-k8s.")] = None,
    source: Annotated[
        Path | None,
        typer.Option("--source", help="seekforge source tree the Dockerfile builds from (default: this install's)."),
    ] = None,
    wheel: Annotated[
        Path | None, typer.Option("--wheel", help="Install this seekforge wheel (make wheel) in the Dockerfile.")
    ] = None,
) -> None:
    """Serve the package over HTTP and gRPC in one process, with dynamic batching, metrics and a prediction log.

    SIGTERM drains: readiness turns false, queued requests are answered, the log is flushed.
    """
    import asyncio

    from seekforge.core.config import parse_duration
    from seekforge.core.errors import ConfigError
    from seekforge.core.package import read_manifest

    if print_dockerfile or print_k8s:
        from seekforge.serve._deploy import dockerfile, kubernetes

        manifest = read_manifest(package, verify=False)
        if print_dockerfile:
            text = dockerfile(package.resolve(), manifest, backend=backend, http_port=http_port,
                              grpc_port=grpc_port, source=source, wheel=wheel)  # fmt: skip
            out.print(text, markup=False, highlight=False, soft_wrap=True)
        if print_k8s:
            out.print(kubernetes(manifest, image=image, http_port=http_port, grpc_port=grpc_port),
                      markup=False, highlight=False, soft_wrap=True)  # fmt: skip
        return
    if no_http and no_grpc:
        raise ConfigError("--no-http and --no-grpc leave nothing to serve", hint="drop one of them")
    from seekforge.serve._server import Listening
    from seekforge.serve._server import serve as run_server
    from seekforge.serve._service import ModelService, ServeConfig

    keys: frozenset[str] = frozenset()
    if api_key_file is not None:
        try:
            keys = frozenset(
                line.strip() for line in api_key_file.read_text(encoding="utf-8").splitlines() if line.strip()
            )
        except OSError as exc:
            raise ConfigError(f"--api-key-file {api_key_file}: cannot read it ({exc.strerror})") from None
        if not keys:
            raise ConfigError(f"--api-key-file {api_key_file} holds no key", hint="write one key per line")
    config = ServeConfig(
        backend=backend,
        max_batch_rows=max_batch_rows,
        max_wait_ms=max_wait_ms,
        max_queue_rows=max_queue_rows,
        max_request_rows=max_request_rows,
        max_request_bytes=int(max_request_mb * 1024 * 1024),
        timeout_ms=timeout_ms,
        threads=threads,
        batching=not no_batching,
        inline_below_ms=inline_below_ms,
        api_keys=keys,
        log=None if no_log else (log or package.parent / "predictions.db"),
        log_retention_seconds=parse_duration(log_retention, what="--log-retention") if log_retention else None,
    )
    service = ModelService(package, config)

    def ready(where: Listening) -> None:
        parts = [f"http://{where.host}:{where.http_port}"] if where.http_port is not None else []
        parts += [f"grpc {where.host}:{where.grpc_port}"] if where.grpc_port is not None else []
        batching = f"batches of up to {max_batch_rows} rows, {max_wait_ms:g} ms" if not no_batching else "no batching"
        logged = f"log {config.log}" if config.log else "no log"
        err.print(f"serving {service.manifest['name']} ({service.backend}) on {' and '.join(parts)}; {batching}; "
                  f"{logged}; SIGTERM or Ctrl-C drains and stops", markup=False, soft_wrap=True)  # fmt: skip
        if ready_file is not None:
            from seekforge.core.io import write_json_atomic

            write_json_atomic(ready_file, {"host": where.host, "http_port": where.http_port,
                                           "grpc_port": where.grpc_port, "pid": os.getpid()})  # fmt: skip

    asyncio.run(
        run_server(
            service,
            host=host,
            http_port=None if no_http else http_port,
            grpc_port=None if no_grpc else grpc_port,
            on_ready=ready,
        )
    )
    err.print("stopped: every queued request was answered and the log flushed", markup=False)


@app.command()
def monitor(
    package: Annotated[Path, typer.Argument(help="The served model package.")],
    log: Annotated[Path, typer.Option("--log", help="Prediction log written by seekforge serve.")],
    window: Annotated[
        str | None, typer.Option("--window", help="Window length, e.g. 1h or 7d; default: the whole log.")
    ] = None,
    windows: Annotated[int, typer.Option("--windows", min=1, help="How many windows back to report.")] = 1,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="Labels: request_id[, position] and the output column.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML monitor section; default: the package recipe's.")
    ] = None,
    set_: SetOption = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Report folder; default: monitor-<stamp> by the log.")
    ] = None,
) -> None:
    """Drift of the logged inputs and predictions against the training data's sketch; live metrics once
    labels arrive. Exits 1 when the latest window drifts."""
    import yaml

    from seekforge.core.config import parse_duration
    from seekforge.core.config_file import load_config
    from seekforge.core.io import stamped_folder
    from seekforge.monitor import MonitorConfig, monitor_package

    if config is not None:
        monitor_config = load_config(config, MonitorConfig, what="monitor configuration", overrides=set_ or ())
    else:
        recipe_file = package / "recipe.yaml"
        section = (
            (yaml.safe_load(recipe_file.read_text(encoding="utf-8")) or {}).get("monitor")
            if recipe_file.is_file()
            else None
        )
        monitor_config = load_config(section or {}, MonitorConfig, what="monitor section", overrides=set_ or ())
    seconds = parse_duration(window, what="--window") if window else None
    folder = output or stamped_folder(log.parent, "monitor-")
    result = monitor_package(
        package, log, window_seconds=seconds, windows=windows, labels=labels, config=monitor_config, output=folder
    )
    current = result.current
    span = current.to_dict()
    table = Table("feature", "type", "test", "statistic", "threshold", "drift", title=escape(
        f"{result.version}: {current.drift.rows} rows from {span['start']} to {span['end']}"))  # fmt: skip
    for feature in current.drift.features:
        found = [(feature.name, feature.test, feature.statistic, feature.threshold, feature.drifted)]
        if (emb := feature.embedding) is not None:  # the feature's row says whether it drifted either way
            found.append((f"{feature.name} (embeddings)", emb.test, emb.statistic, emb.threshold, emb.drifted))
        for name, test, statistic, threshold, drifted in found:
            table.add_row(
                escape(name), feature.type, test, "" if statistic is None else f"{statistic:.4g}",
                f"{threshold:g}", "[bold red]yes[/]" if drifted else "no",
            )  # fmt: skip
    out.print(table)
    if len(result.windows) > 1:
        trend = ", ".join(f"{w.drift.drifted_count}/{len(w.drift.features)}" for w in result.windows)
        out.print(f"drifted features per window, oldest first: {trend}", markup=False)
    if current.live_metrics:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in current.live_metrics.items() if not k.startswith("rows"))
        test = ", ".join(f"{k} {v:.4f}" for k, v in result.test_metrics.items() if k in current.live_metrics)
        out.print(f"live metrics on {current.labelled} labelled rows: {shown} (test split: {test})", markup=False)
    state = result.state
    if state.killed_sessions or state.dropped_rows:
        err.print(f"the log lost {state.lost_rows} rows in {state.killed_sessions} killed sessions and dropped "
                  f"{state.dropped_rows} when its queue was full", markup=False)  # fmt: skip
    if not current.drift.enough_data:
        verdict = f"not enough data: {current.drift.rows} rows, fewer than min_rows {current.drift.min_rows}"
    else:
        verdict = (
            f"{'DRIFT' if result.drift else 'no drift'}: {current.drift.drifted_count} of "
            f"{len(current.drift.features)} features drifted (share {current.drift.drifted_share:.2f}, threshold {current.drift.drift_share:g})"
        )
    out.print(verdict, markup=False)
    err.print(f"wrote {folder}/monitor.html and monitor.json", markup=False)
    if result.drift:
        raise typer.Exit(1)


@datasets_app.command("list")
def datasets_list() -> None:
    """List the built-in data sets."""
    from seekforge.datasets import DATASETS

    table = Table("source", "task", "target", "description")
    table.columns[0].no_wrap = True
    for name in DATASETS.names():
        ds = DATASETS.get(name)
        splits = f"builtin:{name}" + (f"\nbuiltin:{name}/test" if "test" in ds.splits else "")
        table.add_row(splits, ds.task, ds.target, f"{ds.description} ({ds.origin})")
    out.print(table)


def _print_metrics(metrics: dict[str, object], *, title: str) -> None:
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


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors print one message and exit 2; ``--debug`` shows tracebacks."""
    args = sys.argv[1:] if argv is None else argv
    if "--debug" in args:
        _state["debug"] = True
    try:
        code = app(args=args, prog_name="seekforge", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)  # typer returns Ctrl-C's 130 instead of raising it
    except SeekforgeError as exc:
        if _state["debug"]:
            raise
        err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
        if exc.hint:
            err.print(f"  [bold]hint:[/] {escape(exc.hint)}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except Exit as exc:
        sys.exit(exc.exit_code)
    except Abort:
        err.print("aborted")
        sys.exit(130)
    except TyperException as exc:  # usage errors: unknown command or option, bad parameter
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(f"error: {exc}", markup=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except ModuleNotFoundError as exc:  # a light install (e.g. seekforge[runtime]) running a training command
        from seekforge.core.deps import install_command, is_optional

        if _state["debug"] or not is_optional(exc.name or ""):
            raise
        name = escape(str(exc.name))
        err.print(f"[bold red]error:[/] this command needs '{name}', which is not installed", highlight=False)
        err.print(f"  [bold]hint:[/] run: {escape(install_command(str(exc.name)))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    sys.exit(0)


if __name__ == "__main__":
    main()
