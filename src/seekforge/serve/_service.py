"""What both protocols call: one loaded package behind a request schema, a dynamic batcher, metrics and the
prediction log. The HTTP app and the gRPC servicer are thin translations onto :class:`ModelService`."""

from __future__ import annotations

import asyncio
import hmac
import importlib.util
import itertools
import logging
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seekforge.core.errors import ConfigError, DataError, SeekforgeError
from seekforge.core.package import read_manifest
from seekforge.core.prediction_log import LogEntry, PredictionLog, json_safe
from seekforge.core.variants import model_version, raw_onnx_exports
from seekforge.serve._batcher import DeadlineExceeded, DynamicBatcher, Overloaded, ShuttingDown
from seekforge.serve._cache import PredictionCache
from seekforge.serve._metrics import ServeMetrics
from seekforge.serve._schema import FieldError, RecordSchema
from seekforge.serve.config import ServeConfig

__all__ = [
    "BadRequest",
    "Failure",
    "InvalidRecords",
    "ModelService",
    "ServeConfig",
    "TooLarge",
    "Unauthorized",
    "failure_of",
    "model_version",
]

Rows = list[dict[str, Any]]
logger = logging.getLogger("seekforge.serve")


class InvalidRecords(SeekforgeError, ValueError):
    """Records that do not fit the package's inputs; ``errors`` lists each bad field."""

    def __init__(self, errors: list[FieldError]) -> None:
        shown = "; ".join(f"record {e.record} field {e.field!r}: {e.message}" for e in errors[:5])
        super().__init__(f"{len(errors)} invalid field{'s' * (len(errors) > 1)}: {shown}")
        self.errors = errors


class TooLarge(SeekforgeError, ValueError):
    """A request over the size limits."""


class BadRequest(SeekforgeError, ValueError):
    """A request that is not of the expected shape (unreadable JSON, a bad header)."""


class Unauthorized(SeekforgeError, PermissionError):
    """A request without the right API key."""


class NotServed(SeekforgeError, LookupError):
    """A route this server was not started to answer (``/v1/explain`` without ``explain=true``)."""


@dataclass(frozen=True)
class Failure:
    """How a failed request is answered on each protocol, and counted."""

    http: int
    grpc: str  # the name of a grpc.StatusCode
    reason: str  # the ``reason`` label of seekforge_request_errors
    detail: Any  # the message, or the list of bad fields
    retry_after: float | None = None


def failure_of(exc: BaseException, request_id: str) -> Failure:
    """The answer to a request that raised ``exc``; anything unexpected is an internal error, logged with
    its traceback under ``request_id`` and answered without one."""
    if isinstance(exc, Unauthorized):
        return Failure(401, "UNAUTHENTICATED", "unauthorized", exc.message)
    if isinstance(exc, NotServed):
        return Failure(404, "UNIMPLEMENTED", "not_served", str(exc))
    if isinstance(exc, TooLarge):
        return Failure(413, "RESOURCE_EXHAUSTED", "too_large", str(exc))
    if isinstance(exc, BadRequest):
        return Failure(400, "INVALID_ARGUMENT", "bad_request", str(exc))
    if isinstance(exc, InvalidRecords):
        return Failure(422, "INVALID_ARGUMENT", "invalid", [e.model_dump() for e in exc.errors])
    if isinstance(exc, Overloaded):
        return Failure(503, "RESOURCE_EXHAUSTED", "overloaded", str(exc), exc.retry_after)
    if isinstance(exc, ShuttingDown):
        return Failure(503, "UNAVAILABLE", "draining", exc.message)
    if isinstance(exc, DeadlineExceeded):
        return Failure(504, "DEADLINE_EXCEEDED", "deadline", exc.message)
    if isinstance(exc, DataError):  # a value the model cannot take (e.g. a binary value never seen)
        return Failure(
            422, "INVALID_ARGUMENT", "data", [{"record": None, "field": None, "message": str(exc), "value": None}]
        )
    if isinstance(exc, SeekforgeError):
        return Failure(500, "INTERNAL", "model", str(exc))
    logger.error("request %s failed", request_id, exc_info=exc)
    return Failure(500, "INTERNAL", "internal", f"internal error ({type(exc).__name__}); request id {request_id}")


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


def _rows_of(predictions: Sequence[Any], proba: np.ndarray | None, classes: Sequence[Any] | None) -> Rows:
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


class ModelService:
    """A served package: validation, batching, metrics, logging. Create it, then ``await start()``."""

    def __init__(self, package: str | Path, config: ServeConfig | None = None) -> None:
        self.config = config or ServeConfig()
        self.path = Path(package)
        self.predictor, self.backend = open_predictor(
            self.path, self.config.backend, threads=self.config.threads, verify=self.config.verify
        )
        self.manifest: dict[str, Any] = self.predictor.manifest
        self.version = model_version(self.manifest)
        self.schema = RecordSchema(
            self.manifest["inputs"],
            name=f"{_title(self.manifest['name'])}Record",
            coerce_numbers=self.config.coerce_numbers,
        )
        self.classes = self.predictor.classes
        self.metrics = ServeMetrics()
        self.metrics.describe({"name": self.manifest["name"], "version": self.version, "backend": self.backend})
        self.batcher = DynamicBatcher(
            self._predict_rows,
            max_batch_rows=self.config.max_batch_rows if self.config.batching else 1,
            max_wait_ms=self.config.max_wait_ms if self.config.batching else 0.0,
            max_queue_rows=self.config.max_queue_rows,
            on_batch=self.metrics.observe_batch,
            arriving=lambda: self.arriving,
            inline_below_ms=self.config.inline_below_ms,
        )
        self.arriving = 0  # requests received and not yet queued (or refused): the batcher waits for them
        self.log: PredictionLog | None = None
        self._id_prefix = secrets.token_hex(6)
        self._ids = itertools.count(1)
        self.ready = False
        self.draining = False
        self._image_fields = [f["name"] for f in self.manifest["inputs"] if f["type"] == "image"]
        self.cache = PredictionCache(self.config.cache_rows) if self.config.cache_rows else None
        if self.cache is not None and self._image_fields:
            raise ConfigError(
                f"cache_rows: {package} takes images ({', '.join(self._image_fields)}), which the cache does not key",
                hint="serve it without cache_rows",
            )

    # -- lifecycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Warm the model up, open the log and start batching; the service is ready afterwards."""
        if self.config.log is not None:
            self.log = PredictionLog(
                self.config.log,
                package=str(self.path.resolve()),
                model_version=self.version,
                backend=self.backend,
                retention_seconds=self.config.log_retention_seconds,
                image_fields=self._image_fields,
            )
        if not self._image_fields:  # a first run allocates the backend's buffers: not on a client's time
            rows, _ = self.schema.validate([{}])  # every value missing, so imputed
            try:
                await asyncio.get_running_loop().run_in_executor(None, self._predict_rows, rows)
            except Exception as exc:  # only a warm-up: the first request will say what is wrong
                logger.warning("warm-up prediction failed: %s", exc)
        self.batcher.start()
        self.ready = True

    async def drain(self, timeout: float = 30.0) -> None:
        """Stop taking requests, answer the queued ones, flush and close the log."""
        self.ready = False
        self.draining = True
        try:
            await self.batcher.drain(timeout)
        finally:
            if self.log is not None:
                await asyncio.get_running_loop().run_in_executor(None, self.log.close)
                self.log = None

    # -- requests --------------------------------------------------------------------------------------
    def request_id(self) -> str:
        """A new request id, unique across processes (a random prefix per process, then a counter)."""
        return f"{self._id_prefix}-{next(self._ids)}"

    def check_key(self, headers: Mapping[str, str]) -> None:
        """Raises Unauthorized unless the key the request's ``headers`` (or gRPC metadata) carry is one of
        the configured keys (compared in constant time); they are not read when no key is configured."""
        if not self.config.api_keys:
            return
        key = api_key_of(headers)
        given = (key or "").encode()
        if not any(hmac.compare_digest(given, k.encode()) for k in self.config.api_keys):
            raise Unauthorized("a valid API key is required" if key else "the API key is missing")

    def request_id_of(self, given: str | None) -> str:
        """The client's request id if it is usable (at most 128 printable characters), else a new one.

        Raises:
            BadRequest: An id that is too long or holds control characters.
        """
        if not given:
            return self.request_id()
        if len(given) > 128 or not given.isprintable():
            raise BadRequest("the request id must be at most 128 printable characters")
        return given

    def validate(self, records: Sequence[Any]) -> Rows:
        """Records as rows of raw values.

        Raises:
            InvalidRecords: No records, more than the request limit (the schema's ``maxItems``, so a 422
                like any other break of the schema), or any field is bad (every bad field is listed).
        """
        if not records:
            raise InvalidRecords([FieldError(record=0, field=None, message="no records: send at least one")])
        if len(records) > self.config.max_request_rows:
            limit = self.config.max_request_rows
            message = f"{len(records)} records in one request; the limit is {limit}: split the request"
            raise InvalidRecords([FieldError(record=limit, field=None, message=message)])
        rows, errors = self.schema.validate(records)
        if errors:
            raise InvalidRecords(errors)
        return rows

    async def validate_records(self, records: Sequence[Any]) -> Rows:
        """:meth:`validate`, on a worker thread when the package takes images: decoding them (PNG, JPEG)
        would hold up every other request on the event loop."""
        if not self._image_fields:
            return self.validate(records)
        return await asyncio.get_running_loop().run_in_executor(None, self.validate, records)

    async def predict(
        self,
        rows: Rows,
        *,
        timeout_ms: float | None = None,
        request_id: str | None = None,
        ticket: Ticket | None = None,
    ) -> Rows:
        """Predict validated rows through the batcher; log them off the request path. ``ticket`` is the
        request's (from :meth:`timed`): it stops counting as arriving once its rows are queued."""
        arrived = time.perf_counter()
        limits = [t for t in (timeout_ms, self.config.timeout_ms) if t is not None]
        timeout = min(limits) / 1000.0 if limits else None
        if ticket is not None:
            ticket.queued()  # before enqueue: the batcher must not wait for this very request
        if self.cache is None:
            outputs = await self.batcher.enqueue(rows, timeout=timeout)
        else:
            outputs = await self._through_cache(rows, timeout)
        if self.log is not None:
            latency_ms = (time.perf_counter() - arrived) * 1000.0
            self.log.append(LogEntry(time.time(), request_id or self.request_id(), latency_ms, rows, outputs))
        return outputs

    async def _through_cache(self, rows: Rows, timeout: float | None) -> Rows:
        """Cached outputs for records seen lately; the others through the batcher, then cached."""
        assert self.cache is not None
        keys = [self.cache.key(row) for row in rows]
        found = self.cache.lookup(keys)
        self.metrics.cache.labels("hit").inc(len(found))
        self.metrics.cache.labels("miss").inc(len(rows) - len(found))
        missing = [i for i in range(len(rows)) if i not in found]
        if missing:
            fresh = await self.batcher.enqueue([rows[i] for i in missing], timeout=timeout)
            self.cache.store([keys[i] for i in missing], fresh)
            found.update(zip(missing, fresh, strict=True))
        return [found[i] for i in range(len(rows))]

    def refresh_gauges(self) -> None:
        """Gauges read at scrape time rather than kept up to date on every request."""
        self.metrics.queue_rows.set(self.batcher.queued_rows)
        if self.log is not None:
            self.metrics.log_rows.labels("accepted").set(self.log.accepted)
            self.metrics.log_rows.labels("written").set(self.log.written)
            self.metrics.log_rows.labels("dropped").set(self.log.dropped)

    def _predict_rows(self, rows: Rows) -> Rows:
        return _rows_of(*self.predictor.decoded(rows), self.classes)

    def model_info(self) -> dict[str, Any]:
        """What ``GET /v1/model`` answers: the schema, metrics and lineage of the served package (strict
        JSON: a metric that is not a number, such as R2 on a constant target, is null)."""
        m = self.manifest
        return json_safe(
            {
                "name": m["name"],
                "version": self.version,
                "backend": self.backend,
                "task": m["task"],
                "inputs": m["inputs"],
                "output": m["output"],
                "model": m.get("model"),
                "metrics": m.get("metrics"),
                "lineage": m.get("lineage"),
                "created": m.get("created"),
                "exports": {
                    k: {"precision": v.get("precision"), "passed": v["parity"]["passed"]}
                    for k, v in m.get("exports", {}).items()
                },
                "batching": {
                    "enabled": self.config.batching,
                    "max_batch_rows": self.config.max_batch_rows,
                    "max_wait_ms": self.config.max_wait_ms,
                },
            }
        )

    def timed(self, protocol: str) -> Ticket:
        """Start timing a request: it counts as in flight, and as arriving until its rows are queued."""
        return Ticket(self, protocol)


class Ticket:
    """One request's passage through the service, for the metrics and the batcher's arrival count."""

    def __init__(self, service: ModelService, protocol: str) -> None:
        self.service = service
        self.protocol = protocol
        self.started = time.perf_counter()
        self._arriving = True
        service.arriving += 1
        service.metrics.in_flight.inc()

    def queued(self) -> None:
        """Its rows are in the batcher's queue (or it was refused): no longer arriving."""
        if self._arriving:
            self._arriving = False
            self.service.arriving -= 1
            if self.service.arriving == 0:
                self.service.batcher.poke()  # a batch waiting for this request need wait no longer

    def done(self, code: str) -> None:
        """It was answered with ``code``."""
        self.queued()
        metrics = self.service.metrics
        metrics.in_flight.dec()
        requests, latency = metrics.child(self.protocol, code)
        requests.inc()
        latency.observe(time.perf_counter() - self.started)


def _title(name: str) -> str:
    """``reviews_v2.1`` -> ``ReviewsV21`` (recipe names hold letters, digits, ``_``, ``.`` and ``-``)."""
    return "".join(part.capitalize() for part in re.split(r"[_.-]", name)) or "Model"


def api_key_of(headers: Mapping[str, str]) -> str | None:
    """The API key a request carries: ``x-api-key``, else an ``Authorization: Bearer`` token (HTTP headers
    and gRPC metadata alike)."""
    key = headers.get("x-api-key")
    if key is None:
        auth = str(headers.get("authorization", ""))
        key = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    return key
