"""``seekforge run`` / ``train``: data -> train -> evaluate -> package -> report, in ``runs/<name>/<stamp>/``."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.markup import escape

from seekforge.build import Built, finish, fit, prepare
from seekforge.core.errors import ConfigError, SeekforgeError, TrainingInterrupted
from seekforge.core.io import sha256_file, work_folder, write_text_atomic
from seekforge.core.package import MANIFEST, read_manifest
from seekforge.core.progress import console
from seekforge.recipe import Recipe, load_recipe
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

    Returns:
        The run folder, the package path and the test metrics.

    Raises:
        ConfigError: Invalid recipe or options.
        DataError: Data that cannot be read or does not match the recipe.
        TrainingInterrupted: Ctrl-C or SIGTERM; a checkpoint was written, ``resume=True`` continues.
    """
    if data is not None:
        overrides = [*overrides, f"data.source={_saved_frame(data, Path(runs_dir))}"]
    resolved = load_recipe(recipe, overrides=overrides)
    if nproc < 1:
        raise ConfigError(f"nproc must be >= 1, got {nproc}")
    train = resolved.train
    if train.batch_size % (nproc * train.grad_accum):
        raise ConfigError(
            f"train.batch_size ({train.batch_size}) must be a multiple of processes x grad_accum "
            f"({nproc} x {train.grad_accum}): each process takes an equal share of every batch",
            hint=f"set train.batch_size to a multiple of {nproc * train.grad_accum}",
        )
    fresh = not resume and not (run_dir is not None and Path(run_dir).exists())
    folder = _run_folder(resolved, Path(runs_dir), resume=resume, explicit=Path(run_dir) if run_dir else None)
    try:
        return _run_in(resolved, folder, resume=resume, nproc=nproc)
    except BaseException:
        if fresh and not checkpoint_path(folder).exists():  # nothing to resume: leave no folder behind
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _run_in(resolved: Recipe, folder: Path, *, resume: bool, nproc: int) -> RunResult:
    write_text_atomic(folder / "recipe.yaml", resolved.to_yaml())
    console.print(f"[bold]run[/] {resolved.name} -> {escape(str(folder))}")
    if resume and (folder / "package" / MANIFEST).is_file():  # trained and packaged: only compression is left
        result = _packaged(folder)
    else:
        prepared = prepare(resolved, folder)
        resuming = resume and checkpoint_path(folder).exists()
        if nproc == 1:
            fit(resolved, prepared, folder, resume=resuming, dist=DistContext())
        else:
            _launch_distributed(folder, nproc, resume=resuming)
        result = finish(resolved, prepared, folder)
    if resolved.compress is None:
        return RunResult(result.run_dir, result.package, result.metrics, result.history)
    from seekforge.compress import compress_package

    compression = compress_package(
        result.package, resolved.compress, work_dir=folder / "compress", output=folder / "compressed"
    )
    return RunResult(result.run_dir, result.package, result.metrics, result.history, compression)


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


def _run_folder(recipe: Recipe, runs_dir: Path, *, resume: bool, explicit: Path | None) -> Path:
    if explicit is not None and resume and not checkpoint_path(explicit).exists():
        raise ConfigError(f"{explicit} has no checkpoint to resume from", hint="run without --resume")
    folder = work_folder(runs_dir / recipe.name, resume=resume, explicit=explicit,
                         resumable=lambda d: _unfinished(d, recipe), what=f"run of '{recipe.name}'")  # fmt: skip
    if resume:
        _check_same_recipe(recipe, folder)
    return folder


def _unfinished(folder: Path, recipe: Recipe) -> bool:
    """A run folder with a checkpoint and no package yet, or no compressed package its recipe asks for."""
    if not checkpoint_path(folder).exists():
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
        old, new = _flatten(saved.to_dict()), _flatten(recipe.to_dict())
        changed = [
            f"{k}: {old.get(k)!r} -> {new.get(k)!r}"
            for k in sorted(old.keys() | new.keys())
            if old.get(k) != new.get(k)
        ]
        raise ConfigError(
            f"the recipe changed since the run in {folder} started ({'; '.join(changed[:5])})",
            hint="resume with the same recipe and --set options, or start a new run without --resume",
        )


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


def _launch_distributed(folder: Path, nproc: int, *, resume: bool) -> None:
    """Train under ``torchrun`` in its own session; Ctrl-C or SIGTERM here becomes one SIGTERM to torchrun,
    which passes it to every worker, and they stop together at the next step after a checkpoint."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
        "-m", "seekforge.build._ddp", str(folder),
    ]  # fmt: skip
    if resume:
        command.append("--resume")
    threads = os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    console.print(f"[bold]torchrun[/] {nproc} processes (gloo on CPU, nccl on CUDA)")
    proc = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": threads}, start_new_session=True)
    stopping = []

    def forward(signum: int, frame: Any) -> None:
        if stopping and signum == signal.SIGINT:  # a second Ctrl-C: stop everything now
            os.killpg(proc.pid, signal.SIGKILL)
            return
        stopping.append(signum)
        console.print("stopping the workers after their current step (Ctrl-C again to kill them)")
        proc.send_signal(signal.SIGTERM)

    previous = {signum: signal.signal(signum, forward) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = proc.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if stopping:
        raise TrainingInterrupted(
            f"distributed training stopped; checkpoint in {checkpoint_path(folder)}",
            hint="continue with the same command and --resume",
        )
    if code != 0:
        raise SeekforgeError(
            f"distributed training failed (torchrun exit code {code}); see the worker output above",
            hint="resume from the last checkpoint with --resume, or run with --nproc 1 to see the error alone",
        )
