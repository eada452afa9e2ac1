"""How a package is served: the ``seekforge serve`` options, validated like every other section."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from pydantic import Field, field_validator

from seekforge.core.config import BaseConfig
from seekforge.core.variants import BACKENDS


class ServeConfig(BaseConfig):
    """How a package is served.

    Attributes:
        backend: ``auto``, ``torch``, or the backend of an export the package holds.
        max_batch_rows: Most rows in one batch.
        max_wait_ms: Longest a batch waits for more rows.
        max_queue_rows: Rows queued before requests are refused with 503.
        max_request_rows: Records in one request.
        max_request_bytes: Size of one request body.
        timeout_ms: A request's default deadline (a client may ask for less); None: none.
        threads: Inference threads of the backend; None: the backend's default.
        batching: Off: each request runs alone, as it arrives (for comparison).
        inline_below_ms: Batches measured to run faster than this run on the event loop (0: never).
        api_keys: Accepted API keys; empty: none needed.
        log: The prediction log (SQLite); None: no log.
        log_retention_seconds: Logged rows older than this are deleted; None: kept.
        verify: Check every file's sha256 against package.json on load.
        coerce_numbers: Accept numeric strings (``"12"``) for numeric features; off: only JSON numbers
            (``true`` and ``"12"`` are refused with 422).
        max_header_bytes: Size of an HTTP request's line and headers (431/400 beyond), and of a gRPC call's
            metadata.
        read_timeout_s: Longest a client may take to send a request's line and headers, and its body;
            a connection that is slower is closed (slow-loris clients hold no connection for long).
        keep_alive_s: An idle HTTP keep-alive connection is closed after this.
        max_connections: HTTP connections and requests in progress at once; beyond it, 503.
        grpc_idle_s: An idle gRPC connection is closed after this.
        cache_rows: Keep the outputs of this many recent records and answer a repeated record from them
            (0: no cache; refused for image packages). A new model clears it.
        explain: Answer ``POST /v1/explain`` (attributions of a few records; the full install). Off: 404.
        explain_max_rows: Records in one explanation request.
        explain_timeout_s: An explanation taking longer is answered 504; one runs at a time (503 meanwhile).
        registry: Where ``registry:NAME@ALIAS`` references are resolved (a SQLite file or SQLAlchemy URL);
            None: ``$SEEKFORGE_REGISTRY``, else ``runs/registry.db``.
        canary: A second package (a folder or a registry reference) that answers ``canary_percent`` of the
            requests, chosen by request id; None: none.
        canary_percent: The canary's share of requests, in percent.
        shadow: A package sent every request as well; its answers are logged (not returned) and counted.
        follow_s: How often registry references are resolved again; when an alias has moved, that model is
            swapped for the version it points at, with no request failed (0: only on SIGHUP).
        swap_drain_s: Longest a swapped-out model is given to answer the requests queued for it.
        index: A vector index built with the served package (``seekforge index build``): ``POST /v1/search``
            answers from it; None: 404. search_max_k: the most passages one query asks for.
    """

    backend: str = "auto"
    max_batch_rows: Annotated[int, Field(ge=1)] = 64
    max_wait_ms: Annotated[float, Field(ge=0)] = 5.0
    max_queue_rows: Annotated[int, Field(ge=1)] = 4096
    max_request_rows: Annotated[int, Field(ge=1)] = 1024
    max_request_bytes: Annotated[int, Field(ge=1)] = 8 * 1024 * 1024
    timeout_ms: Annotated[float, Field(gt=0)] | None = 10_000.0
    threads: Annotated[int, Field(ge=1)] | None = None
    batching: bool = True
    inline_below_ms: Annotated[float, Field(ge=0)] = 0.5
    api_keys: frozenset[str] = frozenset()
    log: Path | None = None
    log_retention_seconds: Annotated[float, Field(gt=0)] | None = None
    verify: bool = True
    coerce_numbers: bool = False
    max_header_bytes: Annotated[int, Field(ge=1024)] = 32 * 1024
    read_timeout_s: Annotated[float, Field(gt=0)] = 10.0
    keep_alive_s: Annotated[float, Field(gt=0)] = 5.0
    max_connections: Annotated[int, Field(ge=1)] = 1024
    grpc_idle_s: Annotated[float, Field(gt=0)] = 300.0
    cache_rows: Annotated[int, Field(ge=0)] = 0
    explain: bool = False
    explain_max_rows: Annotated[int, Field(ge=1, le=100)] = 10
    explain_timeout_s: Annotated[float, Field(gt=0)] = 30.0
    registry: str | None = None
    canary: str | None = None
    canary_percent: Annotated[float, Field(gt=0, lt=100)] = 10.0
    shadow: str | None = None
    follow_s: Annotated[float, Field(ge=0)] = 10.0
    swap_drain_s: Annotated[float, Field(gt=0)] = 30.0
    index: Path | None = None
    search_max_k: Annotated[int, Field(ge=1, le=1000)] = 100

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value not in ("auto", *BACKENDS):
            raise ValueError(f"unknown backend {value!r}; choose one of auto, {', '.join(BACKENDS)}")
        return value
