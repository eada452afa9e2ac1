"""Prometheus metrics of a serving process, in a registry of its own (several servers may share a process
in tests). Both protocols count into the same series, told apart by a ``protocol`` label."""

from __future__ import annotations

import contextlib
from typing import Any

from seekforge.core.deps import require

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ROW_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096)
EXIT_BUCKETS = tuple(range(1, 25))  # an encoder has at most 24 layers (model.layers)


class ServeMetrics:
    """Requests, errors, latency, realised batch size in rows, queue depth and prediction-log counters."""

    def __init__(self) -> None:
        prom = require("prometheus_client", purpose="serving metrics")
        prom.disable_created_metrics()  # the *_created series only add noise to every scrape
        self.registry = prom.CollectorRegistry()
        r = self.registry
        prom.ProcessCollector(registry=r)  # process_cpu_seconds_total, process_resident_memory_bytes (Linux)
        self.requests = prom.Counter(
            "seekforge_requests", "Prediction requests answered", ["protocol", "code"], registry=r
        )
        self.errors = prom.Counter(
            "seekforge_request_errors", "Prediction requests that failed", ["protocol", "reason"], registry=r
        )
        self.rows = prom.Counter("seekforge_rows", "Rows predicted", ["protocol"], registry=r)
        self.cache = prom.Counter(
            "seekforge_cache_rows", "Rows looked up in the prediction cache", ["result"], registry=r
        )  # hit ratio: rate(seekforge_cache_rows{result="hit"}) / rate(seekforge_cache_rows)
        self.latency = prom.Histogram(
            "seekforge_request_latency_seconds",
            "Time from a prediction request's arrival to its answer",
            ["protocol"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_rows = prom.Histogram(
            "seekforge_batch_rows", "Rows in each batch run by the model", buckets=ROW_BUCKETS, registry=r
        )
        self.inference = prom.Histogram(
            "seekforge_inference_seconds", "Time the model took per batch", buckets=LATENCY_BUCKETS, registry=r
        )
        self.batches = prom.Counter(
            "seekforge_batches",
            "Batches run by the model, by where: on the event loop (a fast model's, when nothing else waits) "
            "or on the inference thread",
            ["runs_on"],
            registry=r,
        )
        self._batches_where = (self.batches.labels("inference_thread"), self.batches.labels("event_loop"))
        self.queue_rows = prom.Gauge("seekforge_queue_rows", "Rows waiting for a batch", registry=r)
        self.in_flight = prom.Gauge("seekforge_requests_in_flight", "Prediction requests being handled", registry=r)
        self.log_rows = prom.Gauge(
            "seekforge_log_rows", "Rows handed to the prediction log, by outcome", ["outcome"], registry=r
        )
        self.info = prom.Gauge(
            "seekforge_model_info",
            "The models served, by role (1 while served)",
            ["name", "version", "backend", "role"],
            registry=r,
        )
        # Each model's own share, told apart by role (primary, canary, shadow) and version: what a canary
        # or a shadow is judged on beside the primary.
        self.model_requests = prom.Counter(
            "seekforge_model_requests",
            "Requests each model ran, by outcome",
            ["role", "version", "outcome"],
            registry=r,
        )
        self.model_rows = prom.Counter(
            "seekforge_model_rows", "Rows each model predicted", ["role", "version"], registry=r
        )
        self.model_latency = prom.Histogram(
            "seekforge_model_latency_seconds",
            "Time a request's rows spent queued and predicted by each model",
            ["role", "version"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.exit_layers = prom.Histogram(
            "seekforge_exit_layer",
            "The encoder layer each row left a model with early exit at",
            ["role", "version"],
            buckets=EXIT_BUCKETS,
            registry=r,
        )
        self.swaps = prom.Counter(
            "seekforge_swaps", "Model swaps while serving, by role and outcome", ["role", "outcome"], registry=r
        )
        self._children: dict[tuple[str, str], tuple[Any, Any]] = {}

    def child(self, protocol: str, code: str) -> tuple[Any, Any]:
        """The request counter and latency histogram of ``protocol`` answering ``code`` (cached: looking
        labels up costs more than counting)."""
        key = (protocol, code)
        found = self._children.get(key)
        if found is None:
            found = self._children[key] = (self.requests.labels(protocol, code), self.latency.labels(protocol))
        return found

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        prom = require("prometheus_client", purpose="serving metrics")
        return prom.generate_latest(self.registry), prom.CONTENT_TYPE_LATEST

    def observe_batch(self, rows: int, seconds: float, inline: bool) -> None:
        self._batches_where[inline].inc()
        self.batch_rows.observe(rows)
        self.inference.observe(seconds)

    def describe(self, info: dict[str, str], *, gone: dict[str, str] | None = None) -> None:
        """``info`` (name, version, backend, role) is served now; ``gone`` no longer is."""
        if gone is not None:
            with contextlib.suppress(KeyError):
                self.info.remove(gone["name"], gone["version"], gone["backend"], gone["role"])
        self.info.labels(info["name"], info["version"], info["backend"], info["role"]).set(1)

    def observe_exits(self, role: str, version: str, outputs: list[dict[str, Any]]) -> None:
        """The exit layers of a request's rows, when its model has early exit."""
        layers = [row["exit_layer"] for row in outputs if "exit_layer" in row]
        if layers:
            histogram = self.exit_layers.labels(role, version)
            for layer in layers:
                histogram.observe(layer)

    def observe_model(self, role: str, version: str, rows: int, seconds: float, ok: bool) -> None:
        """One request's passage through the model of ``role``."""
        self.model_requests.labels(role, version, "ok" if ok else "error").inc()
        if ok:
            self.model_rows.labels(role, version).inc(rows)
            self.model_latency.labels(role, version).observe(seconds)
