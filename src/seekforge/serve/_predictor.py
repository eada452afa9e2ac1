"""The Predictor: a loaded model package that predicts from raw records with the package's own
preprocessor, so training and serving cannot drift apart."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from seekforge.core.errors import DataError, PackageError
from seekforge.core.package import read_manifest, read_package_json
from seekforge.core.variants import (
    BACKENDS,
    BY_BACKEND,
    TORCH_BACKENDS,
    available_backends,
    passing_export,
    takes_raw,
)
from seekforge.data import Preprocessor, check_table, row_place
from seekforge.models import build_model, for_backend, infer, infer_exits
from seekforge.runtime import PackageView, as_columns, graph_holds, raw_feeds
from seekforge.train import evaluate_logits

Records = pd.DataFrame | Sequence[Mapping[str, Any]] | Mapping[str, Sequence[Any]]


def to_frame(records: Records) -> pd.DataFrame:
    """Accept a DataFrame, a list of row mappings, a mapping of columns, or one record as a mapping."""
    if isinstance(records, pd.DataFrame):
        return records
    frame = pd.DataFrame(as_columns(records))
    frame.attrs["source"] = "records"
    return frame


class Predictor(PackageView):
    """Predicts with a model package.

    Use :func:`seekforge.load` to get one. ``predict`` returns a DataFrame with a ``prediction`` column
    and, for classifiers, a ``proba_<class>`` column per class; for a model with early exit, an
    ``exit_layer`` column too (the encoder layer each row left at).

    ``runner`` maps what :meth:`encode` makes to logits, or, for a model with early exit, to logits and
    each row's exit layer.
    """

    def __init__(
        self,
        path: Path,
        manifest: dict[str, Any],
        preprocessor: Preprocessor,
        runner: Callable[[Any], torch.Tensor | tuple[torch.Tensor, torch.Tensor]],
        backend: str,
        *,
        raw: bool = False,
    ) -> None:
        super().__init__(path, manifest)
        self.preprocessor = preprocessor
        self.runner = runner
        self.backend = backend
        self.raw = raw  # the runner's graph holds the preprocessing and takes raw feature values
        self.chunk_rows = 2048

    def logits(self, records: Records) -> torch.Tensor:
        """Model outputs for every record, in order (see :meth:`routed`)."""
        return self.routed(records)[0]

    def routed(self, records: Records) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Model outputs for every record, in order, and for a model with early exit the layer each row
        left at (None for other models).

        Large inputs go in chunks of :attr:`chunk_rows`, and a worker thread preprocesses the next chunk
        while the model runs on the current one (torch and onnxruntime release the GIL while they compute,
        so image decoding, tokenizing and table checks of the next chunk proceed meanwhile).
        """
        frame = to_frame(records)
        if frame.empty:
            raise DataError("nothing to predict: no records were given")
        frame = self.preprocessor.with_history(frame)  # whole, before chunks: an entity's rows see each other
        if len(frame) <= self.chunk_rows:
            return _pair(self.runner(self.encode(frame)))
        chunks = [frame.iloc[start : start + self.chunk_rows] for start in range(0, len(frame), self.chunk_rows)]
        outputs: list[tuple[torch.Tensor, torch.Tensor | None]] = []
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seekforge-preprocess") as pool:
            pending = pool.submit(self.encode, chunks[0])
            for following in [*chunks[1:], None]:
                encoded = pending.result()
                if following is not None:
                    pending = pool.submit(self.encode, following)
                outputs.append(_pair(self.runner(encoded)))
        layers = [exits for _, exits in outputs if exits is not None]
        return torch.cat([logits for logits, _ in outputs]), torch.cat(layers) if layers else None

    def encode(self, frame: pd.DataFrame) -> Any:
        """What the runner takes: the preprocessor's tensors, or checked raw values for a raw graph."""
        if not self.raw:
            return self.preprocessor.transform(frame)
        checked = check_table(self.preprocessor.with_history(frame), self.preprocessor.features, with_output=False)
        columns, place = as_columns(checked), functools.partial(row_place, frame)
        if graph_holds(f["type"] for f in self.manifest["inputs"]):
            return raw_feeds(self.manifest["inputs"], columns, place=place)
        return self.preprocessor.encoder.graph_feeds(self.manifest["inputs"], columns, place=place)

    def decoded(self, records: Records) -> tuple[list[Any], np.ndarray | None]:
        """Predictions in the label's own values, and class probabilities ``[n, classes]`` (None for a
        regressor)."""
        return self.decoded_exits(records)[:2]

    def decoded_exits(self, records: Records) -> tuple[list[Any], np.ndarray | None, np.ndarray | None]:
        """:meth:`decoded`, and the layer each row left at for a model with early exit (else None)."""
        logits, layers = self.routed(records)
        values, proba = self.preprocessor.decode(logits)
        return values, proba, None if layers is None else layers.numpy()

    def predict(self, records: Records) -> pd.DataFrame:
        """Predictions (and class probabilities, and exit layers) for each record, in order."""
        values, proba, layers = self.decoded_exits(records)
        out = pd.DataFrame({"prediction": values})
        if proba is not None:
            for i, label in enumerate(self.classes or []):
                out[f"proba_{label}"] = proba[:, i]
        if layers is not None:
            out["exit_layer"] = layers
        return out

    def predict_proba(self, records: Records) -> np.ndarray:
        """Class probabilities ``[n, classes]`` in the order of :attr:`classes`."""
        if self.task != "classification":
            raise DataError("predict_proba is for classifiers; this package is a regressor")
        return self.preprocessor.decode(self.logits(records))[1]  # type: ignore[return-value]

    def outcomes(self, records: Records) -> tuple[np.ndarray, np.ndarray]:
        """The true and the predicted outputs of labelled records, in their order: class indices (in the
        order of :attr:`classes`) for a classifier, values for a regressor."""
        logits, target = self._labelled(records)
        if self.task == "regression":
            return self.preprocessor.decode_target(target), self.preprocessor.decode_target(logits)
        return target.numpy(), logits.argmax(dim=1).numpy()

    def evaluate(self, records: Records) -> dict[str, Any]:
        """Task metrics on labelled records (the output column must be present)."""
        return evaluate_logits(self.preprocessor, *self._labelled(records))

    def _labelled(self, records: Records) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's outputs and the encoded labels of records whose output column is present."""
        frame = check_table(self.preprocessor.with_history(to_frame(records)), self.preprocessor.features)
        return self.logits(frame), self.preprocessor.transform_target(frame)


def _pair(output: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor | None]:
    return output if isinstance(output, tuple) else (output, None)


def _auto_backend(manifest: dict[str, Any]) -> str:
    """The backend ``optimize`` chose, else onnxruntime on a passing fp32 export, else torch."""
    usable = available_backends(manifest)
    chosen = manifest.get("serving", {}).get("backend")
    if chosen in usable:
        return str(chosen)
    return "onnxruntime" if "onnxruntime" in usable else "torch"


def load(path: str | Path, *, backend: str = "auto", verify: bool = True, threads: int | None = None) -> Predictor:
    """Load a model package for prediction.

    Args:
        path: The package directory (``runs/<name>/<stamp>/package``).
        backend: ``torch``; the backend of an export the package holds, passed through its parity gate
            (``onnxruntime``, ``onnxruntime-int8``, ``openvino``, ...: see ``seekforge.export.VARIANTS``); or
            ``auto``: the backend ``seekforge optimize`` chose, else
            onnxruntime when the package has a passing fp32 export and onnxruntime is installed, else torch.
        verify: Check every file's sha256 against ``package.json``.
        threads: Intra-op threads of an exported backend's session; None: the backend's default.

    Raises:
        PackageError: Not a package, a file is missing or was modified, or the backend has no model here.
    """
    if backend not in ("auto", *BACKENDS):
        raise PackageError(f"unknown backend '{backend}'; available: auto, {', '.join(BACKENDS)}")
    path = Path(path)
    manifest = read_manifest(path, verify=verify)
    if backend == "auto":
        backend = _auto_backend(manifest)
    export = passing_export(manifest, backend)
    if backend == "torch-channels-last" and backend not in available_backends(manifest):
        raise PackageError(f"{path}: backend 'torch-channels-last' runs a model over images, which this one is not",
                           hint="use backend torch")  # fmt: skip
    if backend not in TORCH_BACKENDS and export is None:
        variant = BY_BACKEND[backend]
        reason = "failed its parity gate" if variant.name in manifest.get("exports", {}) else "is missing"
        flag = " --optimize-graph" if variant.graph_optimized else ""
        raise PackageError(
            f"{path}: the {variant.name} export that backend '{backend}' runs {reason}",
            hint=f"run: seekforge export {path} --format {variant.format} --precision {variant.precision}{flag}",
        )
    try:
        preprocessor = Preprocessor.from_dict(read_package_json(path, "preprocessor.json"))
        if export is not None:
            from seekforge.export import open_runner

            runner: Callable[[Any], Any] = open_runner(path, export, threads=threads)
        else:
            model = for_backend(build_model(path, merge=True), backend)
            routed = getattr(model, "policy", None) is not None  # early exit: each row's exit layer too
            runner = functools.partial(infer_exits if routed else infer, model, batch_size=256)
    except (KeyError, ValueError, OSError) as exc:
        if isinstance(exc, PackageError):
            raise
        raise PackageError(f"{path}: cannot rebuild the model ({type(exc).__name__}: {exc})") from exc
    return Predictor(path, manifest, preprocessor, runner, backend, raw=takes_raw(export))
