"""Predict, evaluate and time with a package's ONNX model and onnxruntime alone: no torch, no pandas.

For packages whose inputs are numeric, binary and category features, ``seekforge export`` writes ONNX
graphs that start from raw feature values (the fitted imputation, scaling and vocabularies are in the
graph), so the ``runtime`` extra (numpy and onnxruntime) is enough to use them. Packages with text and
image inputs (fusion models too) export graphs that take encoded inputs: the runtime encodes the raw values
itself, in numpy (:class:`InputEncoder`: the training pipeline's own code), with ``tokenizers`` for texts
and Pillow for image files. ``seekforge.load`` returns this predictor where torch is not installed::

    from seekforge.runtime import load
    predictor = load("runs/breast_cancer/<stamp>/package")
    predictor.predict([{"radius_mean": 14.1, ...}])   # {"prediction": [...], "proba_benign": array, ...}
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from seekforge.core.batch import trim_tokens
from seekforge.core.errors import DataError, PackageError
from seekforge.core.hardware import int8_portability
from seekforge.core.metrics import classification_metrics, regression_metrics
from seekforge.core.package import read_manifest, read_package_json
from seekforge.core.variants import raw_onnx_exports, runtime_onnx_exports, takes_raw
from seekforge.runtime._encode import (
    FALSE,
    GRAPH_TYPES,
    MISSING,
    TRUE,
    as_columns,
    binary_table,
    canonical,
    graph_holds,
    is_missing,
    raw_feeds,
    session,
    softmax,
)
from seekforge.runtime._history import add_history, columns_of, derived_inputs, history_sources, history_values
from seekforge.runtime._inputs import (
    InputEncoder,
    Tokens,
    calendar_parts,
    datetime_columns,
    encode_datetimes,
    encode_images,
    encode_sequences,
    epoch_seconds,
    fit_pixels,
    hours_of_week,
    read_pixels,
    read_sequence,
    sequence_numbers,
)
from seekforge.runtime._records import read_records, write_records

__all__ = [
    "FALSE",
    "GRAPH_TYPES",
    "MISSING",
    "TRUE",
    "InputEncoder",
    "PackageView",
    "RuntimePredictor",
    "Tokens",
    "add_history",
    "as_columns",
    "bench_runtime",
    "binary_table",
    "calendar_parts",
    "canonical",
    "columns_of",
    "datetime_columns",
    "derived_inputs",
    "encode_datetimes",
    "encode_images",
    "encode_sequences",
    "epoch_seconds",
    "fit_pixels",
    "graph_holds",
    "history_sources",
    "history_values",
    "hours_of_week",
    "is_missing",
    "load",
    "raw_feeds",
    "read_pixels",
    "read_records",
    "read_sequence",
    "sequence_numbers",
    "session",
    "softmax",
    "write_records",
]


class PackageView:
    """What every predictor knows of its package: where it is, its manifest, task and classes."""

    def __init__(self, path: Path, manifest: dict[str, Any]) -> None:
        self.path = path
        self.manifest = manifest

    @property
    def task(self) -> str:
        return str(self.manifest["task"])

    @property
    def classes(self) -> list[Any] | None:
        return self.manifest["output"].get("classes")


class RuntimePredictor(PackageView):
    """A package's ONNX model on onnxruntime, fed raw values or inputs encoded here (``encoder``). Use
    :func:`load` to get one."""

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any],
        state: dict[str, Any],
        session: Any,
        backend: str = "onnxruntime",
        encoder: InputEncoder | None = None,
        *,
        raw: bool = False,
    ) -> None:
        super().__init__(path, manifest)
        self.session = session
        self.backend = backend
        self._target = state.get("target")
        self.encoder = encoder  # None: the graph takes raw values only
        self.raw = raw  # the graph holds the tabular preprocessing (texts, images, ... come encoded)
        self._lists = [f["name"] for f in manifest["inputs"] if f["type"] in ("sequence", "image")]
        self._names = [i.name for i in session.get_inputs()]

    def logits(self, records: Any) -> np.ndarray:
        columns = as_columns(records, lists=self._lists)
        if not columns or not any(len(v) for v in columns.values()):
            raise DataError("nothing to predict: no records were given")
        columns = add_history(columns, self.manifest["inputs"])  # whole, before chunks: an entity's rows see each other
        if self.encoder is None:
            return self._run(raw_feeds(self.manifest["inputs"], columns))
        rows = len(next(iter(columns.values())))
        parts = []
        for start in range(0, rows, ENCODED_ROWS):  # encoded inputs (pixels, padded tokens) a chunk at a time
            chunk = {name: values[start : start + ENCODED_ROWS] for name, values in columns.items()}
            where = lambda pos, start=start: f"row {start + pos}"  # noqa: E731
            if self.raw:
                feeds = self.encoder.graph_feeds(self.manifest["inputs"], chunk, self._names, place=where)
            else:
                feeds = self.encoder.feeds(chunk, place=where)
            if missing := [name for name in self._names if name not in feeds]:
                raise PackageError(
                    f"{self.path}: its ONNX graph takes {missing}, which its preprocessing does not make"
                )
            parts.append(self._run({name: feeds[name] for name in self._names}))
        return np.concatenate(parts)

    def _run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        try:
            return np.asarray(self.session.run(None, trim_tokens(feeds))[0])  # as training's batches are
        except Exception as exc:  # onnxruntime's errors derive from Exception only
            raise PackageError(f"onnxruntime failed to run {self.path}: {exc}") from exc

    def decoded(self, records: Any) -> tuple[list[Any], np.ndarray | None]:
        """Predictions in the label's own values, and class probabilities ``[n, classes]`` (None for a
        regressor)."""
        return self._decode(self.logits(records))

    def _decode(self, logits: np.ndarray) -> tuple[list[Any], np.ndarray | None]:
        if self.task == "regression":
            assert self._target is not None
            values = logits.astype(np.float64).reshape(-1) * self._target["std"] + self._target["mean"]
            return values.tolist(), None
        proba = softmax(logits)
        classes = self.classes or []
        return [classes[i] for i in proba.argmax(axis=1).tolist()], proba

    def predict(self, records: Any) -> dict[str, Any]:
        """``prediction`` (a list, in the label's own values) and, for classifiers, ``proba_<class>``
        arrays; ``pandas.DataFrame(result)`` makes it a table."""
        predictions, proba = self.decoded(records)
        out: dict[str, Any] = {"prediction": predictions}
        if proba is not None:
            out.update({f"proba_{label}": proba[:, i] for i, label in enumerate(self.classes or [])})
        return out

    def predict_proba(self, records: Any) -> np.ndarray:
        if self.task != "classification":
            raise DataError("predict_proba is for classifiers; this package is a regressor")
        return softmax(self.logits(records))

    def evaluate(self, records: Any) -> dict[str, Any]:
        """Task metrics on labelled records (the output column must be present), as the full install's
        ``Predictor.evaluate`` gives them.

        Raises:
            DataError: The output column is missing, or holds a missing value or a class the model does not know.
        """
        columns = as_columns(records, lists=self._lists)
        label = self.manifest["output"]["name"]
        if label not in columns:
            raise DataError(f"records lack the output column '{label}', which evaluating needs")
        truth = columns[label]
        if any(is_missing(v) for v in truth):
            row = next(i for i, v in enumerate(truth) if is_missing(v))
            raise DataError(f"row {row}: output column '{label}' is missing", hint="drop unlabelled rows")
        logits = self.logits(columns)
        if self.task == "regression":
            predicted = self._decode(logits)[0]
            try:
                return {"rows": len(truth), **regression_metrics(np.asarray(truth, dtype=float), np.asarray(predicted))}
            except ValueError:
                bad = next(v for v in truth if not _is_number(v))
                raise DataError(f"output column '{label}' holds {bad!r}, which is not a number") from None
        index = {canonical(c): i for i, c in enumerate(self.classes or [])}
        unknown = next((v for v in truth if canonical(v) not in index), None)
        if unknown is not None:
            raise DataError(
                f"output column '{label}' holds {unknown!r}, which is not a class of this model",
                hint=f"its classes: {', '.join(map(str, self.classes or []))}",
            )
        target = np.array([index[canonical(v)] for v in truth], dtype=np.int64)
        return {"rows": len(truth), **classification_metrics(target, softmax(logits))}


#: Rows encoded and run at a time when the runtime encodes a graph's inputs itself
ENCODED_ROWS = 256


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def load(
    path: str | Path, *, backend: str = "auto", verify: bool = True, threads: int | None = None
) -> RuntimePredictor:
    """Load one of a package's ONNX exports for prediction with onnxruntime: one that takes raw values, or
    one whose inputs the runtime encodes (texts, images; see :class:`InputEncoder`).

    Args:
        path: The package directory.
        backend: ``auto`` (the backend ``seekforge optimize`` chose, when it is one of these, else the fp32
            export), or an ONNX backend the package holds: ``onnxruntime``, ``onnxruntime-int8``, ...
        verify: Check every file's sha256 against ``package.json``.
        threads: Intra-op threads of the session; None: onnxruntime's default.

    Raises:
        PackageError: Not a package, a file was modified, or the package has no such export.
        MissingDependencyError: onnxruntime is not installed.
    """
    from seekforge.core.deps import extra_command

    path = Path(path)
    manifest = read_manifest(path, verify=verify)
    usable = runtime_onnx_exports(manifest)
    chosen = manifest.get("serving", {}).get("backend")
    if backend == "auto":
        backend = chosen if chosen in usable else "onnxruntime"
    if backend not in usable:
        export = manifest.get("exports", {}).get("onnx")
        if backend != "onnxruntime":
            why = f"its backend '{backend}' is not an ONNX export it holds (it holds: {', '.join(usable) or 'none'})"
        elif export is None:
            why = "it has no fp32 ONNX export"
        elif not export["parity"]["passed"]:
            why = "its fp32 ONNX export failed its parity gate"
        else:
            why = "its ONNX export is an early-exit chain of graphs, which the full install runs"
        can_export = export is None or not export["parity"]["passed"]
        raise PackageError(
            f"{path} cannot be served by the runtime install alone: {why}",
            hint=(
                f"where seekforge is fully installed, run: seekforge export {path} --format onnx; or "
                if can_export
                else ""
            )
            + f"install the full seekforge here: {extra_command('all')}",
        )
    if why := int8_portability(usable[backend]):
        warnings.warn(why, RuntimeWarning, stacklevel=2)
    state = read_package_json(path, "preprocessor.json")
    record = usable[backend]
    raw = takes_raw(record)
    encoder = None if raw and graph_holds(f["type"] for f in manifest["inputs"]) else InputEncoder(state)
    return RuntimePredictor(
        path, manifest, state, session(path / record["file"], threads=threads), backend, encoder, raw=raw
    )


def bench_runtime(
    package: str | Path,
    *,
    backends: list[str] | None = None,
    batches: tuple[int, ...] | list[int] = (1, 8, 32),
    threads: int | None = None,
    warmup: int = 5,
    seconds: float = 2.0,
    max_runs: int = 1000,
    rounds: int = 4,
) -> list[Any]:
    """Time a package's raw-input ONNX exports on onnxruntime, as ``seekforge.export.bench_package`` times
    every backend where torch is installed: the package's held-out rows (``samples.json``), repeated to fill
    each batch, go through the graph whole.

    Returns:
        One :class:`seekforge.core.timing.BenchRow` per backend and batch size.

    Raises:
        ConfigError: A backend this install cannot time (torch, OpenVINO, or an export the package lacks).
        PackageError: The package carries no raw held-out rows.
    """
    from seekforge.core.deps import extra_command
    from seekforge.core.errors import ConfigError
    from seekforge.core.hardware import hardware
    from seekforge.core.timing import bench_row, fill_rows, time_interleaved

    package = Path(package)
    manifest = read_manifest(package)
    images = any(f["type"] == "image" for f in manifest["inputs"])  # held-out images are kept encoded only
    usable = {} if images else raw_onnx_exports(manifest)
    chosen = list(backends or usable)
    missing = [b for b in chosen if b not in usable]
    if missing or not chosen:
        raise ConfigError(
            f"without torch, seekforge bench times the raw-input ONNX exports a package holds; {package} has "
            f"{', '.join(usable) or 'none'}" + (f", not {', '.join(missing)}" if missing else ""),
            hint=(
                "its held-out rows are kept as tensors (its image inputs, or all its inputs when none is numeric, "
                "binary or category): time it where seekforge is fully installed (seekforge bench), or install "
                f"it here: {extra_command('all')}"
                if runtime_onnx_exports(manifest) and not usable
                else f"export one where seekforge is fully installed, or install it here: {extra_command('all')}"
            ),
        )
    if "samples.json" not in manifest["files"]:
        raise PackageError(f"{package} carries no raw held-out rows (samples.json) to time the model on")
    columns = read_package_json(package, "samples.json")
    if graph_holds(f["type"] for f in manifest["inputs"]):
        feeds = raw_feeds(manifest["inputs"], columns)
    else:  # texts and sequences raw as kept, encoded here as a request's would be
        feeds = trim_tokens(
            InputEncoder(read_package_json(package, "preprocessor.json")).graph_feeds(manifest["inputs"], columns)
        )
    threads = threads or hardware().cores
    calls = {}
    for backend in chosen:
        run = session(package / usable[backend]["file"], threads=threads)
        graph_feeds = {i.name: feeds[i.name] for i in run.get_inputs()}
        for batch in batches:
            calls[(backend, batch)] = functools.partial(run.run, None, fill_rows(graph_feeds, batch))
    times = time_interleaved(calls, warmup=warmup, seconds=seconds, max_runs=max_runs, rounds=rounds)
    return [bench_row(backend, batch, threads, times[(backend, batch)]) for backend, batch in calls]
