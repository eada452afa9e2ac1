"""``seekforge serve``: a package over HTTP and gRPC."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from seekforge.cli._common import (
    ApiKeyFile,
    err,
    options,
    out,
)
from seekforge.cli._registry import registered


def serve(
    package: Annotated[Path, typer.Argument(help="Model package folder, or registry:NAME@ALIAS (or @VERSION).")],
    registry: Annotated[
        str | None,
        typer.Option("--registry", help="registry: references: its file or URL \\[default: runs/registry.db]."),
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
    canary: Annotated[
        str | None,
        typer.Option(
            "--canary",
            help="A second package answering a share of requests: FOLDER or registry:REF, :PCT% "
            "after it (default 10%).",
        ),
    ] = None,
    shadow: Annotated[
        str | None, typer.Option("--shadow", help="A package sent every request too; its answers logged, not returned.")
    ] = None,
    index: Annotated[
        Path | None,
        typer.Option("--index", help="Answer POST /v1/search from this index (seekforge index build, this package)."),
    ] = None,
    cache_rows: Annotated[
        int, typer.Option("--cache-rows", min=0, help="Answer repeated records from the last N outputs (0: off).")
    ] = 0,
    api_key_file: ApiKeyFile = None,
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

    SIGTERM drains: readiness turns false, queued requests are answered, the log is flushed. SIGHUP reloads:
    a changed package is swapped in with no request failed; registry: references are followed on their own
    (every follow_s seconds, --set follow_s=N).
    """
    import asyncio

    import yaml

    from seekforge.core.config import parse_duration
    from seekforge.core.errors import ConfigError
    from seekforge.core.package import read_manifest

    reference = str(package)  # served as given: a registry reference is followed
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
    from seekforge.core.api_keys import read_api_keys
    from seekforge.serve import Listening, ModelService, ServeConfig
    from seekforge.serve import serve as run_server

    keys = read_api_keys(api_key_file) if api_key_file is not None else frozenset()
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
        "registry": registry,
        "shadow": shadow,
        "index": index,
        **_canary(canary),
        "log": None if no_log else (log or package.parent / "predictions.db"),
        "log_retention_seconds": parse_duration(log_retention, what="--log-retention") if log_retention else None,
    }
    names = {"max_request_bytes": "--max-request-mb", "log_retention_seconds": "--log-retention",
             "canary_percent": "--canary", "canary": "--canary", "shadow": "--shadow", "index": "--index"}  # fmt: skip
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
    service = ModelService(reference, config)

    def ready(where: Listening) -> None:
        parts = [f"http://{where.host}:{where.http_port}"] if where.http_port is not None else []
        parts += [f"grpc {where.host}:{where.grpc_port}"] if where.grpc_port is not None else []
        batching = f"batches of up to {max_batch_rows} rows, {max_wait_ms:g} ms" if not no_batching else "no batching"
        logged = f"log {config.log}" if config.log else "no log"
        others = [f"{m.role} {m.version} ({m.backend})" for m in service.models.values() if m.role != "primary"]
        logged += "".join(f"; {o}" for o in others)
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


def _canary(value: str | None) -> dict[str, object]:
    """``--canary FOLDER`` or ``--canary registry:NAME@ALIAS:25%`` as the canary and its share."""
    if value is None:
        return {}
    head, sep, tail = value.rpartition(":")
    share = tail.removesuffix("%")
    if sep and tail.endswith("%") and share.replace(".", "", 1).isdigit():
        return {"canary": head, "canary_percent": float(share)}
    return {"canary": value}
