"""One model a server runs: a loaded package with its request schema and its own dynamic batcher.

A server holds one to three of them, by role: ``primary`` answers requests, ``canary`` answers a share of
them, ``shadow`` is sent every request and its answers are logged, never returned. A swap replaces one
role's model with a freshly loaded one while requests keep arriving (see ``ModelService.swap``).
"""

from __future__ import annotations

import functools
import importlib.util
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seekforge.core.errors import ConfigError, DataError
from seekforge.core.io import sha256_file
from seekforge.core.package import read_manifest
from seekforge.core.variants import model_version, raw_onnx_exports
from seekforge.serve._batcher import DynamicBatcher
from seekforge.serve._schema import RecordSchema
from seekforge.serve.config import ServeConfig

Rows = list[dict[str, Any]]


def runtime_backend(manifest: dict[str, Any], backend: str) -> str | None:
    """The backend onnxruntime alone serves for ``backend`` (``auto``: the one ``optimize`` chose, else
    onnxruntime), when the package holds it as a passing ONNX export that takes raw values; else None."""
    wanted = backend if backend != "auto" else manifest.get("serving", {}).get("backend", "onnxruntime")
    return wanted if wanted in raw_onnx_exports(manifest) else None


def runtime_only(manifest: dict[str, Any], backend: str) -> bool:
    """Whether ``backend`` serves this package with onnxruntime alone (see :func:`runtime_backend`)."""
    return runtime_backend(manifest, backend) is not None


def open_predictor(path: Path, backend: str, *, threads: int | None, verify: bool) -> tuple[Any, str]:
    """The package's predictor and the backend it runs on.

    A backend that runs one of the package's raw-input ONNX exports is served by onnxruntime alone (no
    torch in the process; see :func:`runtime_backend`); anything else goes through :func:`seekforge.load`.
    """
    which = runtime_backend(read_manifest(path, verify=verify), backend)
    if which is not None and importlib.util.find_spec("onnxruntime"):
        from seekforge import runtime

        return runtime.load(path, backend=which, verify=verify, threads=threads), which
    from seekforge.serve._load import load  # without torch, it says what this package and backend need

    predictor = load(path, backend=backend, verify=verify, threads=threads)
    return predictor, predictor.backend


def rows_of(predictions: Sequence[Any], proba: np.ndarray | None, classes: Sequence[Any] | None) -> Rows:
    """Per-row outputs ``{"prediction": v, "proba": {class: p}}`` from a predictor's decoded outputs.

    Raises:
        DataError: The model gave a non-finite output (inputs far outside what it was trained on).
    """
    numbers = np.asarray(predictions, dtype=np.float64) if proba is None else proba
    finite = np.isfinite(numbers)
    if not finite.all():
        bad = np.flatnonzero(~finite.reshape(len(numbers), -1).all(axis=1)).tolist()
        raise DataError(
            f"the model's output is not a finite number for record{'s' * (len(bad) > 1)} "
            f"{', '.join(map(str, bad[:10]))}: their values are too far outside the training data"
        )
    values = [_plain(v) for v in predictions]
    if proba is None or not classes:
        return [{"prediction": v} for v in values]
    names = [str(c) for c in classes]
    return [
        {"prediction": v, "proba": dict(zip(names, row, strict=True))}
        for v, row in zip(values, proba.tolist(), strict=True)
    ]


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _title(name: str) -> str:
    """``reviews_v2.1`` -> ``ReviewsV21`` (recipe names hold letters, digits, ``_``, ``.`` and ``-``)."""
    return "".join(part.capitalize() for part in re.split(r"[_.-]", name)) or "Model"


@dataclass
class ServedModel:
    """A loaded package in one role: what it is, how it checks records, and the batcher that runs it."""

    role: str
    source: str  # what was asked for: a folder, or a registry reference followed while serving
    path: Path
    digest: str  # sha256 of its package.json: what tells a reloaded package from the one served
    predictor: Any
    backend: str
    manifest: dict[str, Any]
    version: str
    schema: RecordSchema
    image_fields: list[str]
    batcher: DynamicBatcher

    @property
    def classes(self) -> Sequence[Any] | None:
        return self.predictor.classes  # type: ignore[no-any-return]

    def predict_rows(self, rows: Rows) -> Rows:
        """Outputs of validated rows."""
        return _runner(self.predictor)(rows)

    def describe(self) -> dict[str, str]:
        return {"name": self.manifest["name"], "version": self.version, "backend": self.backend, "role": self.role}


def load_model(
    role: str,
    source: str,
    path: Path,
    config: ServeConfig,
    *,
    on_batch: Callable[[int, float, bool], None] | None = None,
    arriving: Callable[[], int] | None = None,
) -> ServedModel:
    """Load the package at ``path`` (``source`` resolved) for ``role``; blocking, so swaps call it off the
    event loop. Its batcher is made here and started by the service."""
    predictor, backend = open_predictor(path, config.backend, threads=config.threads, verify=config.verify)
    manifest: dict[str, Any] = predictor.manifest
    batcher = DynamicBatcher(
        _runner(predictor),  # the predictor alone: a swapped-out model is freed as soon as it is let go
        max_batch_rows=config.max_batch_rows if config.batching else 1,
        max_wait_ms=config.max_wait_ms if config.batching else 0.0,
        max_queue_rows=config.max_queue_rows,
        on_batch=on_batch,
        arriving=arriving,
        inline_below_ms=config.inline_below_ms,
    )
    return ServedModel(
        role=role,
        source=source,
        path=path,
        digest=sha256_file(path / "package.json"),
        predictor=predictor,
        backend=backend,
        manifest=manifest,
        version=model_version(manifest),
        schema=RecordSchema(
            manifest["inputs"], name=f"{_title(manifest['name'])}Record", coerce_numbers=config.coerce_numbers
        ),
        image_fields=[f["name"] for f in manifest["inputs"] if f["type"] == "image"],
        batcher=batcher,
    )


def _runner(predictor: Any) -> Callable[[Rows], Rows]:
    """Validated rows -> output rows; a model with early exit adds each row's ``exit_layer``."""
    routed = getattr(predictor, "decoded_exits", None)  # the torch-free runtime has no early-exit models

    def run(rows: Rows) -> Rows:
        if routed is None:
            return rows_of(*predictor.decoded(rows), predictor.classes)
        predictions, proba, layers = routed(rows)
        out = rows_of(predictions, proba, predictor.classes)
        if layers is not None:
            for row, layer in zip(out, layers.tolist(), strict=True):
                row["exit_layer"] = layer
        return out

    return run


def resolve_source(source: str, registry: str | None) -> Path:
    """The package folder ``source`` names now: itself, or where a ``registry:NAME@ALIAS`` reference points
    (checksum checked) in ``registry`` (None: ``$SEEKFORGE_REGISTRY``, else the default file)."""
    if not source.startswith("registry:"):
        return Path(source)
    from seekforge.registry import location

    return _registry(str(location(registry))).resolve(source)


@functools.lru_cache(maxsize=4)
def _registry(where: str) -> Any:
    """One Registry (one database engine) per place, however often a followed reference is resolved."""
    from seekforge.registry import Registry

    return Registry(where)


def check_compatible(served: ServedModel, other: ServedModel) -> None:
    """``other`` takes the records ``served`` takes and answers in the same form, so it can answer the same
    clients (as a replacement, a canary or a shadow).

    Raises:
        ConfigError: The inputs or the output differ; says how.
    """
    problems = []
    mine = {f["name"]: f for f in served.manifest["inputs"]}
    theirs = {f["name"]: f for f in other.manifest["inputs"]}
    if missing := sorted(set(mine) - set(theirs)):
        problems.append(f"it lacks the input{'s' * (len(missing) > 1)} {', '.join(missing)}")
    if extra := sorted(set(theirs) - set(mine)):
        problems.append(f"it takes the new input{'s' * (len(extra) > 1)} {', '.join(extra)}")
    for name in sorted(set(mine) & set(theirs)):
        if mine[name]["type"] != theirs[name]["type"]:
            problems.append(f"input {name} is {theirs[name]['type']}, not {mine[name]['type']}")
    out_a, out_b = served.manifest["output"], other.manifest["output"]
    if (out_a["name"], out_a["type"], served.manifest["task"]) != (
        out_b["name"],
        out_b["type"],
        other.manifest["task"],
    ):
        problems.append(f"its output is {out_b['name']} ({out_b['type']}), not {out_a['name']} ({out_a['type']})")
    if problems:
        raise ConfigError(
            f"{other.source} ({other.version}) cannot stand in for {served.source} ({served.version}) as the "
            f"{other.role} model: {'; '.join(problems)}",
            hint="serve it as a new deployment; a swap, canary or shadow keeps the clients' request schema",
        )
