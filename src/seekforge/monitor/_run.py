"""``seekforge monitor``: a served package's prediction log against its reference sketch.

The log is read window by window (the latest window decides the verdict; earlier ones show the trend);
each window's inputs go through :func:`drift_report`, its predictions through the prediction-drift test,
and, when labels have arrived, its rows are joined to them by request id and position for live metrics.
Only the package's own rows are read: a log shared by several model versions is filtered by version.
"""

from __future__ import annotations

import json
import math
import sqlite3
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seekforge.core.deps import require
from seekforge.core.errors import DataError, MissingDependencyError, PackageError
from seekforge.core.io import atomic_dir, write_json_atomic
from seekforge.core.package import read_manifest, read_package_json
from seekforge.core.prediction_log import LogState, answered_rows, log_state, read_log
from seekforge.core.variants import model_version
from seekforge.monitor._drift import DriftReport, Embedder, drift_report
from seekforge.monitor.config import MonitorConfig
from seekforge.runtime import canonical

__all__ = ["MonitorResult", "Window", "metric_text", "monitor_package"]

#: The metrics a monitoring report shows beside each other (live and at training).
HEADLINE = ("accuracy", "f1_macro", "mae", "rmse", "r2")


@dataclass
class Window:
    """One window of the log and what was found in it."""

    start: float
    end: float
    drift: DriftReport
    labelled: int = 0
    live_metrics: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": _iso(self.start),
            "end": _iso(self.end),
            "rows": self.drift.rows,
            "labelled": self.labelled,
            "live_metrics": self.live_metrics,
            "drift": self.drift.to_dict(),
        }


@dataclass
class MonitorResult:
    """The windows (oldest first; the last one is the verdict's), the log's state and where the reports are."""

    package: Path
    log: Path
    version: str
    windows: list[Window]
    state: LogState
    other_versions: int
    test_metrics: dict[str, Any] = field(default_factory=dict)
    output: Path | None = None

    @property
    def current(self) -> Window:
        return self.windows[-1]

    @property
    def drift(self) -> bool:
        return self.current.drift.drift

    @property
    def status(self) -> str:
        """The latest window's verdict: ``drift``, ``no drift`` or ``not enough data``."""
        return self.current.drift.status

    @property
    def verdict(self) -> str:
        return self.current.drift.verdict

    def to_dict(self) -> dict[str, Any]:
        return {
            "package": str(self.package),
            "log": str(self.log),
            "model_version": self.version,
            "status": self.status,
            "verdict": self.verdict,
            "drift": self.drift,
            "log_state": self.state.__dict__,
            "rows_of_other_versions": self.other_versions,
            "test_metrics": {k: v for k, v in self.test_metrics.items() if isinstance(v, int | float)},
            "windows": [w.to_dict() for w in self.windows],
        }


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def _read(db: sqlite3.Connection, version: str, start: float, end: float) -> pd.DataFrame:
    rows = db.execute(
        "SELECT request_id, position, inputs, outputs FROM predictions "
        "WHERE model_version = ? AND ts >= ? AND ts < ? ORDER BY id",
        (version, start, end),
    ).fetchall()
    frame = pd.DataFrame(rows, columns=["request_id", "position", "inputs", "outputs"])
    frame["outputs"] = [json.loads(text) for text in frame["outputs"]]
    return frame


def _inputs(frame: pd.DataFrame, manifest: dict[str, Any]) -> pd.DataFrame:
    """The logged inputs as a table of raw values; images, logged as channel means, become 1x1 images of
    those means, which the reference's image transform measures exactly as it measured whole images."""
    table = pd.DataFrame.from_records([json.loads(text) for text in frame["inputs"]], index=frame.index)
    for feature in manifest["inputs"]:
        name = feature["name"]
        if feature["type"] == "image" and name in table.columns:
            table[name] = [
                None if not isinstance(v, dict) else np.asarray(v["channel_means"], dtype=np.float32).reshape(1, 1, -1)
                for v in table[name]
            ]
    return table


def _labels(path: Path, output: str) -> pd.DataFrame:
    """``request_id``, ``position`` (0 when absent: one record a request) and the output column."""
    from seekforge.data import read_source

    table = read_source(str(path))
    missing = [c for c in ("request_id", output) if c not in table.columns]
    if missing:
        raise DataError(
            f"{path}: labels need the columns request_id and '{output}'; missing {', '.join(missing)}",
            hint="write one row per labelled prediction: request_id[, position], " + output,
        )
    if "position" not in table.columns:
        table["position"] = 0
    table = table[["request_id", "position", output]].dropna(subset=[output])
    table["request_id"] = table["request_id"].astype(str)
    table["position"] = pd.to_numeric(table["position"], errors="coerce")
    bad = table["position"].isna()
    if bad.any():
        raise DataError(f"{path}: column 'position' must hold whole numbers (row {int(np.flatnonzero(bad)[0]) + 2})")
    table["position"] = table["position"].astype(int)
    return table.drop_duplicates(["request_id", "position"], keep="last")


def _live_metrics(joined: pd.DataFrame, manifest: dict[str, Any]) -> dict[str, float]:
    from seekforge.core.metrics import classification_metrics, regression_metrics

    output = manifest["output"]
    outputs = list(joined["outputs"])
    truth = joined[output["name"]]
    if manifest["task"] == "regression":
        predicted = np.array([o["prediction"] for o in outputs], dtype=float)
        return regression_metrics(pd.to_numeric(truth, errors="coerce").to_numpy(dtype=float), predicted)
    classes = [str(c) for c in output["classes"]]
    index = {c: i for i, c in enumerate(classes)}
    codes = truth.map(lambda v: index.get(canonical(v), -1)).to_numpy()
    unknown = codes < 0
    if unknown.any():
        shown = truth[unknown].iloc[0]
        raise DataError(
            f"label {shown!r} is not one of the model's classes ({', '.join(classes)})",
            hint="labels must use the training labels' values",
        )
    proba = np.array([[o["proba"][c] for c in classes] for o in outputs], dtype=float)
    found = classification_metrics(codes, proba, full=False)
    return {k: float(v) for k, v in found.items() if isinstance(v, int | float)}


def monitor_package(
    package: str | Path,
    log: str | Path,
    *,
    window_seconds: float | None = None,
    windows: int = 1,
    labels: str | Path | None = None,
    config: MonitorConfig | None = None,
    output: str | Path | None = None,
    now: float | None = None,
) -> MonitorResult:
    """Drift (and, with labels, live metrics) of the package's logged predictions.

    Args:
        package: The served package (its ``reference.json`` is the reference; it is never modified).
        log: The prediction log ``seekforge serve`` wrote.
        window_seconds: Window length; None: the whole log as one window.
        windows: How many windows back to report (the last decides the verdict).
        labels: Table (CSV, Parquet, JSON lines) of ``request_id``, optional ``position``, and the output.
        config: Tests and thresholds (the recipe's ``monitor:`` section).
        output: Folder to write ``monitor.json`` and ``monitor.html`` to (written atomically).
        now: End of the latest window (default: now).

    Raises:
        PackageError: Not a package, or a package without a reference sketch.
        SeekforgeError: The log is missing or not a prediction log.
        DataError: Labels that do not fit the model.
    """
    package, log = Path(package), Path(log)
    manifest = read_manifest(package)
    if "reference.json" not in manifest.get("files", {}):
        raise PackageError(f"{package} has no reference.json", hint="retrain it with this seekforge to get one")
    reference = read_package_json(package, "reference.json")
    config = config or MonitorConfig()
    state = log_state(log)
    version = model_version(manifest)
    end = now if now is not None else time.time()
    db = read_log(log)
    try:
        (count,) = db.execute("SELECT COUNT(*) FROM predictions WHERE model_version != ?", (version,)).fetchone()
        if window_seconds is None:
            (first,) = db.execute("SELECT MIN(ts) FROM predictions WHERE model_version = ?", (version,)).fetchone()
            bounds = [(first if first is not None else end, math.nextafter(end, math.inf))]
        else:
            bounds = [(end - (i + 1) * window_seconds, end - i * window_seconds) for i in reversed(range(windows))]
        frames = [_read(db, version, start, stop) for start, stop in bounds]
    finally:
        db.close()
    truth = _labels(Path(labels), manifest["output"]["name"]) if labels is not None else None
    preprocessor, embed = _embedder(package, reference, config)
    results = []
    for (start, stop), frame in zip(bounds, frames, strict=True):
        predictions = [output["prediction"] for output in frame["outputs"]]
        inputs = _inputs(frame, manifest)
        report = drift_report(
            reference, inputs, config, predictions=predictions, preprocessor=preprocessor, embed=embed
        )
        window = Window(start, stop, report)
        if truth is not None and len(frame):
            joined = frame.merge(truth, on=["request_id", "position"], how="inner")
            window.labelled = len(joined)
            if len(joined):
                window.live_metrics = _live_metrics(joined, manifest)
        results.append(window)
    result = MonitorResult(
        package, log, version, results, state, int(count), manifest.get("metrics", {}).get("test", {})
    )
    if output is not None:
        result.output = write_reports(result, Path(output))
    return result


def _embedder(package: Path, reference: dict[str, Any], config: MonitorConfig) -> tuple[Any, Embedder | None]:
    """The package's Preprocessor and a function that embeds texts with its model, when its sketch holds
    text embeddings to compare (and ``embedding_test`` is not ``none``); (None, None) otherwise. With them
    text lengths are compared in the model's tokens rather than in words."""
    features = reference.get("features", {}).values()
    if config.embedding_test == "none" or not any("embedding" in sketch for sketch in features):
        return None, None
    try:  # torch for the model, and transformers or tokenizers for a pretrained one
        require("torch", purpose="text embedding drift")
        from seekforge.data import Preprocessor
        from seekforge.models import build_model

        preprocessor = Preprocessor.from_dict(read_package_json(package, "preprocessor.json"))
        model = build_model(package)
    except MissingDependencyError as exc:
        raise MissingDependencyError(exc.message, hint=f"{exc.hint}, or skip it: --set embedding_test=none") from exc
    from seekforge.core.progress import progress_task
    from seekforge.monitor._embedding import embed_texts

    def embed(name: str, texts: pd.Series) -> np.ndarray:
        with progress_task(f"embedding {len(texts):,} live texts", None):
            return embed_texts(model, preprocessor, name, texts)

    return preprocessor, embed


def metric_text(metrics: dict[str, Any], names: tuple[str, ...] = HEADLINE) -> str:
    """``accuracy 0.9120, f1_macro 0.9034``: the headline metrics among ``metrics``."""
    return ", ".join(f"{k} {v:.4f}" for k, v in metrics.items() if k in names and isinstance(v, int | float))


def write_reports(result: MonitorResult, folder: Path) -> Path:
    """``monitor.json`` and ``monitor.html`` in ``folder`` (the folder is replaced whole, atomically)."""
    with atomic_dir(folder, overwrite=True) as tmp:
        write_json_atomic(tmp / "monitor.json", result.to_dict())
        (tmp / "monitor.html").write_text(_html(result), encoding="utf-8")
    return folder


def _html(result: MonitorResult) -> str:
    from seekforge.core.report import esc

    verdict = result.verdict
    rows = []
    for w in result.windows:
        live = metric_text(w.live_metrics or {})
        rows.append(
            f"<tr><td>{esc(_iso(w.start))}</td><td>{esc(_iso(w.end))}</td><td>{w.drift.rows}</td>"
            f"<td>{w.drift.drifted_count}/{len(w.drift.features)}</td><td>{'yes' if w.drift.drift else 'no'}</td>"
            f"<td>{w.labelled}</td><td>{esc(live)}</td></tr>"
        )
    test = metric_text(result.test_metrics)
    state = result.state
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>monitor: {esc(result.version)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left}}.muted{{color:#888}}</style></head><body>
<h1>Monitoring {esc(result.version)}: {esc(verdict)}</h1>
<p>Log {esc(str(result.log))}: {state.rows} rows, {state.sessions} serving sessions ({state.killed_sessions} killed,
{state.lost_rows} rows lost, {state.dropped_rows} dropped); {result.other_versions} rows of other model versions left out.
Test metrics at training: {esc(test)}.</p>
<h2>Windows</h2>
<table><tr><th>from</th><th>to</th><th>rows</th><th>drifted features</th><th>drift</th><th>labelled</th><th>live metrics</th></tr>
{"".join(rows)}</table>
<h2>Latest window</h2>
{result.current.drift.to_html()}
</body></html>
"""


def labelled_log_rows(
    package: str | Path, log: str | Path, labels: str | Path, *, since_seconds: float | None = None,
    every_version: bool = False,
) -> tuple[pd.DataFrame, dict[str, int]]:  # fmt: skip
    """The logged inputs of the package's predictions joined with their labels (by request id and position),
    as a training table: one row per labelled record (a record logged twice keeps its last label), the
    output column last; and the counts on the way (logged, labelled, duplicates dropped).

    Args:
        since_seconds: Only predictions logged this long before the last one (None: all).
        every_version: Also rows logged by other versions of the model (same inputs), not only this one.

    Raises:
        DataError: Labels without request_id or the output, no label matching a logged prediction, or a
            package taking images (the log keeps only their channel means).
    """
    package, log = Path(package), Path(log)
    manifest = read_manifest(package)
    images = [f["name"] for f in manifest["inputs"] if f["type"] == "image"]
    if images:
        raise DataError(
            f"{package} takes images ({', '.join(images)}), which the prediction log keeps only as channel means",
            hint="retrain image models from the image files: seekforge train recipe.yaml --from PACKAGE --data FILE",
        )
    output = manifest["output"]["name"]
    truth = _labels(Path(labels), output)
    db = read_log(log)
    try:
        where, args = (
            (f"WHERE {answered_rows(db)}", ())
            if every_version
            else ("WHERE model_version = ?", (model_version(manifest),))
        )
        (last,) = db.execute(f"SELECT MAX(ts) FROM predictions {where}", args).fetchone()
        start = -math.inf if since_seconds is None or last is None else last - since_seconds
        rows = db.execute(
            f"SELECT request_id, position, inputs FROM predictions {where} {'AND' if where else 'WHERE'} ts >= ? "
            "ORDER BY id", (*args, start),
        ).fetchall()  # fmt: skip
    finally:
        db.close()
    logged = pd.DataFrame(rows, columns=["request_id", "position", "inputs"])
    joined = logged.merge(truth, on=["request_id", "position"], how="inner")
    if joined.empty:
        raise DataError(
            f"{labels}: none of its {len(truth):,} labels matches a prediction in {log} "
            f"({len(logged):,} logged{'' if every_version else ' by this version'})",
            hint="labels name a logged request_id (and position within the request); check the ids and the window",
        )
    table = pd.DataFrame.from_records([json.loads(text) for text in joined["inputs"]])
    table[output] = joined[output].to_numpy()
    before = len(table)
    table = table.drop_duplicates(keep="last").reset_index(drop=True)
    table.attrs["source"] = f"{log} joined with {labels}"
    counts = {"logged": len(logged), "labels": len(truth), "labelled": before, "duplicates": before - len(table)}
    return table, counts
