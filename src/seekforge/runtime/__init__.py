"""Predict with a package's ONNX model and onnxruntime alone: no torch, no pandas.

For packages whose inputs are numeric, binary and category features, ``seekforge export`` writes an
ONNX graph that starts from raw feature values (the fitted imputation, scaling and vocabularies are in
the graph), so ``pip install "seekforge[runtime]"`` is enough to serve it::

    from seekforge.runtime import load
    predictor = load("runs/breast_cancer/<stamp>/package")
    predictor.predict([{"radius_mean": 14.1, ...}])   # {"prediction": [...], "proba_benign": array, ...}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from seekforge.core.errors import DataError, PackageError
from seekforge.core.package import read_manifest
from seekforge.runtime._encode import (
    GRAPH_TYPES,
    MISSING,
    as_columns,
    binary_table,
    canonical,
    raw_feeds,
    session,
    softmax,
)

__all__ = [
    "GRAPH_TYPES",
    "MISSING",
    "PackageView",
    "RuntimePredictor",
    "as_columns",
    "binary_table",
    "canonical",
    "load",
    "raw_feeds",
    "session",
    "softmax",
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
    """A package's raw-input ONNX model on onnxruntime. Use :func:`load` to get one."""

    backend = "onnxruntime"

    def __init__(self, path: Path, manifest: dict[str, Any], state: dict[str, Any], session: Any) -> None:
        super().__init__(path, manifest)
        self.session = session
        self._target = state.get("target")

    def logits(self, records: Any) -> np.ndarray:
        columns = as_columns(records)
        if not columns or not any(len(v) for v in columns.values()):
            raise DataError("nothing to predict: no records were given")
        feeds = raw_feeds(self.manifest["inputs"], columns)
        try:
            return np.asarray(self.session.run(None, feeds)[0])
        except Exception as exc:  # onnxruntime's errors derive from Exception only
            raise PackageError(f"onnxruntime failed to run {self.path}: {exc}") from exc

    def decoded(self, records: Any) -> tuple[list[Any], np.ndarray | None]:
        """Predictions in the label's own values, and class probabilities ``[n, classes]`` (None for a
        regressor)."""
        logits = self.logits(records)
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


def load(path: str | Path, *, verify: bool = True, threads: int | None = None) -> RuntimePredictor:
    """Load a package's raw-input ONNX export for prediction with onnxruntime.

    Raises:
        PackageError: Not a package, a file was modified, or the package has no passing raw-input export.
        MissingDependencyError: onnxruntime is not installed.
    """
    path = Path(path)
    manifest = read_manifest(path, verify=verify)
    export = manifest.get("exports", {}).get("onnx")
    if export is None or not export["parity"]["passed"] or export.get("inputs") != "raw":
        why = (
            "has no fp32 ONNX export"
            if export is None
            else "its ONNX export failed its parity gate"
            if not export["parity"]["passed"]
            else "its ONNX export takes encoded inputs (text or image features need the full install)"
        )
        raise PackageError(
            f"{path} cannot be served by the runtime alone: it {why}",
            hint=f'run: seekforge export {path} --format onnx; or use seekforge.load with pip install "seekforge[all]"',
        )
    state = json.loads((path / "preprocessor.json").read_text(encoding="utf-8"))
    return RuntimePredictor(path, manifest, state, session(path / export["file"], threads=threads))
