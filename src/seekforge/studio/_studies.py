"""The hyperparameter studies under a folder (``<runs>/<name>/tune-<stamp>/``, see ``seekforge tune``), read
from Optuna's storage without ever writing to it: the study's journal file is only read (appends take
Optuna's lock; reads take none), a SQLite database is opened read-only, a PostgreSQL one only queried.
A storage that cannot be reached is shown as such."""

from __future__ import annotations

import math
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from seekforge.core.deps import require
from seekforge.core.report import axis_positions
from seekforge.studio._files import mapping, read_yaml

#: a study whose journal changed this recently and has no ``study.json`` yet is taken as running now
RUNNING_SECONDS = 120.0
TRIAL_SORTS = ("number", "value", "state", "duration")


@dataclass(frozen=True)
class StudySummary:
    """One study as the studies table shows it."""

    id: str
    name: str
    stamp: str
    status: str  # running | finished | stopped | unreachable
    metric: str | None
    direction: str | None
    trials: int = 0
    states: dict[str, int] = field(default_factory=dict)
    best: dict[str, Any] | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class StudyIndex:
    """The studies under ``root``; each storage is opened once and read again incrementally."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._storages: dict[Path, tuple[Any, Any]] = {}
        self._importance: dict[Path, tuple[int, dict[str, Any]]] = {}
        self._weighing: dict[Path, threading.Lock] = {}
        self._lock = threading.Lock()

    def folders(self) -> list[Path]:
        if not self.root.is_dir():
            return []
        return sorted(p for p in self.root.glob("*/tune-*") if p.is_dir() and (p / "recipe.yaml").is_file())

    def find(self, study_id: str) -> Path | None:
        name, _, stamp = study_id.partition("/")
        if not name or not stamp.startswith("tune-") or "/" in stamp or name.startswith("."):
            return None
        folder = self.root / name / stamp
        return folder if folder in self.folders() else None

    def summaries(self) -> list[StudySummary]:
        return [self.summary(folder) for folder in self.folders()]

    def summary(self, folder: Path) -> StudySummary:
        recipe = _recipe(folder)
        tune = recipe.get("tune") or {}
        ident = f"{folder.parent.name}/{folder.name}"
        metric = tune.get("metric")
        try:
            trials, directions = self.trials(folder)
        except Exception as exc:  # an unreachable server, a damaged journal: shown, not raised
            return StudySummary(ident, folder.parent.name, folder.name, "unreachable", metric, None,
                                problem=f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")  # fmt: skip
        states: dict[str, int] = {}
        for trial in trials:
            states[trial["state"]] = states.get(trial["state"], 0) + 1
        direction = directions[0] if directions else None
        complete = [t for t in trials if t["state"] == "COMPLETE" and t["value"] is not None]
        best = None
        if complete:
            best = (max if direction == "maximize" else min)(complete, key=lambda t: t["value"])
        journal = folder / "study.journal"
        changed = (journal if journal.exists() else folder / "recipe.yaml").stat().st_mtime
        status = "finished" if (folder / "study.json").exists() else (
            "running" if time.time() - changed < RUNNING_SECONDS else "stopped")  # fmt: skip
        return StudySummary(ident, folder.parent.name, folder.name, status, metric, direction, len(trials), states,
                            best)  # fmt: skip

    def trials(self, folder: Path) -> tuple[list[dict[str, Any]], list[str]]:
        """Every trial of the study in ``folder`` as plain values, and its directions (none of either for a
        study whose storage holds nothing yet)."""
        frozen, directions = self.frozen(folder)
        return [_trial(t) for t in frozen], [d.name.lower() for d in directions]

    def frozen(self, folder: Path) -> tuple[list[Any], list[Any]]:
        """The study's trials as Optuna's FrozenTrials, and its directions."""
        try:
            storage, study_id = self._open(folder)
        except (FileNotFoundError, LookupError):  # made, its first trial not yet stored
            return [], []
        with self._lock:  # one reader at a time replays the journal
            return storage.get_all_trials(study_id, deepcopy=False), list(storage.get_study_directions(study_id))

    def importance(self, folder: Path) -> dict[str, Any]:
        """Each parameter's importance for the (first) objective over the complete trials so far, as the
        study's report weighs it (:func:`seekforge.tune.param_importance`), worked out again only when more
        trials have completed; one computation per study at a time (the others wait for its answer)."""
        from seekforge.tune import param_importance

        with self._lock:
            working = self._weighing.setdefault(folder, threading.Lock())
        with working:
            frozen, directions = self.frozen(folder)
            done = [t for t in frozen if t.state.name == "COMPLETE" and t.values and all(map(math.isfinite, t.values))]
            with self._lock:
                cached = self._importance.get(folder)
            if cached is not None and cached[0] == len(done):
                return cached[1]
            import optuna

            optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "study created in memory" line per reading
            study = optuna.create_study(directions=directions or ["minimize"])
            study.add_trials(done)
            method, found = param_importance(study)
            answer = {"trials": len(done), "method": method, "importance": found}
            with self._lock:
                self._importance[folder] = (len(done), answer)
            return answer

    def _open(self, folder: Path) -> tuple[Any, Any]:
        with self._lock:
            if folder not in self._storages:
                storage = _read_only_storage(folder, _recipe(folder).get("tune") or {})
                summaries = storage.get_all_studies()
                if not summaries:
                    raise LookupError(f"{folder} holds no study yet")
                self._storages[folder] = (storage, summaries[-1]._study_id)
            return self._storages[folder]


def trial_page(trials: list[dict[str, Any]], *, offset: int, limit: int, sort: str, descending: bool,
               direction: str | None) -> list[dict[str, Any]]:  # fmt: skip
    """``limit`` trials from ``offset`` in ``sort`` order (by value: best first unless ``descending`` is
    false; then the pruned trials by the last value they reported; trials without a value last)."""

    def key(trial: dict[str, Any]) -> Any:
        value = trial.get(sort)
        if sort == "value":
            if value is None:
                return (2, 0.0)
            return (trial["state"] != "COMPLETE", -value if (direction == "maximize") == descending else value)
        return (value is None, value if value is not None else 0)

    ordered = sorted(trials, key=key, reverse=sort != "value" and descending)
    return ordered[offset : offset + limit]


def parameters(trials: list[dict[str, Any]], direction: str | None, *, limit: int = 300) -> dict[str, Any]:
    """The complete trials' parameters and value for parallel coordinates: each axis's positions (0..1) and
    labels; past ``limit`` trials, the best tenth of them and an even spread of the rest."""
    done = [t for t in trials if t["state"] == "COMPLETE" and t["value"] is not None and t["params"]]
    names = [n for n in dict.fromkeys(n for t in done for n in t["params"]) if all(n in t["params"] for t in done)]
    shown = done
    if len(done) > limit:
        ranked = sorted(done, key=lambda t: -t["value"] if direction == "maximize" else t["value"])
        best = ranked[: limit // 10]
        rest = ranked[limit // 10 :]
        step = len(rest) / (limit - len(best))
        shown = best + [rest[int(i * step)] for i in range(limit - len(best))]
    axes = [*names, "value"]
    placed = [axis_positions([t["params"][n] if n != "value" else t["value"] for t in shown]) for n in axes]
    return {"axes": axes, "numbers": [t["number"] for t in shown], "values": [t["value"] for t in shown],
            "positions": [p for p, _ in placed], "labels": [tick for _, tick in placed], "complete": len(done)}  # fmt: skip


def history(trials: list[dict[str, Any]], direction: str | None, *, points: int = 2000) -> dict[str, list[Any]]:
    """Each complete trial's value by its number and the best so far, at most ``points`` trials (every
    k-th, the best ones kept)."""
    done = [t for t in trials if t["state"] == "COMPLETE" and t["value"] is not None]
    done.sort(key=lambda t: t["number"])
    best: list[float] = []
    for t in done:
        better = not best or (t["value"] > best[-1] if direction == "maximize" else t["value"] < best[-1])
        best.append(t["value"] if better else best[-1])
    keep = range(len(done))
    if len(done) > points:
        step = math.ceil(len(done) / points)
        improved = {i for i in range(len(done)) if i == 0 or best[i] != best[i - 1]}
        keep = sorted({*range(0, len(done), step), len(done) - 1, *improved})
    return {"number": [done[i]["number"] for i in keep], "value": [done[i]["value"] for i in keep],
            "best": [best[i] for i in keep]}  # fmt: skip


def _trial(trial: Any) -> dict[str, Any]:
    start, end = trial.datetime_start, trial.datetime_complete
    values = trial.values or []
    return {
        "number": trial.number,
        "state": trial.state.name,
        "value": float(values[0]) if values and math.isfinite(values[0]) else None,
        "values": [float(v) for v in values],
        "params": dict(trial.params),
        "epochs": trial.user_attrs.get("epochs"),
        "duration": (end - start).total_seconds() if start and end else None,
        "intermediate": {str(k): float(v) for k, v in sorted(trial.intermediate_values.items()) if math.isfinite(v)},
    }


def _recipe(folder: Path) -> dict[str, Any]:
    return mapping(read_yaml(folder / "recipe.yaml"))


def _read_only_storage(folder: Path, tune: dict[str, Any]) -> Any:
    """The study's storage, opened so that nothing is written: the journal read as it is; SQLite in
    read-only mode; another database only queried."""
    require("optuna", purpose="the studio's studies")
    from optuna.storages import JournalStorage, RDBStorage
    from optuna.storages.journal import JournalFileBackend

    url = tune.get("storage")
    if not url:
        journal = folder / "study.journal"
        if not journal.is_file():
            raise FileNotFoundError(f"{journal} does not exist")
        return JournalStorage(JournalFileBackend(str(journal)))  # reads take no lock; only appends do
    if str(url).startswith("sqlite:///"):
        path = Path(str(url).removeprefix("sqlite:///"))
        url = f"sqlite:///file:{path}?mode=ro&uri=true"
    return RDBStorage(str(url), skip_compatibility_check=True, skip_table_creation=True)
