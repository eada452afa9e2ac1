"""What both protocols call: the served models behind a request schema, each with its dynamic batcher, and
the metrics and the prediction log. The HTTP app and the gRPC servicer are thin translations onto
:class:`ModelService`.

A service serves a primary model, and optionally a canary (a share of the requests, chosen by request id)
and a shadow (every request, its answers logged and never returned). Each can be swapped for another
version while requests keep coming (:meth:`ModelService.swap`): the new model is loaded and warmed up
beside the old one, takes every request from then on, and the old one answers what was queued for it
before it is let go, so no request fails. Registry references (``registry:NAME@ALIAS``) are followed: when
the alias moves, the model is swapped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seekforge.core.api_keys import api_key_of, key_accepted
from seekforge.core.errors import ConfigError, DataError, SeekforgeError
from seekforge.core.io import sha256_file
from seekforge.core.prediction_log import LogEntry, PredictionLog, json_safe
from seekforge.core.variants import model_version
from seekforge.serve._batcher import DeadlineExceeded, Overloaded, ShuttingDown
from seekforge.serve._cache import PredictionCache
from seekforge.serve._metrics import ServeMetrics
from seekforge.serve._model import ServedModel, check_compatible, load_model, resolve_source
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


class ModelService:
    """The served models: validation, routing, batching, swaps, metrics, logging. Create it (the packages
    load here), then ``await start()``.

    Args:
        package: The primary model: a package folder, or a ``registry:NAME@ALIAS`` reference (followed
            while serving, see ``ServeConfig.follow_s``).
        config: How to serve; its ``canary`` and ``shadow`` name the other models.
    """

    def __init__(self, package: str | Path, config: ServeConfig | None = None) -> None:
        self.config = config or ServeConfig()
        self.metrics = ServeMetrics()
        self.arriving = 0  # requests received and not yet queued (or refused): the batchers wait for them
        self.models: dict[str, ServedModel] = {}
        sources = {"primary": str(package), "canary": self.config.canary, "shadow": self.config.shadow}
        for role, source in sources.items():
            if source is not None:
                model = self._load(role, source, resolve_source(source, self.config.registry))
                if role != "primary":
                    check_compatible(self.models["primary"], model)
                self.models[role] = model
                self.metrics.describe(model.describe())
        self.log: PredictionLog | None = None
        self._id_prefix = secrets.token_hex(6)
        self._ids = itertools.count(1)
        self.ready = False
        self.draining = False
        self.cache = PredictionCache(self.config.cache_rows) if self.config.cache_rows else None
        if self.cache is not None and self.primary.image_fields:
            raise ConfigError(
                f"cache_rows: {package} takes images ({', '.join(self.primary.image_fields)}), which the cache "
                "does not key",
                hint="serve it without cache_rows",
            )
        self._swapping = asyncio.Lock()
        self._follower: asyncio.Task[None] | None = None
        self._shadowing: set[asyncio.Task[None]] = set()

    # The primary model's: what the routes describe (a canary and a shadow take the same records).
    @property
    def primary(self) -> ServedModel:
        return self.models["primary"]

    @property
    def path(self) -> Path:
        return self.primary.path

    @property
    def manifest(self) -> dict[str, Any]:
        return self.primary.manifest

    @property
    def version(self) -> str:
        return self.primary.version

    @property
    def backend(self) -> str:
        return self.primary.backend

    @property
    def schema(self) -> RecordSchema:
        return self.primary.schema

    @property
    def batcher(self) -> Any:
        return self.primary.batcher

    @property
    def predictor(self) -> Any:
        return self.primary.predictor

    @property
    def classes(self) -> Sequence[Any] | None:
        return self.primary.classes

    def _load(self, role: str, source: str, path: Path) -> ServedModel:
        return load_model(
            role, source, path, self.config, on_batch=self.metrics.observe_batch, arriving=lambda: self.arriving
        )

    # -- lifecycle -------------------------------------------------------------------------------------
    async def start(self) -> None:
        """Warm the models up, open the log and start batching; the service is ready afterwards."""
        if self.config.log is not None:
            self.log = PredictionLog(
                self.config.log,
                package=str(self.path.resolve()),
                model_version=self.version,
                backend=self.backend,
                retention_seconds=self.config.log_retention_seconds,
                image_fields=self.primary.image_fields,
            )
        for model in self.models.values():
            await _warm_up(model)
            model.batcher.start()
        followed = any(m.source.startswith("registry:") for m in self.models.values())
        if followed and self.config.follow_s > 0:
            self._follower = asyncio.get_running_loop().create_task(self._follow(), name="seekforge-follow")
        self.ready = True

    async def drain(self, timeout: float = 30.0) -> None:
        """Stop taking requests, answer the queued ones (a swap under way finishes first), flush and close
        the log."""
        self.ready = False
        self.draining = True
        try:
            async with self._swapping:  # a swap under way ends first (its old model drained), then no other
                if self._follower is not None:
                    self._follower.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await self._follower
                answering = [m for m in self.models.values() if m.role != "shadow"]
                await asyncio.gather(*(m.batcher.drain(timeout) for m in answering))
                if "shadow" in self.models:  # after the others: their last answers were sent to it too
                    await self.models["shadow"].batcher.drain(timeout)
            if self._shadowing:  # the shadow's rows were answered by its drain: only their logging is left
                await asyncio.wait(self._shadowing, timeout=timeout)
        finally:
            if self.log is not None:
                await asyncio.get_running_loop().run_in_executor(None, self.log.close)
                self.log = None

    async def swap(self, role: str = "primary", source: str | None = None) -> bool:
        """Serve ``source`` (default: the role's own, resolved again) as the ``role`` model, with no request
        failed: the new model is loaded and warmed up beside the old one, takes every request from then on,
        and the old one answers the requests already queued for it before it is let go. The prediction cache
        is cleared. Returns False when ``source`` is the package already served (nothing is loaded).

        Raises:
            ConfigError: The new package takes other records or answers in another form (the old model
                keeps serving), or ``role`` is not served.
            PackageError, SeekforgeError: It cannot be resolved or loaded (the old model keeps serving).
        """
        if role not in self.models:
            raise ConfigError(f"no {role} model is served", hint=f"serve one: {', '.join(self.models)}")
        async with self._swapping:
            if self.draining:  # a reload asked for as the server stops: nothing to swap into
                return False
            old = self.models[role]
            source = source or old.source
            loop = asyncio.get_running_loop()
            try:
                path = await loop.run_in_executor(None, resolve_source, source, self.config.registry)
                if path.resolve() == old.path.resolve() and sha256_file(path / "package.json") == old.digest:
                    return False
                new = await loop.run_in_executor(None, self._load, role, source, path)
                check_compatible(old, new)
                await _warm_up(new, strict=True)  # a package that cannot predict is not swapped in
            except Exception:
                self.metrics.swaps.labels(role, "refused").inc()
                raise
            new.batcher.start()
            self.models[role] = new  # requests routed from here on go to the new model
            if self.cache is not None and role == "primary":
                self.cache.clear()  # outputs of the old model: never answered again
            self.metrics.describe(new.describe(), gone=old.describe())
            self.metrics.swaps.labels(role, "done").inc()
            logger.warning("%s model swapped: %s (%s) -> %s (%s)", role, old.version, old.path, new.version, new.path)
            await old.batcher.drain(self.config.swap_drain_s)  # what was queued for it is answered by it
            return True

    async def refresh(self, *, folders: bool = False) -> list[str]:
        """Resolve each model's registry reference again (and each folder too with ``folders``) and swap the
        models whose package changed; a model that cannot be swapped keeps serving (the reason is logged).
        Returns the roles swapped."""
        swapped = []
        for role, model in list(self.models.items()):
            if not (folders or model.source.startswith("registry:")):
                continue
            try:
                if await self.swap(role):
                    swapped.append(role)
            except Exception as exc:
                logger.error("%s model: still serving %s; %s could not be swapped in: %s",
                             role, model.version, model.source, exc)  # fmt: skip
        return swapped

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.config.follow_s)
            await self.refresh()

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
        if not key_accepted(self.config.api_keys, key):
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
        if not self.primary.image_fields:
            return self.validate(records)
        return await asyncio.get_running_loop().run_in_executor(None, self.validate, records)

    async def predict(
        self,
        rows: Rows,
        *,
        timeout_ms: float | None = None,
        request_id: str | None = None,
        ticket: Ticket | None = None,
    ) -> tuple[Rows, str]:
        """Predict validated rows with the model the request is routed to (the canary for its share of
        request ids, else the primary); the shadow, if any, is sent them too. Logged off the request path.
        Returns the outputs and the version that answered. ``ticket`` is the request's (from
        :meth:`timed`): it stops counting as arriving once its rows are queued."""
        arrived = time.perf_counter()
        limits = [t for t in (timeout_ms, self.config.timeout_ms) if t is not None]
        timeout = min(limits) / 1000.0 if limits else None
        request_id = request_id or self.request_id()
        model = self._route(request_id)
        if ticket is not None:
            ticket.queued()  # before enqueue: the batcher must not wait for this very request
        outputs = await self._run(model, rows, timeout)
        if ticket is not None:
            ticket.rows = len(outputs)
        shadow = self.models.get("shadow")
        if shadow is not None:
            self._send_to_shadow(shadow, rows, request_id, timeout)
        self._log(model, request_id, arrived, rows, outputs)
        return outputs, model.version

    def _route(self, request_id: str) -> ServedModel:
        """The canary for ``canary_percent`` of request ids (the same id always goes the same way), else the
        primary."""
        canary = self.models.get("canary")
        if canary is not None and zlib.crc32(request_id.encode()) % 10_000 < self.config.canary_percent * 100:
            return canary
        return self.primary

    async def _run(self, model: ServedModel, rows: Rows, timeout: float | None) -> Rows:
        """``rows`` through ``model``'s batcher (the primary's through the cache), counted by role and
        version. Queued at once, on this turn of the event loop: a swap cannot come between the routing
        and the queueing."""
        started = time.perf_counter()
        try:
            if self.cache is not None and model.role == "primary":
                outputs = await self._through_cache(model, rows, timeout)
            else:
                outputs = await model.batcher.enqueue(rows, timeout=timeout)
        except BaseException:
            self.metrics.observe_model(model.role, model.version, len(rows), 0.0, ok=False)
            raise
        self.metrics.observe_model(model.role, model.version, len(rows), time.perf_counter() - started, ok=True)
        self.metrics.observe_exits(model.role, model.version, outputs)
        return outputs

    def _send_to_shadow(self, model: ServedModel, rows: Rows, request_id: str, timeout: float | None) -> None:
        """Queue ``rows`` on the shadow's batcher now, so that a swap or a drain coming next finds them queued
        and has them answered; its answer is logged when it comes. A full queue or a failure is counted and
        goes no further: a shadow never holds a request up."""
        arrived = time.perf_counter()
        try:
            future = model.batcher.enqueue(rows, timeout=timeout)
        except SeekforgeError:
            self.metrics.observe_model(model.role, model.version, len(rows), 0.0, ok=False)
            return
        task = asyncio.get_running_loop().create_task(self._shadow_answer(model, future, rows, request_id, arrived))
        self._shadowing.add(task)
        task.add_done_callback(self._shadowing.discard)

    async def _shadow_answer(
        self, model: ServedModel, future: asyncio.Future[Rows], rows: Rows, request_id: str, arrived: float
    ) -> None:
        try:
            outputs = await future
        except Exception as exc:
            self.metrics.observe_model(model.role, model.version, len(rows), 0.0, ok=False)
            logger.debug("shadow %s failed on request %s: %s", model.version, request_id, exc)
            return
        self.metrics.observe_model(model.role, model.version, len(rows), time.perf_counter() - arrived, ok=True)
        self._log(model, request_id, arrived, rows, outputs)

    def _log(self, model: ServedModel, request_id: str, arrived: float, rows: Rows, outputs: Rows) -> None:
        if self.log is not None:
            latency_ms = (time.perf_counter() - arrived) * 1000.0
            entry = LogEntry(
                time.time(), request_id, latency_ms, rows, outputs, model.version, model.backend, model.role
            )
            self.log.append(entry)

    async def _through_cache(self, model: ServedModel, rows: Rows, timeout: float | None) -> Rows:
        """Cached outputs for records seen lately; the others through the batcher, then cached (unless the
        model was swapped meanwhile: the cache then holds only the new model's outputs)."""
        assert self.cache is not None
        keys = [self.cache.key(row) for row in rows]
        found = self.cache.lookup(keys)
        self.metrics.cache.labels("hit").inc(len(found))
        self.metrics.cache.labels("miss").inc(len(rows) - len(found))
        missing = [i for i in range(len(rows)) if i not in found]
        if missing:
            generation = self.cache.generation
            fresh = await model.batcher.enqueue([rows[i] for i in missing], timeout=timeout)
            if self.cache.generation == generation:
                self.cache.store([keys[i] for i in missing], fresh)
            found.update(zip(missing, fresh, strict=True))
        return [found[i] for i in range(len(rows))]

    def refresh_gauges(self) -> None:
        """Gauges read at scrape time rather than kept up to date on every request."""
        self.metrics.queue_rows.set(sum(m.batcher.queued_rows for m in self.models.values()))
        if self.log is not None:
            self.metrics.log_rows.labels("accepted").set(self.log.accepted)
            self.metrics.log_rows.labels("written").set(self.log.written)
            self.metrics.log_rows.labels("dropped").set(self.log.dropped)

    def poke(self) -> None:
        """No request is on its way: a batch waiting for one need wait no longer."""
        for model in self.models.values():
            model.batcher.poke()

    def model_info(self) -> dict[str, Any]:
        """What ``GET /v1/model`` answers: the schema, metrics and lineage of the served package (strict
        JSON: a metric that is not a number, such as R2 on a constant target, is null), and the canary and
        shadow served beside it."""
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
                "models": {
                    role: {"version": s.version, "backend": s.backend, "source": s.source, "path": str(s.path)}
                    | ({"percent": self.config.canary_percent} if role == "canary" else {})
                    for role, s in self.models.items()
                },
            }
        )

    def timed(self, protocol: str) -> Ticket:
        """Start timing a request: it counts as in flight, and as arriving until its rows are queued."""
        return Ticket(self, protocol)


async def _warm_up(model: ServedModel, *, strict: bool = False) -> None:
    """A first run allocates the backend's buffers: not on a client's time (image models are not warmed).
    At start a failure is only logged (the first request will say what is wrong); ``strict`` raises it."""
    if model.image_fields:
        return
    # every value missing, so imputed, but a text: a package may need every record to have its text
    rows, _ = model.schema.validate([{f["name"]: "warm up" for f in model.manifest["inputs"] if f["type"] == "text"}])
    try:
        await asyncio.get_running_loop().run_in_executor(None, model.predict_rows, rows)
    except Exception as exc:
        if strict:
            raise
        logger.warning("warm-up prediction of %s failed: %s", model.version, exc)


class Ticket:
    """One request's passage through the service, for the metrics and the batcher's arrival count."""

    def __init__(self, service: ModelService, protocol: str) -> None:
        self.service = service
        self.protocol = protocol
        self.started = time.perf_counter()
        self.rows = 0  # the rows predicted for it, once answered
        self._arriving = True
        service.arriving += 1
        service.metrics.in_flight.inc()

    def queued(self) -> None:
        """Its rows are in the batcher's queue (or it was refused): no longer arriving."""
        if self._arriving:
            self._arriving = False
            self.service.arriving -= 1
            if self.service.arriving == 0:
                self.service.poke()  # a batch waiting for this request need wait no longer

    def done(self, code: str) -> None:
        """It was answered with ``code``."""
        self.queued()
        metrics = self.service.metrics
        metrics.in_flight.dec()
        requests, latency = metrics.child(self.protocol, code)
        requests.inc()
        latency.observe(time.perf_counter() - self.started)
        if self.rows:
            metrics.rows.labels(self.protocol).inc(self.rows)
