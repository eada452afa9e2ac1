"""What a running ``seekforge serve`` says of itself: its ``/metrics`` (Prometheus text) read and folded
into one snapshot of totals (requests by code, errors by reason, rows) and cumulative histograms
(request latency, batch sizes). The page takes two snapshots' difference for rates and the percentiles of
the latest interval. Only the servers named on the command line are read: the studio never fetches an
address a page gives it."""

from __future__ import annotations

import math
import time
import urllib.error
import urllib.request
from typing import Any

from seekforge.core.deps import require

#: how long a server's /metrics may take to answer
TIMEOUT_SECONDS = 2.0


def snapshot(url: str, *, api_key: str | None = None) -> dict[str, Any]:
    """The server at ``url``'s counters and histograms now, or ``{"error": ...}`` when it cannot be read."""
    request = urllib.request.Request(url.rstrip("/") + "/metrics", headers={"x-api-key": api_key} if api_key else {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as answer:
            text = answer.read(8 << 20).decode("utf-8", errors="replace")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return {"url": url, "time": time.time(), "error": f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"}
    return {"url": url, "time": time.time(), **parse_metrics(text)}


def parse_metrics(text: str) -> dict[str, Any]:
    """Totals and cumulative histograms from a seekforge server's Prometheus text."""
    parser = require("prometheus_client.parser", purpose="reading a server's metrics")
    out: dict[str, Any] = {"requests": {}, "errors": {}, "rows": 0.0, "latency": {}, "batch_rows": {},
                           "in_flight": 0.0, "queue_rows": 0.0, "models": [], "cpu_seconds": None,
                           "memory_bytes": None}  # fmt: skip
    for family in parser.text_string_to_metric_families(text):
        for sample in family.samples:
            name, labels, value = sample.name, sample.labels, float(sample.value)
            if name == "seekforge_requests_total":
                out["requests"][labels.get("code", "?")] = out["requests"].get(labels.get("code", "?"), 0.0) + value
            elif name == "seekforge_request_errors_total":
                reason = labels.get("reason", "?")
                out["errors"][reason] = out["errors"].get(reason, 0.0) + value
            elif name == "seekforge_rows_total":
                out["rows"] += value
            elif name == "seekforge_request_latency_seconds_bucket":
                out["latency"][labels["le"]] = out["latency"].get(labels["le"], 0.0) + value
            elif name == "seekforge_batch_rows_bucket":
                out["batch_rows"][labels["le"]] = out["batch_rows"].get(labels["le"], 0.0) + value
            elif name in ("seekforge_requests_in_flight", "seekforge_queue_rows"):
                out[name.removeprefix("seekforge_").replace("requests_", "")] = value
            elif name == "seekforge_model_info" and value:
                out["models"].append(dict(labels))
            elif name == "process_cpu_seconds_total":  # the server process's own use (Linux)
                out["cpu_seconds"] = value
            elif name == "process_resident_memory_bytes":
                out["memory_bytes"] = value
    for key in ("latency", "batch_rows"):  # bounds in order; +Inf last, as null (JSON has no infinity)
        pairs = sorted(([float(le), count] for le, count in out[key].items()), key=lambda pair: pair[0])
        out[key] = [[None if math.isinf(le) else le, count] for le, count in pairs]
    return out


def quantile(buckets: list[list[Any]], q: float) -> float | None:
    """The ``q`` quantile of cumulative ``[upper bound, count]`` buckets (the last bound None: +Inf),
    interpolated within its bucket as Prometheus's histogram_quantile does; None without observations."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank, lower, below = q * buckets[-1][1], 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if bound is None:
                return lower
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 0.0)
        lower, below = bound, count
    return lower


class ServerWatch:
    """One configured server, read on demand; each reading is compared with the one before it, at least
    ``min_seconds`` older, for rates and the latency percentiles of that interval."""

    def __init__(self, url: str, *, api_key: str | None = None, min_seconds: float = 0.5) -> None:
        self.url, self.api_key, self.min_seconds = url, api_key, min_seconds
        self._last: dict[str, Any] | None = None

    def read(self) -> dict[str, Any]:
        now = snapshot(self.url, api_key=self.api_key)
        if "error" in now:
            return {"snapshot": now, "interval": None}
        before, interval = self._last, None
        if before is not None and now["time"] - before["time"] >= self.min_seconds:
            interval = _interval(before, now)
        if before is None or interval is not None:
            self._last = now
        return {"snapshot": now, "interval": interval}


def _interval(before: dict[str, Any], now: dict[str, Any]) -> dict[str, Any]:
    seconds = now["time"] - before["time"]
    requests = sum(now["requests"].values()) - sum(before["requests"].values())
    errors = sum(now["errors"].values()) - sum(before["errors"].values())
    earlier = dict((le, count) for le, count in before["latency"])
    latency = [[le, count - earlier.get(le, 0.0)] for le, count in now["latency"]]
    cpu = None
    if now.get("cpu_seconds") is not None and before.get("cpu_seconds") is not None:
        cpu = (now["cpu_seconds"] - before["cpu_seconds"]) / seconds
    # the server restarted between the readings (even an idle one): its counters began again
    restarted = requests < 0 or (cpu is not None and cpu < 0)
    cpu = None if restarted else cpu
    return {
        "cpu_cores": cpu,  # CPU seconds a second: cores kept busy
        "seconds": seconds,
        "requests_per_s": None if restarted else requests / seconds,
        "errors_per_s": None if restarted else errors / seconds,
        "rows_per_s": None if restarted else (now["rows"] - before["rows"]) / seconds,
        **{f"p{round(q * 100)}": None if restarted else quantile(latency, q) for q in (0.5, 0.95, 0.99)},
    }
