"""``seekforge init``, ``validate``, ``run`` / ``train`` and ``tune``: from a recipe to a package."""

from __future__ import annotations

import sys
from importlib import resources
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from seekforge.cli._common import (
    Force,
    JsonFlag,
    Nproc,
    RegistryWhere,
    Resume,
    RunDir,
    RunsDir,
    SetOption,
    err,
    out,
    print_json,
    print_metrics,
)
from seekforge.cli._compress import print_variants
from seekforge.core.errors import SeekforgeError

TEMPLATES = ("tabular", "regression", "image", "text")


def init(
    template: Annotated[str, typer.Option("--template", "-t", help=f"One of: {', '.join(TEMPLATES)}.")] = "tabular",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
    from_: Annotated[
        str | None, typer.Option("--from", help="Draft the recipe from this data file: its columns, typed.")
    ] = None,
    label: Annotated[str | None, typer.Option("--label", help="With --from: the column to predict.")] = None,
    task: Annotated[
        str | None, typer.Option("--task", help="With --from: classification or regression (default: inferred).")
    ] = None,
    force: Force = False,
) -> None:
    """Print a starter recipe: one that runs as it is on a built-in data set, or (--from) one drafted from
    your data, each column typed from its values."""
    if output is not None and output.is_dir():
        raise SeekforgeError(f"--output {output} is a folder", hint="give the recipe file's path, e.g. recipe.yaml")
    if output is not None and output.exists() and not force:
        raise SeekforgeError(f"{output} already exists", hint="choose another --output, or pass --force to replace it")
    if from_ is not None:
        if label is None:
            raise SeekforgeError("--from needs --label: the column to predict")
        from seekforge.recipe import draft_recipe

        text = draft_recipe(from_, label, task=task, written_to=output)
    elif template not in TEMPLATES:
        raise typer.BadParameter(f"unknown template '{template}'; choose one of: {', '.join(TEMPLATES)}")
    else:
        text = resources.files("seekforge").joinpath("templates", f"{template}.yaml").read_text(encoding="utf-8")
    if output is None:
        sys.stdout.write(text)
        return
    from seekforge.core.io import write_text_atomic

    write_text_atomic(output, text)
    err.print(f"wrote {output}", markup=False)


def validate(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")],
    set_: SetOption = None,
    data: Annotated[bool, typer.Option("--data/--no-data", help="Also read the data and check the columns.")] = True,
    as_json: JsonFlag = False,
) -> None:
    """Check a recipe (and its data) and report every problem at once."""
    from seekforge.recipe import load_recipe

    resolved = load_recipe(recipe, overrides=set_ or [])
    if data:
        from seekforge.data import check_table, derive_history, read_source

        for source in filter(None, (resolved.data.source, resolved.data.test)):
            check_table(derive_history(read_source(source, resolved.data.read), resolved.features), resolved.features)
    if as_json:
        print_json({"recipe": recipe, "ok": True, "name": resolved.name, "task": resolved.task,
                    "model": resolved.model.type, "inputs": [f.name for f in resolved.features.inputs],
                    "output": resolved.features.output.name, "data_checked": data})  # fmt: skip
        return
    out.print(
        f"[green]ok[/] {escape(str(recipe))}: '{resolved.name}', {resolved.task}, model {resolved.model.type}, "
        f"{len(resolved.features.inputs)} inputs"
    )


def run_cmd(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file.")],
    set_: SetOption = None,
    runs_dir: RunsDir = Path("runs"),
    resume: Resume = False,
    run_dir: RunDir = None,
    nproc: Nproc = 1,
    nnodes: Annotated[int, typer.Option("--nnodes", min=1, help="Machines training together (torchrun).")] = 1,
    node_rank: Annotated[
        int, typer.Option("--node-rank", min=0, help="This machine's rank; rank 0 writes the package.")
    ] = 0,
    rdzv_endpoint: Annotated[
        str | None, typer.Option("--rdzv-endpoint", help="host:port where node rank 0 listens (several machines).")
    ] = None,
    print_k8s: Annotated[
        bool, typer.Option("--print-k8s", help="Print a Kubeflow Trainer TrainJob running this on --nnodes pods.")
    ] = False,
    image: Annotated[
        str | None, typer.Option("--image", help="--print-k8s: an image with seekforge, by tag (not latest) or digest.")
    ] = None,
    claim: Annotated[
        str | None, typer.Option("--claim", help="--print-k8s: mount this volume claim (default: a new one).")
    ] = None,
    parent: Annotated[
        Path | None, typer.Option("--from", help="Continue this package's training (warm start; see warm_start).")
    ] = None,
    data: Annotated[str | None, typer.Option("--data", help="Train on this data instead of data.source.")] = None,
    as_json: JsonFlag = False,
) -> None:
    from seekforge.pipeline import join, run

    set_ = [*(set_ or []), *_warm_overrides(parent, data)]

    if print_k8s:
        from seekforge.pipeline import trainjob
        from seekforge.recipe import load_recipe

        text = trainjob(recipe, load_recipe(recipe, overrides=set_ or []), image=image, nnodes=nnodes, nproc=nproc,
                        claim=claim, overrides=set_ or [])  # fmt: skip
        out.print(text, markup=False, highlight=False, soft_wrap=True)
        return
    if node_rank > 0:
        folder = join(recipe, node_rank=node_rank, nnodes=nnodes, rdzv_endpoint=rdzv_endpoint or "",
                      nproc=nproc, overrides=set_ or [], runs_dir=runs_dir, resume=resume, run_dir=run_dir)  # fmt: skip
        if as_json:
            print_json({"run_dir": folder, "node_rank": node_rank, "nnodes": nnodes, "package": None})
        else:
            out.print(f"node {node_rank} of {nnodes} finished its share; node rank 0 writes the package "
                      f"(this node's run folder: {folder})", markup=False, soft_wrap=True)  # fmt: skip
        return
    result = run(recipe, overrides=set_ or [], runs_dir=runs_dir, resume=resume, run_dir=run_dir, nproc=nproc,
                 nnodes=nnodes, rdzv_endpoint=rdzv_endpoint)  # fmt: skip
    from seekforge.core.package import read_manifest

    gate = read_manifest(result.package, verify=False).get("fairness", {}).get("gate")
    if as_json:
        compressed = result.compression
        print_json({"run_dir": result.run_dir, "package": result.package, "report": result.package / "report.html",
                    "metrics": result.metrics, "compression": compressed, "fairness_gate": gate})  # fmt: skip
    else:
        print_metrics(result.metrics, title=f"test metrics ({result.metrics.get('rows', '?')} rows)")
        out.print(f"package: {result.package}", markup=False)
        out.print(f"report:  {result.package / 'report.html'}", markup=False)
        if result.compression is not None:
            print_variants(result.compression)
            out.print(f"compressed package ({result.compression.selected}): {result.compression.package}", markup=False)
    if gate is not None:
        for reason in gate["reasons"]:
            err.print(f"fairness gate: {reason}", markup=False)
        err.print(
            f"fairness gate: {'passed' if gate['passed'] else 'FAILED: the package is marked failed'}", markup=False
        )
        if not gate["passed"]:
            raise typer.Exit(1)


def pipeline_cmd(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file (with a gates: section).")],
    set_: SetOption = None,
    runs_dir: RunsDir = Path("runs"),
    registry: RegistryWhere = None,
    alias: Annotated[str, typer.Option("--alias", help="The alias a passing package takes.")] = "champion",
    promote: Annotated[bool, typer.Option("--promote/--no-promote", help="Promote when every gate passes.")] = True,
    as_json: JsonFlag = False,
) -> None:
    """Validate -> train -> gates -> register -> promote; a failing gate stops before promotion (exit 1)."""
    from seekforge.pipeline import pipeline
    from seekforge.registry import location

    done = pipeline(
        recipe, overrides=set_ or [], runs_dir=runs_dir, registry=location(registry), alias=alias, promote=promote
    )
    if as_json:
        print_json(done.to_dict())
    else:
        print_metrics(done.run.metrics, title=f"test metrics ({done.run.metrics.get('rows', '?')} rows)")
        for gate, found in done.gates.items():
            out.print(f"gate {gate}: {'passed' if found['passed'] else 'FAILED'}", markup=False)
        out.print(f"registered {done.name} version {done.version}: {done.run.package}", markup=False)
    for found in done.gates.values():
        for reason in found["reasons"]:
            err.print(f"gate failed: {reason}", markup=False)
    if done.promoted:
        err.print(f"{done.name}: {done.alias} -> version {done.version}", markup=False)
    elif not done.passed:
        err.print(f"not promoted: the {done.alias} stays where it was", markup=False)
        raise typer.Exit(1)


def retrain(
    package: Annotated[Path, typer.Argument(help="The served package.")],
    log: Annotated[Path, typer.Option("--log", help="Its prediction log (seekforge serve --log).")],
    labels: Annotated[Path, typer.Option("--labels", help="Labels: request_id[, position] and the output column.")],
    since: Annotated[
        str | None, typer.Option("--since", help="Only predictions logged this long before the last, e.g. 7d.")
    ] = None,
    every_version: Annotated[
        bool, typer.Option("--all-versions", help="Also rows logged by other versions of the model.")
    ] = False,
    preprocessor: Annotated[str, typer.Option("--preprocessor", help="keep, grow or refit (see warm_start).")] = "keep",
    replay: Annotated[float, typer.Option("--replay", min=0.0, max=0.99, help="Share of replayed parent rows.")] = 0.2,
    set_: SetOption = None,
    runs_dir: RunsDir = Path("runs"),
    as_json: JsonFlag = False,
) -> None:
    """Continue a package on its logged predictions that have labels (a warm start of its own recipe)."""
    from seekforge.core.config import parse_duration
    from seekforge.pipeline import retrain as retrain_package

    seconds = parse_duration(since, what="--since") if since else None
    done = retrain_package(package, log, labels, since_seconds=seconds, every_version=every_version,
                           preprocessor=preprocessor, replay=replay, overrides=set_ or [], runs_dir=runs_dir)  # fmt: skip
    if as_json:
        print_json(done.to_dict())
        return
    rows = done.rows
    out.print(f"{rows['logged']:,} logged predictions, {rows['labels']:,} labels: {rows['labelled']:,} joined, "
              f"{rows['duplicates']:,} duplicates dropped, {rows['trained_on']:,} rows to train on", markup=False)  # fmt: skip
    print_metrics(done.run.metrics, title=f"test metrics ({done.run.metrics.get('rows', '?')} rows)")
    out.print(f"package: {done.run.package}", markup=False)


def _warm_overrides(parent: Path | None, data: str | None) -> list[str]:
    """--from and --data as recipe overrides, their paths made absolute (they are given from here, not from
    the recipe's folder)."""
    found = []
    if parent is not None:
        found.append(f"warm_start.package={parent.resolve()}")
    if data is not None:
        found.append(f"data.source={data if data.startswith('builtin:') else Path(data).resolve()}")
    return found


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
    as_json: JsonFlag = False,
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
    if as_json:
        print_json({"study_dir": result.study_dir, "best": best, "best_recipe": result.best_recipe,
                    "package": result.package, "report": result.study_dir / "report.html", "trials": result.trials})  # fmt: skip
        return
    values = ", ".join(f"{k} {v:.4g}" for k, v in best["values"].items())
    out.print(f"best trial {best['number']}: {values}")
    for name, value in best["params"].items():
        out.print(f"  {escape(name)} = {escape(str(value))}")
    print_metrics(best["test"], title=f"best trial's test metrics ({best['test'].get('rows', '?')} rows)")
    out.print(f"best recipe: {result.best_recipe}", markup=False)
    out.print(f"package:     {result.package}", markup=False)
    out.print(f"report:      {result.study_dir / 'report.html'}", markup=False)
