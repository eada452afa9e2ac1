"""The monitor's verdict as Prometheus gauges: pushed to a Pushgateway (the way batch jobs report to
Prometheus) or written for node_exporter's textfile collector, so drift is graphed and alerted on beside
the server's own ``/metrics``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from seekforge.core.deps import require
from seekforge.core.errors import SeekforgeError

#: The Pushgateway job the gauges are pushed under; the grouping key adds ``model``.
JOB = "seekforge_monitor"


def drift_registry(result: Any) -> Any:
    """A registry holding the latest window's gauges, every one labelled with the model version.

    - ``seekforge_drift`` (1: drift), ``seekforge_drift_enough_data`` (0: too few rows to judge),
      ``seekforge_drift_rows``, ``seekforge_drift_features_drifted``, ``seekforge_drift_share``;
    - per feature (``feature``, ``test``): ``seekforge_feature_drift_statistic``,
      ``seekforge_feature_drift_threshold``, ``seekforge_feature_drifted``, ``seekforge_feature_missing_share``;
    - ``seekforge_live_metric`` (``metric``) once labels arrive; ``seekforge_drift_window_end_timestamp_seconds``
      and ``seekforge_drift_last_check_timestamp_seconds`` (to alert on a check that stopped running).
    """
    prom = require("prometheus_client", purpose="Prometheus drift gauges")
    registry = prom.CollectorRegistry()
    current = result.current
    drift = current.drift
    version = {"model_version": result.version}

    def gauge(name: str, help: str, value: float, **labels: str) -> None:
        metric = gauges.get(name)
        if metric is None:
            metric = gauges[name] = prom.Gauge(name, help, [*version, *labels], registry=registry)
        metric.labels(**version, **labels).set(value)

    gauges: dict[str, Any] = {}
    gauge("seekforge_drift", "1 when the latest window drifted", float(drift.drift))
    gauge("seekforge_drift_enough_data", "0 when the latest window has too few rows to judge", float(drift.enough_data))
    gauge("seekforge_drift_rows", "Rows in the latest window", drift.rows)
    gauge("seekforge_drift_features_drifted", "Features that drifted in the latest window", drift.drifted_count)
    gauge("seekforge_drift_share", "Share of features that drifted in the latest window", drift.drifted_share)
    features = [*drift.features, *([drift.prediction] if drift.prediction is not None else [])]
    for feature in features:
        labels = {"feature": feature.name, "test": feature.test}
        if feature.statistic is not None:
            gauge("seekforge_feature_drift_statistic", "The feature's drift statistic", feature.statistic, **labels)
        gauge("seekforge_feature_drift_threshold", "The statistic's threshold", feature.threshold, **labels)
        gauge("seekforge_feature_drifted", "1 when the feature drifted", float(feature.drifted), **labels)
        gauge("seekforge_feature_missing_share", "Share of live rows missing the feature", feature.missing_live,
              **labels)  # fmt: skip
    for metric, value in (current.live_metrics or {}).items():
        if not metric.startswith("rows"):
            gauge("seekforge_live_metric", "A metric on the window's labelled rows", float(value), metric=metric)
    gauge("seekforge_drift_window_end_timestamp_seconds", "End of the latest window", current.end)
    prom.Gauge(
        "seekforge_drift_last_check_timestamp_seconds", "When the check ran", list(version), registry=registry
    ).labels(**version).set_to_current_time()
    return registry


def check_targets(*, push: str | None = None, metrics_file: Path | None = None) -> None:
    """Refuse a push URL or textfile path that cannot work, before any monitoring is done.

    Raises:
        SeekforgeError: ``push`` is not http(s), or ``metrics_file`` does not end in ``.prom``.
    """
    if push is not None and not push.startswith(("http://", "https://")):
        raise SeekforgeError(f"--push {push!r}: not an http:// or https:// URL of a Prometheus Pushgateway")
    if metrics_file is not None and metrics_file.suffix != ".prom":
        raise SeekforgeError(f"--metrics-file {metrics_file}: the textfile collector reads only *.prom files",
                             hint=f"name it {metrics_file.with_suffix('.prom').name}")  # fmt: skip


def push_drift(url: str, result: Any, *, timeout: float = 10.0) -> None:
    """Replace the gauges of this model's group on the Pushgateway at ``url``.

    Raises:
        SeekforgeError: The URL is not http(s), or the gateway cannot be reached or refuses the push.
    """
    prom = require("prometheus_client", purpose="Prometheus drift gauges")
    check_targets(push=url)
    name = result.version.split(":", 1)[0]
    try:
        prom.push_to_gateway(url, job=JOB, registry=drift_registry(result), grouping_key={"model": name},
                             timeout=timeout)  # fmt: skip
    except OSError as exc:  # URLError, HTTPError and timeouts are all OSErrors
        reason = getattr(exc, "reason", None) or exc
        raise SeekforgeError(f"--push {url}: the Pushgateway refused or cannot be reached ({reason})",
                             hint="the reports are written") from None  # fmt: skip


def write_drift_textfile(path: Path, result: Any) -> None:
    """Write the gauges for node_exporter's textfile collector (atomically: it may read at any time)."""
    prom = require("prometheus_client", purpose="Prometheus drift gauges")
    from seekforge.core.io import write_text_atomic

    check_targets(metrics_file=path)
    write_text_atomic(path, prom.generate_latest(drift_registry(result)).decode())
