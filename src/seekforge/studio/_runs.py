"""The runs under a folder, read as they are on disk and never written: what each run is, how far it got,
and its curves. A run folder is ``<runs>/<name>/<stamp>/`` (see ``seekforge run``): ``recipe.yaml``,
``metrics.jsonl`` (one line per epoch, appended as training goes), ``package/package.json`` once finished.

Reading is tolerant: a run whose recipe was never written is ``incomplete``; a line of ``metrics.jsonl``
that is not a JSON object (a crash mid-write, a damaged file) is skipped and reported by its number; a
last line still being written waits until its newline arrives.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from seekforge.studio._files import finite, read_json, read_yaml

#: a run whose files changed this recently and has no package yet is taken as training now
RUNNING_SECONDS = 120.0
STATUSES = ("running", "finished", "stopped", "incomplete")
SORT_KEYS = ("started", "name", "status", "model", "epochs", "validation", "test", "updated")


@dataclass(frozen=True)
class RunSummary:
    """One run as the runs table shows it."""

    id: str
    name: str
    stamp: str
    status: str
    model: str | None
    task: str | None
    epochs: int
    updated: float
    validation: dict[str, float] = field(default_factory=dict)  # the last epoch's headline validation metric
    test: dict[str, float] = field(default_factory=dict)  # the package's headline test metric
    bad_lines: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Curves:
    """A run's per-epoch series, downsampled to at most ``points`` each, and what could not be read."""

    x: list[float]
    series: dict[str, list[float | None]]
    lines: int  # complete lines read (a client following the run asks for the ones after these)
    bad_lines: list[int]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_metrics(path: Path, *, start: int = 0) -> tuple[list[dict[str, Any]], list[int], int]:
    """The records of ``metrics.jsonl`` from line ``start`` on (1-based numbers of lines that are not a JSON
    object), and how many complete lines the file holds; a last line without its newline is not counted."""
    try:
        data = path.read_bytes()
    except OSError:
        return [], [], 0
    lines = data.split(b"\n")[:-1]  # the part after the last newline is still being written
    records, bad = parse_lines(lines[start:], first=start + 1)
    return records, bad, len(lines)


def parse_lines(lines: list[bytes], *, first: int = 1) -> tuple[list[dict[str, Any]], list[int]]:
    """The JSON objects among ``lines`` (blank ones skipped), and the numbers of those that are none
    (counting from ``first``)."""
    records, bad = [], []
    for number, line in enumerate(lines, start=first):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if isinstance(record, dict):
            records.append(record)
        else:
            bad.append(number)
    return records, bad


def curves(run: Path, *, points: int = 500) -> Curves:
    """The run's numeric series by epoch (``x``), each at most ``points`` long (every k-th epoch and the
    last, so a curve keeps its shape and its end)."""
    records, bad, count = read_metrics(run / "metrics.jsonl")
    x = [float(r.get("epoch", i + 1)) for i, r in enumerate(records)]
    names = [k for k in dict.fromkeys(k for r in records for k in r) if k not in ("epoch", "step")]
    series = {k: [finite(r.get(k)) for r in records] for k in names}
    series = {k: v for k, v in series.items() if any(value is not None for value in v)}
    keep = stride(len(x), points)
    return Curves([x[i] for i in keep], {k: [v[i] for i in keep] for k, v in series.items()}, count, bad)


def stride(n: int, points: int) -> list[int]:
    """Which of ``n`` points to keep to show at most ``points``: every k-th, and the last."""
    if n <= points:
        return list(range(n))
    step = math.ceil(n / points)
    return sorted({*range(0, n, step), n - 1})


class RunIndex:
    """The runs under ``root``, summarised; a run's summary is read again only when its files change."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[Path, tuple[tuple[float, ...], RunSummary]] = {}

    def folders(self) -> Iterator[Path]:
        """Every ``<name>/<stamp>`` folder under the root (a missing root holds none)."""
        try:
            names = sorted(os.scandir(self.root), key=lambda e: e.name)
        except OSError:
            return
        for name in names:
            if not name.is_dir() or name.name.startswith("."):
                continue
            try:
                stamps = list(os.scandir(name.path))
            except OSError:
                continue
            for stamp in stamps:  # a run's folder is its stamp; a study's (tune-...) and others have a prefix
                if stamp.name[:1].isdigit() and stamp.is_dir() and _is_run(Path(stamp.path)):
                    yield Path(stamp.path)

    def summaries(self) -> list[RunSummary]:
        now = time.time()
        found = [self.summary(folder, now=now) for folder in self.folders()]
        return [s for s in found if s is not None]

    def page(self, *, offset: int = 0, limit: int = 50, sort: str = "started", descending: bool = True,
             query: str = "", status: str | None = None) -> tuple[int, list[RunSummary]]:  # fmt: skip
        """``limit`` runs from ``offset`` in ``sort`` order, among those whose name, model or status holds
        ``query`` (and of ``status``), and how many there are in all."""
        runs = self.summaries()
        if query:
            q = query.lower()
            runs = [r for r in runs if q in r.name.lower() or q in (r.model or "").lower() or q in r.status]
        if status:
            runs = [r for r in runs if r.status == status]
        runs.sort(key=lambda r: _sort_value(r, sort), reverse=descending)
        return len(runs), runs[offset : offset + limit]

    def find(self, run_id: str) -> Path | None:
        """The folder of the run ``name/stamp``, when it is one under the root (no path leaves it)."""
        name, _, stamp = run_id.partition("/")
        if not name or not stamp[:1].isdigit() or "/" in stamp or name.startswith(".") or "\\" in run_id:
            return None
        folder = self.root / name / stamp
        if not folder.resolve().is_relative_to(self.root.resolve()):
            return None
        return folder if folder.is_dir() and _is_run(folder) else None

    def summary(self, folder: Path, *, now: float | None = None) -> RunSummary | None:
        key = _state(folder)
        cached = self._cache.get(folder)
        if cached is not None and cached[0] == key:
            summary = cached[1]
        else:
            summary = _summarise(folder, key)
            self._cache[folder] = (key, summary)
        if summary.status in ("running", "stopped"):  # time moves on without the files changing
            fresh = (now or time.time()) - summary.updated < RUNNING_SECONDS
            summary = RunSummary(**{**summary.to_dict(), "status": "running" if fresh else "stopped"})
        return summary


def _is_run(folder: Path) -> bool:
    return any((folder / name).exists() for name in ("recipe.yaml", "metrics.jsonl", "package", "checkpoints"))


def _state(folder: Path) -> tuple[float, ...]:
    """What changes when a run's summary does: the times and sizes of the files it is read from."""
    out: list[float] = []
    for name in ("recipe.yaml", "metrics.jsonl", "package/package.json"):
        try:
            stat = (folder / name).stat()
            out += [stat.st_mtime, float(stat.st_size)]
        except OSError:
            out += [-1.0, -1.0]
    return tuple(out)


def _summarise(folder: Path, key: tuple[float, ...]) -> RunSummary:
    name, stamp = folder.parent.name, folder.name
    recipe = read_yaml(folder / "recipe.yaml")
    records, bad, _ = read_metrics(folder / "metrics.jsonl")
    manifest = read_json(folder / "package" / "package.json")
    model = recipe.get("model") if isinstance(recipe, dict) else None
    model_type = model.get("type") if isinstance(model, dict) else model if isinstance(model, str) else None
    status = "finished" if manifest else "incomplete" if not recipe else "running"
    validation = {}
    for record in reversed(records):
        metric = next((k for k in record if k.startswith("val_") and k != "val_loss" and finite(record[k]) is not None),
                      "val_loss" if finite(record.get("val_loss")) is not None else None)  # fmt: skip
        if metric is not None:
            validation = {metric: float(record[metric])}
            break
    test = {}
    metrics = (manifest or {}).get("metrics")
    metrics = metrics.get("test") if isinstance(metrics, dict) else None
    metrics = metrics if isinstance(metrics, dict) else {}
    headline = next((k for k in metrics if k != "rows" and finite(metrics[k]) is not None), None)
    if headline is not None:
        test = {headline: float(metrics[headline])}
    task = (manifest or {}).get("task")
    return RunSummary(f"{name}/{stamp}", name, stamp, status, model_type, task, len(records), max(key[::2]),
                      validation, test, bad)  # fmt: skip


def _sort_value(run: RunSummary, key: str) -> Any:
    if key in ("validation", "test"):
        values = getattr(run, key)
        return (1, next(iter(values.values()))) if values else (0, 0.0)
    value = getattr(run, key if key != "started" else "stamp")
    return (value is not None, value if value is not None else "")
