"""``seekforge run`` / ``train``: data -> train -> evaluate -> package -> report, in ``runs/<name>/<stamp>/``."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from seekforge.build import Built, finish, fit, prepare
from seekforge.core.errors import ConfigError
from seekforge.core.io import sha256_file, work_folder, write_text_atomic
from seekforge.core.package import MANIFEST, read_manifest
from seekforge.core.progress import console
from seekforge.pipeline._launch import Nodes, launch
from seekforge.recipe import Recipe, load_recipe
from seekforge.tracking import MlflowRun, flatten
from seekforge.train import DistContext, checkpoint_path

if TYPE_CHECKING:
    import pandas as pd

    from seekforge.compress import CompressResult


@dataclass(frozen=True)
class RunResult(Built):
    """Where a run put its outputs, and its test metrics."""

    #: what the recipe's ``compress`` section made from ``package``
    compression: CompressResult | None = None


def run(
    recipe: str | Path | Recipe | dict[str, Any],
    *,
    overrides: Iterable[str] = (),
    runs_dir: str | Path = "runs",
    resume: bool = False,
    run_dir: str | Path | None = None,
    nproc: int = 1,
    data: pd.DataFrame | None = None,
    nnodes: int = 1,
    rdzv_endpoint: str | None = None,
) -> RunResult:
    """Run a recipe end to end and write its model package.

    Args:
        recipe: A recipe file, mapping or :class:`Recipe`.
        overrides: ``dotted.key=value`` strings applied before validation.
        runs_dir: Parent of ``<name>/<stamp>/`` run folders.
        resume: Continue the latest unfinished run of this recipe from its last checkpoint.
        run_dir: Use (or resume) this run folder instead of a new stamped one.
        nproc: Processes for distributed data-parallel training through ``torchrun``.
        data: The table to train on, in place of the recipe's ``data.source`` (saved once, by its content,
            as ``<runs_dir>/frames/<sha256>.parquet``, which the package's lineage then names).
        nnodes, rdzv_endpoint: Train over several machines: this one is node rank 0 and listens on
            ``rdzv_endpoint`` (``host:port``); each other one runs :func:`join` with its node rank.

    Returns:
        The run folder, the package path and the test metrics.

    Raises:
        ConfigError: Invalid recipe or options.
        DataError: Data that cannot be read or does not match the recipe.
        TrainingInterrupted: Ctrl-C or SIGTERM; a checkpoint was written, ``resume=True`` continues.
    """
    if data is not None:
        overrides = [*overrides, f"data.source={_saved_frame(data, Path(runs_dir))}"]
    nodes = Nodes(nnodes, 0, rdzv_endpoint)
    resolved = _checked(load_recipe(recipe, overrides=overrides), nproc, nodes)
    with _folder(resolved, Path(runs_dir) / resolved.name, resume=resume, run_dir=run_dir) as folder:
        return _run_in(resolved, folder, resume=resume, nproc=nproc, nodes=nodes)


def join(
    recipe: str | Path | Recipe | dict[str, Any],
    *,
    node_rank: int,
    nnodes: int,
    rdzv_endpoint: str,
    nproc: int = 1,
    overrides: Iterable[str] = (),
    runs_dir: str | Path = "runs",
    resume: bool = False,
    run_dir: str | Path | None = None,
) -> Path:
    """Train this machine's share of a job over ``nnodes`` machines, whose node rank 0 runs :func:`run`
    with the same recipe, data and ``rdzv_endpoint``; that one writes the package.

    This machine prepares its own copy of the data (the workers check that every machine's is the same)
    and keeps its own checkpoint, so ``resume=True`` on every machine continues an interrupted job.

    Returns:
        This machine's run folder, under ``<runs_dir>/<name>/node<R>/``.
    """
    nodes = Nodes(nnodes, node_rank, rdzv_endpoint)
    if node_rank == 0:
        raise ConfigError("node rank 0 writes the package: run it with seekforge.run (seekforge train)")
    resolved = _checked(load_recipe(recipe, overrides=overrides), nproc, nodes)
    parent = Path(runs_dir) / resolved.name / f"node{node_rank}"
    with _folder(resolved, parent, resume=resume, run_dir=run_dir) as folder:
        write_text_atomic(folder / "recipe.yaml", resolved.to_yaml())
        console.print(f"[bold]run[/] {resolved.name}, node {node_rank} of {nnodes} -> {escape(str(folder))}")
        prepare(resolved, folder)
        launch(folder, nproc, nodes, resume=resume and checkpoint_path(folder).exists())
        write_text_atomic(folder / NODE_DONE, json.dumps({"node_rank": node_rank, "nnodes": nnodes}))
    return folder


#: Written in a node's run folder when its share of the job has finished (it has no package to say so).
NODE_DONE = "node-finished.json"


def _checked(resolved: Recipe, nproc: int, nodes: Nodes) -> Recipe:
    from seekforge.core.deps import ensure

    if resolved.fairness is not None:  # needed when the run ends: found missing before it starts
        ensure("fairlearn", purpose="The recipe's fairness gate")
    if resolved.card.explain_rows:
        ensure("shap", purpose="The model card's explanation (card.explain_rows)")
    if nproc < 1:
        raise ConfigError(f"nproc must be >= 1, got {nproc}")
    train = resolved.train
    processes = nproc * nodes.count
    if train.batch_size == "auto" and processes > 1:
        raise ConfigError("train.batch_size: auto is chosen by each process's own memory, which several processes "
                          "need not agree on", hint="set train.batch_size to a number with --nproc")  # fmt: skip
    if train.batch_size != "auto" and train.batch_size % (processes * train.grad_accum):
        raise ConfigError(
            f"train.batch_size ({train.batch_size}) must be a multiple of processes x grad_accum "
            f"({processes} x {train.grad_accum}): each process takes an equal share of every batch",
            hint=f"set train.batch_size to a multiple of {processes * train.grad_accum}",
        )
    return resolved


@contextlib.contextmanager
def _folder(resolved: Recipe, parent: Path, *, resume: bool, run_dir: str | Path | None) -> Iterator[Path]:
    """The run folder (new, given, or the latest unfinished one); a new one is removed again when the run
    fails before its first checkpoint, since there is nothing in it to resume."""
    fresh = not resume and not (run_dir is not None and Path(run_dir).exists())
    folder = _run_folder(resolved, parent, resume=resume, explicit=Path(run_dir) if run_dir else None)
    try:
        yield folder
    except BaseException:
        if fresh and not checkpoint_path(folder).exists():
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _run_in(resolved: Recipe, folder: Path, *, resume: bool, nproc: int, nodes: Nodes) -> RunResult:
    write_text_atomic(folder / "recipe.yaml", resolved.to_yaml())
    console.print(f"[bold]run[/] {resolved.name} -> {escape(str(folder))}")
    with _tracked(resolved, folder) as tracked:
        if resume and (folder / "package" / MANIFEST).is_file():  # trained and packaged: only compression is left
            result = _packaged(folder)
        else:
            prepared = prepare(resolved, folder)
            resuming = resume and checkpoint_path(folder).exists()
            if nproc == 1 and nodes.count == 1:
                hook = tracked.epoch if tracked is not None else None
                fit(resolved, prepared, folder, resume=resuming, dist=DistContext(), epoch_hook=hook)
            elif not (resuming and (folder / "trained" / "result.json").is_file()):  # trained: only packaging failed
                launch(folder, nproc, nodes, resume=resuming)
            result = finish(resolved, prepared, folder)
        if tracked is not None and tracked.model_uri is None:
            tracked.finish(result.history, result.metrics, package=result.package, model_code=_pyfunc_code(),
                           manifest=read_manifest(result.package, verify=False))  # fmt: skip
            console.print(f"[bold]mlflow[/] run {tracked.run_id} -> {escape(str(tracked.model_uri))}")
    if resolved.compress is None:
        return RunResult(result.run_dir, result.package, result.metrics, result.history)
    from seekforge.compress import compress_package

    compression = compress_package(
        result.package, resolved.compress, work_dir=folder / "compress", output=folder / "compressed"
    )
    return RunResult(result.run_dir, result.package, result.metrics, result.history, compression)


@contextlib.contextmanager
def _tracked(resolved: Recipe, folder: Path) -> Iterator[MlflowRun | None]:
    """The run logged to MLflow when the recipe's ``tracking.mlflow`` says so (reached before training)."""
    config = resolved.tracking.mlflow
    if config is None:
        yield None
        return
    with MlflowRun(config, experiment=resolved.name, run_name=folder.name, run_dir=folder) as tracked:
        tracked.params({k: v for k, v in resolved.to_dict().items() if k != "tracking"})  # no URI or credentials
        yield tracked


def _pyfunc_code() -> Path:
    """The file MLflow logs as the package's pyfunc model (found, not imported: it imports mlflow)."""
    spec = importlib.util.find_spec("seekforge.serve.mlflow_model")
    assert spec is not None and spec.origin is not None
    return Path(spec.origin)


def _saved_frame(frame: pd.DataFrame, runs_dir: Path) -> Path:
    """``frame`` as Parquet under ``runs_dir/frames``, named by a hash of its content, so the same table
    is saved once and a run of it resumes and hashes the same."""
    import tempfile

    import pandas as pd

    if not isinstance(frame, pd.DataFrame):
        raise ConfigError(f"data must be a pandas DataFrame, got {type(frame).__name__}")
    folder = runs_dir / "frames"
    folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=".frame.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        frame.to_parquet(name)
        path = (folder / f"{sha256_file(Path(name))[:16]}.parquet").resolve()
        os.replace(name, path)  # the same content makes the same file: replacing it changes nothing
    finally:
        Path(name).unlink(missing_ok=True)
    return path


def _run_folder(recipe: Recipe, parent: Path, *, resume: bool, explicit: Path | None) -> Path:
    if explicit is not None and resume and not checkpoint_path(explicit).exists():
        raise ConfigError(f"{explicit} has no checkpoint to resume from", hint="run without --resume")
    folder = work_folder(parent, resume=resume, explicit=explicit,
                         resumable=lambda d: _unfinished(d, recipe), what=f"run of '{recipe.name}'")  # fmt: skip
    if resume:
        _check_same_recipe(recipe, folder)
    return folder


def _unfinished(folder: Path, recipe: Recipe) -> bool:
    """A run folder with a checkpoint and no package yet, or no compressed package its recipe asks for; a
    node's share of a job over several machines, until it has finished."""
    if not checkpoint_path(folder).exists() or (folder / NODE_DONE).is_file():
        return False
    if not (folder / "package" / MANIFEST).is_file():
        return True
    return recipe.compress is not None and not (folder / "compressed" / MANIFEST).is_file()


def _packaged(folder: Path) -> Built:
    """The result of a run whose package is written already."""
    manifest = read_manifest(folder / "package")
    history = json.loads((folder / "trained" / "result.json").read_text(encoding="utf-8"))["history"]
    return Built(folder, folder / "package", manifest["metrics"]["test"], history)


def _check_same_recipe(recipe: Recipe, folder: Path) -> None:
    saved_path = folder / "recipe.yaml"
    if not saved_path.exists():
        return
    saved = load_recipe(saved_path)
    if saved.fingerprint() != recipe.fingerprint():
        old, new = flatten(saved.to_dict()), flatten(recipe.to_dict())
        changed = [
            f"{k}: {old.get(k)!r} -> {new.get(k)!r}"
            for k in sorted(old.keys() | new.keys())
            if old.get(k) != new.get(k)
        ]
        raise ConfigError(
            f"the recipe changed since the run in {folder} started ({'; '.join(changed[:5])})",
            hint="resume with the same recipe and --set options, or start a new run without --resume",
        )
