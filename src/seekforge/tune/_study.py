"""Running a study: trials drawn by Optuna, trained by the Trainer on data prepared once, pruned per epoch;
the best recipe and its package at the end.

A study lives in ``runs/<name>/tune-<stamp>/``: ``recipe.yaml`` (with its ``tune`` section),
``study.journal`` (Optuna's journal storage, safe for several processes), ``data/`` (the prepared data),
``trials/<number>/`` (each trial's metrics and weights), and at the end ``best_recipe.yaml``,
``package/``, ``study.json`` and ``report.html``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape

from seekforge.core.deps import require
from seekforge.core.errors import ConfigError, TrainingInterrupted
from seekforge.core.io import work_folder, write_text_atomic
from seekforge.core.progress import console, log_label
from seekforge.recipe import Recipe, load_recipe
from seekforge.train import BUDGET_SHARE, available_bytes
from seekforge.tune._memory import PROCESS_BYTES, plan_workers, trial_bytes
from seekforge.tune._progress import report_trial
from seekforge.tune._storage import open_study
from seekforge.tune.config import Ends, apply, draw, metric_of


@dataclass(frozen=True)
class TuneResult:
    """Where the study is, its best trial's recipe and package, and every trial's outcome."""

    study_dir: Path
    best_recipe: Path
    package: Path
    best: dict[str, Any]
    trials: list[dict[str, Any]]


def _values(recipe: Recipe, params: dict[str, Any]) -> dict[str, Any]:
    """A finished trial's drawn values again, from the parameters Optuna stored."""
    optuna = require("optuna", purpose="Hyperparameter search")
    fixed = optuna.trial.FixedTrial(params)
    return draw(fixed, recipe.tune)  # type: ignore[arg-type]


class Objective:
    """One trial: draw a recipe, train it on the shared prepared data, report each epoch's metric to the
    pruner, and return the metric (and any further objectives)."""

    def __init__(self, recipe: Recipe, study_dir: Path, budget: int | None = None) -> None:
        self.recipe, self.study_dir, self.budget = recipe, study_dir, budget
        self.metric, _ = metric_of(recipe)
        self._prepared: dict[str, Any] = {}
        self.stop_requested = False  # Ctrl-C or SIGTERM during a trial's last epoch

    def prepared(self, recipe: Recipe) -> Any:
        """The prepared data for ``recipe``: made once per study (in ``data/``), then read by every trial."""
        from seekforge.build import preparation_key, prepare

        key = preparation_key(recipe)
        if key not in self._prepared:
            self._prepared[key] = prepare(recipe, self.study_dir / "data" / key[:16])
        return self._prepared[key]

    def __call__(self, trial: Any) -> float | tuple[float, ...]:
        optuna = require("optuna", purpose="Hyperparameter search")
        from seekforge.build import fit
        from seekforge.train import DistContext

        values = draw(trial, self.recipe.tune)  # type: ignore[arg-type]
        train = self.recipe.train
        if self.budget is not None and "auto" in (train.batch_size, train.gradient_checkpointing):
            # what auto fits in is this worker's share of the memory, not the whole machine's
            values = {**values, "train.memory_budget": max(1, self.budget // 2**20)}
        recipe = load_recipe(apply(self.recipe.trial_base(), values))
        folder = self.study_dir / "trials" / f"{trial.number:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        write_text_atomic(folder / "recipe.yaml", recipe.to_yaml())

        checks = self.recipe.tune.checks_per_epoch  # type: ignore[union-attr]

        def report(record: dict[str, Any]) -> None:
            epochs = round(record["epoch"], 3)  # within an epoch: the fraction of its steps trained
            trial.set_user_attr("epochs", epochs)
            if self.recipe.tune.objectives:  # type: ignore[union-attr]
                return  # Optuna prunes single-objective studies only
            trial.report(float(record[self.metric]), record.get("check", record["epoch"] * checks))
            if trial.should_prune():
                raise optuna.TrialPruned(f"{self.metric} {record[self.metric]:.4f} after epoch {epochs:g}")

        prepared = self.prepared(recipe)
        need = trial_bytes(recipe, prepared)
        trial.set_user_attr("memory_mib", round(need / 2**20, 1))
        if self.budget is not None and need > self.budget:
            raise MemoryError(
                f"needs ~{need / 2**20:,.0f} MiB by estimate, more than the {self.budget / 2**20:,.0f} MiB "
                "each worker may use; not started"
            )
        result = fit(
            recipe, prepared, folder, resume=False, dist=DistContext(), epoch_hook=report, checks_per_epoch=checks
        )
        self.stop_requested = result.stop_requested
        kept = result.history[result.best_epoch - 1]
        value = float(kept[self.metric])
        trial.set_user_attr("epochs", len(result.history))
        if "val_loss" in kept:  # breaks ties on a saturated metric (accuracy 1.0 on a small split)
            trial.set_user_attr("val_loss", float(kept["val_loss"]))
        extra = [self._objective(name, recipe, folder, prepared) for name in self.recipe.tune.objectives]  # type: ignore[union-attr]
        for name, got in zip(self.recipe.tune.objectives, extra, strict=True):  # type: ignore[union-attr]
            trial.set_user_attr(name, got)
        return (value, *extra) if extra else value

    @staticmethod
    def _objective(name: str, recipe: Recipe, folder: Path, prepared: Any) -> float:
        import torch

        from seekforge.models import build_model

        model = build_model(folder / "trained")
        if name == "parameters":
            return float(sum(p.numel() for p in model.parameters()))
        one = {k: v[:1] for k, v in prepared.splits["validation"].inputs.items()}
        with torch.inference_mode():
            for _ in range(3):
                model(one)
            started, runs = time.perf_counter(), 0
            while runs < 20 or time.perf_counter() - started < 0.2:
                model(one)
                runs += 1
        return (time.perf_counter() - started) / runs * 1000.0


def run_study(
    recipe: str | Path | Recipe | dict[str, Any],
    *,
    overrides: tuple[str, ...] | list[str] = (),
    runs_dir: str | Path = "runs",
    trials: int | None = None,
    workers: int | None = None,
    storage: str | None = None,
    resume: bool = False,
    study_dir: str | Path | None = None,
) -> TuneResult:
    """Search the recipe's ``tune`` space and package the best trial.

    Raises:
        ConfigError: No ``tune`` section, nothing to resume, or invalid options.
        TrainingInterrupted: Ctrl-C or SIGTERM; the trial that was running is retried on ``resume``.
    """
    resolved = load_recipe(recipe, overrides=overrides)
    if resolved.tune is None:
        raise ConfigError("the recipe has no tune section", hint="add tune: {search_space: ...} to the recipe")
    changes = {k: v for k, v in (("trials", trials), ("workers", workers), ("storage", storage)) if v is not None}
    if changes:
        resolved = load_recipe(
            resolved.to_dict() | {"tune": {**resolved.tune.model_dump(exclude_unset=True), **changes}}
        )
    tune = resolved.tune
    assert tune is not None
    folder = _study_folder(resolved, Path(runs_dir), resume=resume, explicit=Path(study_dir) if study_dir else None)
    if resume and (folder / "recipe.yaml").is_file():
        _check_same_search(load_recipe(folder / "recipe.yaml"), resolved, folder)
    write_text_atomic(folder / "recipe.yaml", resolved.to_yaml())
    study = open_study(resolved, folder)
    retried = _retry_abandoned(study)
    console.print(f"[bold]tune[/] {resolved.name} -> {escape(str(folder))}"
                  + (f" (retrying {retried} interrupted trial(s))" if retried else ""))  # fmt: skip
    objective = Objective(resolved, folder)
    workers, budget = _plan(resolved, objective)
    objective.budget = budget
    helpers = [_spawn_worker(folder, worker, budget) for worker in range(1, workers)]
    try:
        _await_helpers(folder, helpers)
        work(study, objective, tune.trials, tune.timeout)
    except KeyboardInterrupt:
        _stop_helpers(helpers)
        raise TrainingInterrupted(
            f"study interrupted; continue with `seekforge tune {folder / 'recipe.yaml'} --resume`"
        ) from None
    finally:
        for helper in helpers:
            helper.wait()
    if _retry_abandoned(study):  # a helper died mid-trial: its trial runs here
        work(study, objective, tune.trials, tune.timeout)
    _await_others(study)
    return _conclude(resolved, study, folder, objective)


def ready_file(folder: Path, worker: int) -> Path:
    """Where helper ``worker`` says it has joined the study."""
    return folder / "workers" / f"{worker}.ready"


def _await_helpers(folder: Path, helpers: list[subprocess.Popen[bytes]], limit: float = 120.0) -> None:
    """Wait until every helper process has joined the study (or exited, or ``limit`` seconds passed), so
    all workers start their first trials together: a helper still importing its libraries when the main
    process has run every trial would have joined for nothing."""
    started = time.monotonic()
    shown = False
    while time.monotonic() - started < limit:
        waiting = [
            n for n, helper in enumerate(helpers, 1) if helper.poll() is None and not ready_file(folder, n).exists()
        ]
        if not waiting:
            return
        if not shown:
            console.print(f"waiting for {len(waiting)} worker process(es) to join the study")
            shown = True
        time.sleep(0.1)


def _await_others(study: Any, poll: float = 1.0) -> None:
    """Wait for trials still running in other processes or on other hosts, so every host concludes from
    the same finished study; give up after three times the longest trial so far (at least a minute)."""
    optuna = require("optuna", purpose="Hyperparameter search")
    running = (optuna.trial.TrialState.RUNNING,)
    durations = [t.duration.total_seconds() for t in study.get_trials(deepcopy=False) if t.duration]
    limit = max(60.0, 3 * max(durations, default=0.0))
    started = time.monotonic()
    shown = False
    while others := study.get_trials(deepcopy=False, states=running):
        if time.monotonic() - started > limit:
            console.print(f"[yellow]{len(others)} trial(s) still running elsewhere after {limit:.0f} s; "
                          "concluding from the finished ones[/]")  # fmt: skip
            return
        if not shown:
            console.print(f"waiting for {len(others)} trial(s) running elsewhere")
            shown = True
        time.sleep(poll)


def _plan(recipe: Recipe, objective: Objective) -> tuple[int, int | None]:
    """Prepare the data (once, before any worker starts), estimate the largest trial the space can draw,
    and cap the workers so that many fit in memory; returns the workers and each one's budget."""
    tune = recipe.tune
    assert tune is not None
    base = recipe.trial_base()
    prepared = objective.prepared(load_recipe(apply(base, {})))
    ends = [
        Ends(high, model) for model in (range(len(tune.models)) if tune.models else [None]) for high in (False, True)
    ]
    need = max(trial_bytes(load_recipe(apply(base, draw(end, tune))), prepared) for end in ends)
    available = available_bytes()
    workers, line = plan_workers(tune.workers, need, available)
    console.print(line, highlight=False)
    if available is None or workers == 1:  # a single worker is never refused: a real shortage fails its trial
        return workers, None
    return workers, max(0, int(available * BUDGET_SHARE / workers) - PROCESS_BYTES)


def work(study: Any, objective: Objective, trials: int, timeout: float | None) -> None:
    """Run trials until the study holds ``trials`` finished or running ones (shared by every worker); a
    trial failed for an interruption and queued again counts once, when it runs again."""
    optuna = require("optuna", purpose="Hyperparameter search")
    started = time.monotonic()
    state = optuna.trial.TrialState
    done = (state.COMPLETE, state.PRUNED, state.RUNNING, state.FAIL)
    while True:
        trials_now = study.get_trials(deepcopy=False)
        retried = {t.user_attrs["retry_of"] for t in trials_now if "retry_of" in t.user_attrs}
        counted = sum(t.state in done and t.number not in retried for t in trials_now)
        waiting = len(study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,)))
        if counted >= trials and not waiting:
            return
        if timeout is not None and time.monotonic() - started >= timeout:
            return
        trial = study.ask()
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        try:
            with log_label(f"trial {trial.number}"):
                value = objective(trial)
        except optuna.TrialPruned as exc:
            trial.set_user_attr("pruned", str(exc))
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            report_trial(study, trial.number, f"pruned ({exc})", trials, started)
            continue
        except (KeyboardInterrupt, TrainingInterrupted):
            _give_back(study, trial, "interrupted")
            raise KeyboardInterrupt from None
        except Exception as exc:  # a failure of one trial is that trial's: the study goes on
            trial.set_user_attr("failed", f"{type(exc).__name__}: {exc}"[:500])
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            console.print(f"[yellow]trial {trial.number} failed:[/] {escape(str(exc))[:200]}")
            report_trial(study, trial.number, "failed", trials, started)
            continue
        study.tell(trial, value)
        report_trial(study, trial.number, "done", trials, started)
        if objective.stop_requested:  # Ctrl-C or SIGTERM during the trial's last epoch
            raise KeyboardInterrupt


def _give_back(study: Any, trial: Any, why: str) -> None:
    """Fail ``trial`` and queue its values again, so a resumed study runs them (nothing lost)."""
    optuna = require("optuna", purpose="Hyperparameter search")
    trial.set_user_attr("failed", why)
    study.tell(trial, state=optuna.trial.TrialState.FAIL)
    study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number}, skip_if_exists=False)


def _stop_helpers(helpers: list[subprocess.Popen[bytes]], grace: float = 30.0) -> None:
    """Ask each helper worker to stop as an interrupted study does (its trial is queued again)."""
    import signal

    for helper in helpers:
        if helper.poll() is None:
            helper.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace
    for helper in helpers:
        try:
            helper.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            helper.kill()


def _retry_abandoned(study: Any) -> int:
    """Trials left RUNNING by a worker of this host that no longer exists (killed): failed and queued
    again with the same values."""
    optuna = require("optuna", purpose="Hyperparameter search")
    host = socket.gethostname()
    count = 0
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        owner = str(trial.user_attrs.get("worker", ""))
        name, _, pid = owner.rpartition(":")
        if name != host or not pid.isdigit() or _alive(int(pid)):
            continue
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)  # Optuna's public way to end another's trial
        retry = {"retry_of": trial.number, "retry_reason": "its worker stopped"}
        study.enqueue_trial(trial.params, user_attrs=retry, skip_if_exists=False)
        count += 1
    return count


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _spawn_worker(folder: Path, worker: int, budget: int | None) -> subprocess.Popen[bytes]:
    ready_file(folder, worker).unlink(missing_ok=True)  # left by an earlier run of a resumed study
    env = {**os.environ, "SEEKFORGE_NO_PROGRESS": "1"}
    argv = [sys.executable, "-m", "seekforge.tune._worker", str(folder), str(worker), str(budget or 0)]
    return subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL)


def _check_same_search(saved: Recipe, recipe: Recipe, folder: Path) -> None:
    """A resumed study keeps its recipe and search space; only its budget (trials, workers, timeout,
    storage) may change."""

    def comparable(r: Recipe) -> dict[str, Any]:
        data = r.to_dict()
        for key in ("trials", "workers", "timeout", "storage"):
            data["tune"].pop(key, None)
        return data

    if comparable(saved) != comparable(recipe):
        raise ConfigError(
            f"{folder} holds a study of a different recipe or search space",
            hint="resume with the recipe it started with (only trials, workers, timeout and storage may change), "
            "or start a new study without --resume",
        )


def _study_folder(recipe: Recipe, runs_dir: Path, *, resume: bool, explicit: Path | None) -> Path:
    return work_folder(runs_dir / recipe.name, "tune-", resume=resume, explicit=explicit,
                       what=f"study of '{recipe.name}'")  # fmt: skip


def _conclude(recipe: Recipe, study: Any, folder: Path, objective: Objective) -> TuneResult:
    from seekforge.build import finish
    from seekforge.tune._report import summarize, write_report

    summary = summarize(study, recipe)
    if summary["best"] is None:
        raise ConfigError("no trial finished, so there is no best recipe", hint="see the failed trials in study.json")
    best = summary["best"]
    trial_dir = folder / "trials" / f"{best['number']:04d}"
    best_recipe = load_recipe(apply(recipe.trial_base(), _values(recipe, best["params"])))
    if not (trial_dir / "trained").is_dir():  # the best trial ran on another host: train it here
        from seekforge.build import fit
        from seekforge.train import DistContext

        console.print(f"training the best trial ({best['number']}) again: its weights are on another host")
        fit(best_recipe, objective.prepared(best_recipe), trial_dir, resume=False, dist=DistContext())
    write_text_atomic(folder / "best_recipe.yaml", best_recipe.to_yaml())
    result = finish(best_recipe, objective.prepared(best_recipe), trial_dir)
    package = folder / "package"
    if package.exists():
        import shutil

        shutil.rmtree(package)
    result.package.rename(package)
    summary["best"]["test"] = result.metrics
    write_text_atomic(folder / "study.json", json.dumps(summary, indent=2, default=str))
    write_report(summary, folder / "report.html")
    return TuneResult(folder, folder / "best_recipe.yaml", package, summary["best"], summary["trials"])
