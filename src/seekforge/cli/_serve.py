"""``seekforge serve`` and ``monitor``: a package over HTTP and gRPC, and the drift of what it served."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from seekforge.monitor import MonitorResult

from seekforge.cli._common import (
    JsonFlag,
    err,
    options,
    out,
    print_json,
)
from seekforge.cli._registry import registered
from seekforge.core.errors import SeekforgeError


def serve(
    package: Annotated[Path, typer.Argument(help="Model package folder, or registry:NAME@ALIAS (or @VERSION).")],
    registry: Annotated[
        str | None,
        typer.Option("--registry", help="registry: references: its file or URL [default: runs/registry.db]."),
    ] = None,
    http_port: Annotated[int, typer.Option("--http-port", min=0, max=65535, help="HTTP port (0: any free).")] = 8000,
    grpc_port: Annotated[int, typer.Option("--grpc-port", min=0, max=65535, help="gRPC port (0: any free).")] = 50051,
    no_http: Annotated[bool, typer.Option("--no-http", help="Serve gRPC only.")] = False,
    no_grpc: Annotated[bool, typer.Option("--no-grpc", help="Serve HTTP only.")] = False,
    host: Annotated[str, typer.Option("--host", help="Interface to bind; 0.0.0.0 in a container.")] = "127.0.0.1",
    backend: Annotated[str, typer.Option("--backend", help="auto, torch, onnxruntime, openvino, ...")] = "auto",
    max_batch_rows: Annotated[int, typer.Option("--max-batch-rows", min=1, help="Most rows in one batch.")] = 64,
    max_wait_ms: Annotated[
        float, typer.Option("--max-wait-ms", min=0, help="Longest a batch waits for more rows.")
    ] = 5.0,
    no_batching: Annotated[bool, typer.Option("--no-batching", help="Run each request alone.")] = False,
    inline_below_ms: Annotated[
        float,
        typer.Option("--inline-below-ms", min=0, help="Run batches faster than this on the event loop (0: never)."),
    ] = 0.5,
    max_queue_rows: Annotated[
        int, typer.Option("--max-queue-rows", min=1, help="Rows queued before requests get 503.")
    ] = 4096,
    max_request_rows: Annotated[int, typer.Option("--max-request-rows", min=1, help="Records per request.")] = 1024,
    max_request_mb: Annotated[float, typer.Option("--max-request-mb", min=0.001, help="Request body limit.")] = 8.0,
    timeout_ms: Annotated[
        float, typer.Option("--timeout-ms", min=1, help="Default request deadline (clients may ask for less).")
    ] = 10_000.0,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="Inference threads.")] = None,
    cache_rows: Annotated[
        int, typer.Option("--cache-rows", min=0, help="Answer repeated records from the last N outputs (0: off).")
    ] = 0,
    api_key_file: Annotated[
        Path | None, typer.Option("--api-key-file", help="File of accepted API keys, one per line.")
    ] = None,
    log: Annotated[
        Path | None, typer.Option("--log", help="Prediction log (SQLite); default: predictions.db by the package.")
    ] = None,
    no_log: Annotated[bool, typer.Option("--no-log", help="Keep no prediction log.")] = False,
    log_retention: Annotated[
        str | None, typer.Option("--log-retention", help="Delete logged rows older than this (e.g. 30d).")
    ] = None,
    ready_file: Annotated[
        Path | None, typer.Option("--ready-file", help="Write the bound ports here as JSON once serving.")
    ] = None,
    print_dockerfile: Annotated[
        bool, typer.Option("--print-dockerfile", help="Print a Dockerfile; serve nothing.")
    ] = False,
    print_k8s: Annotated[
        bool, typer.Option("--print-k8s", help="Print a Kubernetes manifest (Deployment, Service, HPA); serve nothing.")
    ] = False,
    image: Annotated[
        str | None, typer.Option("--image", help="Image for --print-k8s, by tag (not latest) or digest.")
    ] = None,
    autoscale: Annotated[
        str, typer.Option("--autoscale", help="--print-k8s autoscaler: cpu, or in-flight (Prometheus adapter).")
    ] = "cpu",
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            "-s",
            help="Any other serving option: key=value (repeatable), e.g. max_header_bytes=65536, read_timeout_s=30, "
            "keep_alive_s=5, max_connections=1024, grpc_idle_s=300, coerce_numbers=true.",
        ),
    ] = None,
    source: Annotated[
        Path | None,
        typer.Option("--source", help="seekforge source tree the Dockerfile builds from (default: this install's)."),
    ] = None,
    wheel: Annotated[
        Path | None, typer.Option("--wheel", help="Install this seekforge wheel (make wheel) in the Dockerfile.")
    ] = None,
) -> None:
    """Serve the package over HTTP and gRPC in one process, with dynamic batching, metrics and a prediction log.

    SIGTERM drains: readiness turns false, queued requests are answered, the log is flushed.
    """
    import asyncio

    import yaml

    from seekforge.core.config import parse_duration
    from seekforge.core.errors import ConfigError
    from seekforge.core.package import read_manifest

    package = registered(package, registry)
    if print_dockerfile or print_k8s:
        from seekforge.serve import dockerfile, kubernetes

        manifest = read_manifest(package, verify=False)
        if print_dockerfile:
            text = dockerfile(package.resolve(), manifest, backend=backend, http_port=http_port,
                              grpc_port=grpc_port, source=source, wheel=wheel)  # fmt: skip
            out.print(text, markup=False, highlight=False, soft_wrap=True)
        if print_k8s:
            out.print(kubernetes(manifest, image=image, http_port=http_port, grpc_port=grpc_port, backend=backend,
                                 threads=threads, autoscale=autoscale),
                      markup=False, highlight=False, soft_wrap=True)  # fmt: skip
        return
    if no_http and no_grpc:
        raise ConfigError("--no-http and --no-grpc leave nothing to serve", hint="drop one of them")
    from seekforge.serve import Listening, ModelService, ServeConfig
    from seekforge.serve import serve as run_server

    keys: frozenset[str] = frozenset()
    if api_key_file is not None:
        try:
            keys = frozenset(
                line.strip() for line in api_key_file.read_text(encoding="utf-8").splitlines() if line.strip()
            )
        except OSError as exc:
            raise ConfigError(f"--api-key-file {api_key_file}: cannot read it ({exc.strerror})") from None
        if not keys:
            raise ConfigError(f"--api-key-file {api_key_file} holds no key", hint="write one key per line")
    values = {
        "backend": backend,
        "max_batch_rows": max_batch_rows,
        "max_wait_ms": max_wait_ms,
        "max_queue_rows": max_queue_rows,
        "max_request_rows": max_request_rows,
        "cache_rows": cache_rows,
        "max_request_bytes": int(max_request_mb * 1024 * 1024),
        "timeout_ms": timeout_ms,
        "threads": threads,
        "batching": not no_batching,
        "inline_below_ms": inline_below_ms,
        "api_keys": keys,
        "log": None if no_log else (log or package.parent / "predictions.db"),
        "log_retention_seconds": parse_duration(log_retention, what="--log-retention") if log_retention else None,
    }
    names = {"max_request_bytes": "--max-request-mb", "log_retention_seconds": "--log-retention"}
    for item in set_ or ():
        key, sep, value = item.partition("=")
        if not sep or key not in ServeConfig.model_fields or key in values:
            raise ConfigError(
                f"--set {item!r}: not a serving option of the form key=value",
                hint="keys: " + ", ".join(k for k in ServeConfig.model_fields if k not in values and k != "verify"),
            )
        values[key] = yaml.safe_load(value)
        names[key] = f"--set {key}"
    config = options(ServeConfig, values, names)
    service = ModelService(package, config)

    def ready(where: Listening) -> None:
        parts = [f"http://{where.host}:{where.http_port}"] if where.http_port is not None else []
        parts += [f"grpc {where.host}:{where.grpc_port}"] if where.grpc_port is not None else []
        batching = f"batches of up to {max_batch_rows} rows, {max_wait_ms:g} ms" if not no_batching else "no batching"
        logged = f"log {config.log}" if config.log else "no log"
        err.print(f"serving {service.manifest['name']} ({service.backend}) on {' and '.join(parts)}; {batching}; "
                  f"{logged}; SIGTERM or Ctrl-C drains and stops", markup=False, soft_wrap=True)  # fmt: skip
        if ready_file is not None:
            from seekforge.core.io import write_json_atomic

            write_json_atomic(ready_file, {"host": where.host, "http_port": where.http_port,
                                           "grpc_port": where.grpc_port, "pid": os.getpid()})  # fmt: skip

    asyncio.run(
        run_server(
            service,
            host=host,
            http_port=None if no_http else http_port,
            grpc_port=None if no_grpc else grpc_port,
            on_ready=ready,
        )
    )
    err.print("stopped: every queued request was answered and the log flushed", markup=False)


def monitor(
    package: Annotated[Path, typer.Argument(help="The served model package.")],
    log: Annotated[Path, typer.Option("--log", help="Prediction log written by seekforge serve.")],
    window: Annotated[
        str | None, typer.Option("--window", help="Window length, e.g. 1h or 7d; default: the whole log.")
    ] = None,
    windows: Annotated[int, typer.Option("--windows", min=1, help="How many windows back to report.")] = 1,
    labels: Annotated[
        Path | None, typer.Option("--labels", help="Labels: request_id[, position] and the output column.")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", help="YAML monitor section; default: the package recipe's.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help="Override a monitor setting: key=value or monitor.key=value (repeatable)."),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Report folder; default: monitor-<stamp> by the log.")
    ] = None,
    notify_url: Annotated[
        str | None, typer.Option("--notify", help="POST the verdict as JSON to this URL (a webhook).")
    ] = None,
    push: Annotated[
        str | None, typer.Option("--push", help="Push drift gauges to this Prometheus Pushgateway URL.")
    ] = None,
    metrics_file: Annotated[
        Path | None, typer.Option("--metrics-file", help="Write drift gauges here (*.prom, node_exporter textfile).")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Drift of the logged inputs and predictions against the training data's sketch; live metrics once
    labels arrive. Exits 0 for no drift, 1 when the latest window drifts, 3 when it has too few rows."""
    import yaml

    from seekforge.core.config import parse_duration
    from seekforge.core.config_file import load_config
    from seekforge.core.io import stamped_folder
    from seekforge.monitor import MonitorConfig, check_targets, monitor_package

    check_targets(push=push, metrics_file=metrics_file)

    overrides = [item.removeprefix("monitor.") for item in set_ or ()]  # the recipe's spelling works too
    if config is not None:
        monitor_config = load_config(config, MonitorConfig, what="monitor configuration", overrides=overrides)
    else:
        recipe_file = package / "recipe.yaml"
        section = (
            (yaml.safe_load(recipe_file.read_text(encoding="utf-8")) or {}).get("monitor")
            if recipe_file.is_file()
            else None
        )
        monitor_config = load_config(section or {}, MonitorConfig, what="monitor section", overrides=overrides)
    seconds = parse_duration(window, what="--window") if window else None
    folder = output or stamped_folder(log.parent, "monitor-")
    result = monitor_package(
        package, log, window_seconds=seconds, windows=windows, labels=labels, config=monitor_config, output=folder
    )
    if as_json:
        print_json({**result.to_dict(), "output": folder})
    else:
        _print_monitor(result)
    err.print(f"wrote {folder}/monitor.html and monitor.json", markup=False)
    from seekforge.monitor import notify, push_drift, verdict_message, write_drift_textfile

    failed: list[SeekforgeError] = []  # every target is tried, so one that is down silences no other
    for wanted, send, done in (
        (notify_url, lambda: notify(notify_url or "", verdict_message(result)), f"notified {notify_url}"),
        (push, lambda: push_drift(push or "", result), f"pushed drift gauges to {push}"),
        (metrics_file, lambda: write_drift_textfile(metrics_file, result), f"wrote {metrics_file}"),  # type: ignore[arg-type]
    ):
        if wanted is None:
            continue
        try:
            send()
            err.print(done, markup=False)
        except SeekforgeError as exc:
            failed.append(exc)
    if len(failed) > 1:
        for exc in failed[:-1]:
            err.print(f"error: {exc.message}", markup=False)
    if failed:
        raise failed[-1]
    if result.status != "no drift":
        raise typer.Exit(1 if result.drift else 3)


def _print_monitor(result: MonitorResult) -> None:
    current = result.current
    span = current.to_dict()
    table = Table("feature", "type", "test", "statistic", "threshold", "drift", title=escape(
        f"{result.version}: {current.drift.rows} rows from {span['start']} to {span['end']}"))  # fmt: skip
    for feature in current.drift.features:
        found = [(feature.name, feature.test, feature.statistic, feature.threshold, feature.drifted)]
        if (emb := feature.embedding) is not None:  # the feature's row says whether it drifted either way
            found.append((f"{feature.name} (embeddings)", emb.test, emb.statistic, emb.threshold, emb.drifted))
        for name, test, statistic, threshold, drifted in found:
            table.add_row(
                escape(name), feature.type, test, "" if statistic is None else f"{statistic:.4g}",
                f"{threshold:g}", "[bold red]yes[/]" if drifted else "no",
            )  # fmt: skip
    out.print(table)
    if len(result.windows) > 1:
        trend = ", ".join(f"{w.drift.drifted_count}/{len(w.drift.features)}" for w in result.windows)
        out.print(f"drifted features per window, oldest first: {trend}", markup=False)
    if current.live_metrics:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in current.live_metrics.items() if not k.startswith("rows"))
        test = ", ".join(f"{k} {v:.4f}" for k, v in result.test_metrics.items() if k in current.live_metrics)
        out.print(f"live metrics on {current.labelled} labelled rows: {shown} (test split: {test})", markup=False)
    state = result.state
    if state.killed_sessions or state.dropped_rows:
        err.print(f"the log lost {state.lost_rows} rows in {state.killed_sessions} killed sessions and dropped "
                  f"{state.dropped_rows} when its queue was full", markup=False)  # fmt: skip
    out.print(result.verdict, markup=False)
