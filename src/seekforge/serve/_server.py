"""One process, one event loop: uvicorn for HTTP and grpc.aio for gRPC over the same :class:`ModelService`.

SIGTERM (or SIGINT) drains gracefully: readiness turns false on both protocols, the listeners stop
taking connections, queued and running requests are answered, the prediction log is flushed, and the
process exits 0. A second signal stops at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from seekforge.core.deps import require
from seekforge.core.errors import SeekforgeError
from seekforge.serve._service import ModelService
from seekforge.serve.config import ServeConfig

__all__ = ["Listening", "serve"]

logger = logging.getLogger("seekforge.serve")


@dataclass
class Listening:
    """Where a running server listens (ports are the bound ones, so port 0 picks a free port)."""

    host: str
    http_port: int | None
    grpc_port: int | None


def _bind(host: str, port: int, option: str, *, keep: bool) -> socket.socket | None:
    """A listening socket on ``host:port`` (kept for HTTP), or only a check that the port is free (gRPC binds
    its own), so that a taken port is one clear error rather than a server's log line."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: asyncio turns Nagle's algorithm off only on sockets that say they are TCP,
    # and with it on, each keep-alive response waits for the client's delayed ACK (about 40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SeekforgeError(
            f"cannot listen on {host}:{port} ({exc.strerror})",
            hint=f"choose another {option}, or stop the process that holds the port",
        ) from None
    if not keep:
        sock.close()
        return None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _uvicorn_server(app: Any, host: str, port: int, drain_seconds: float, limits: ServeConfig) -> Any:
    """uvicorn with httptools, bounded by :func:`_bounded_protocol`, and the keep-alive and connection limits."""
    uvicorn = require("uvicorn", purpose="the HTTP server")

    class Server(uvicorn.Server):  # type: ignore[misc,name-defined]
        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:  # the process's signals are handled by serve()
            yield

    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        http=_bounded_protocol(limits.max_header_bytes, limits.read_timeout_s),
        timeout_keep_alive=limits.keep_alive_s,
        limit_concurrency=limits.max_connections,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=int(drain_seconds),
        lifespan="off",
    )
    return Server(config)


def _bounded_protocol(max_head_bytes: int, seconds: float) -> type:
    """uvicorn's httptools protocol with the bounds its parser lacks: a request's line and headers larger
    than ``max_head_bytes`` get 431 and the connection closes (httptools would buffer a header of any
    size); a connection that takes longer than ``seconds`` to deliver a request's line and headers, from
    when it opens or from the first byte of the next request, is closed (uvicorn's keep-alive timeout
    closes only connections that send nothing after a response); a body that takes longer than
    ``seconds`` after its head gets 408. One timer per connection watches both deadlines."""
    require("httptools", purpose="the HTTP server")
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    class Protocol(HttpToolsProtocol):  # type: ignore[misc]
        head_since: float | None = None  # when the head being read began (None: between requests)
        body_since: float | None = None  # when the body being read began (None: none is being read)
        head_timer: asyncio.TimerHandle | None = None  # one per connection, not one per request
        head_bytes = 0
        in_head = True  # waiting for, or reading, a request's line and headers
        heads = 0  # heads read on this connection
        refused = False  # answered 431: the connection is closing

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.head_since = self.loop.time()  # a client that connects and sends nothing is slow too
            self.head_timer = self.loop.call_later(seconds, self._check)

        def data_received(self, data: bytes) -> None:
            # Count a chunk only while no head is complete in it: one that ends a head or a body may start
            # the next head, which the next chunk's count then catches
            started_in_head, heads = self.in_head, self.heads
            if started_in_head and self.head_since is None:
                self.head_since = self.loop.time()
            super().data_received(data)
            if started_in_head and self.heads == heads and not self.transport.is_closing():
                self.head_bytes += len(data)
                if self.head_bytes > max_head_bytes:
                    self._too_large()

        def on_headers_complete(self) -> None:
            self.in_head, self.head_since, self.head_bytes, self.heads = False, None, 0, self.heads + 1
            self.body_since = self.loop.time()
            # a head that came whole within one read is measured here: its line and header fields
            size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers) + 16
            if size > max_head_bytes:
                self._too_large()
                return
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if not self.refused:  # the rest of a refused request is read and dropped
                super().on_body(body)

        def on_message_complete(self) -> None:
            if not self.refused:
                super().on_message_complete()
            self.in_head, self.body_since = True, None

        def connection_lost(self, exc: Exception | None) -> None:
            if self.head_timer is not None:
                self.head_timer.cancel()
            super().connection_lost(exc)

        def _check(self) -> None:
            """Close the connection when its head is overdue, and answer 408 when its body is; else look
            again when either would be."""
            if self.transport.is_closing():
                return
            now = self.loop.time()
            head = now - self.head_since if self.in_head and self.head_since is not None else 0.0
            body = now - self.body_since if self.body_since is not None else 0.0
            if head >= seconds:
                self.transport.close()
                return
            if body >= seconds:
                cycle = self.cycle
                if cycle is not None:  # the handler waiting for the body hears of a disconnect
                    answered = cycle.response_started
                    cycle.disconnected = True
                    cycle.message_event.set()
                    if not answered:
                        self._refuse(
                            408, "Request Timeout", f"the request body took longer than {seconds:g} s to arrive"
                        )
                self.transport.close()
                return
            self.head_timer = self.loop.call_later(seconds - max(head, body), self._check)

        def _too_large(self) -> None:
            self._refuse(
                431, "Request Header Fields Too Large", f"request line and headers over {max_head_bytes} bytes"
            )

        def _refuse(self, status: int, phrase: str, message: str) -> None:
            self.refused = True
            body = message.encode()
            head = f"HTTP/1.1 {status} {phrase}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            head += f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
            self.transport.write(head.encode() + body)
            self.transport.close()

    return Protocol


def _grpc_options(config: ServeConfig) -> list[tuple[str, int]]:
    """gRPC's bounds: the message and metadata sizes, and how long an idle connection stays open."""
    return [
        ("grpc.max_receive_message_length", config.max_request_bytes),
        ("grpc.max_metadata_size", config.max_header_bytes),
        ("grpc.max_connection_idle_ms", int(config.grpc_idle_s * 1000)),
    ]


async def serve(
    service: ModelService,
    *,
    host: str = "127.0.0.1",
    http_port: int | None = 8000,
    grpc_port: int | None = 50051,
    drain_seconds: float = 30.0,
    on_ready: Callable[[Listening], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Serve ``service`` until SIGTERM/SIGINT (or until ``stop`` is set), then drain and return. SIGHUP
    reloads: each model's package folder or registry alias is read again, and a changed one swapped in.

    Args:
        service: The model service (started here).
        host: Interface to bind (``0.0.0.0`` in a container).
        http_port: HTTP port; None for no HTTP; 0 for any free port.
        grpc_port: gRPC port; None for no gRPC; 0 for any free port.
        drain_seconds: Longest a graceful stop waits for running requests.
        on_ready: Called once both listeners are up, with the bound ports.
        stop: Set it to stop the server as a signal would (for embedding and tests).
    """
    if http_port is None and grpc_port is None:
        raise ValueError("give an HTTP port, a gRPC port, or both")
    loop = asyncio.get_running_loop()
    stop = stop or asyncio.Event()
    http_socket = _bind(host, http_port, "--http-port", keep=True) if http_port is not None else None
    try:
        if grpc_port:
            _bind(host, grpc_port, "--grpc-port", keep=False)
    except SeekforgeError:
        if http_socket is not None:
            http_socket.close()
        raise
    grpc_server: Any = None
    health: Any = None
    http_server: Any = None
    http_task: asyncio.Task[None] | None = None
    grace = {"seconds": drain_seconds}
    background: list[asyncio.Task[Any]] = []

    def on_signal() -> None:
        if stop.is_set():  # a second signal: stop now, answering nothing more
            grace["seconds"] = 0.0
            if http_server is not None:
                http_server.force_exit = True
            if grpc_server is not None:
                background.append(loop.create_task(grpc_server.stop(grace=0)))
        stop.set()

    def on_hangup() -> None:  # reload: each model's package (or registry alias) again, swapped if changed
        if not stop.is_set():
            background.append(loop.create_task(service.refresh(folders=True)))

    installed = []
    for sig, handler in ((signal.SIGTERM, on_signal), (signal.SIGINT, on_signal), (signal.SIGHUP, on_hangup)):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
            loop.add_signal_handler(sig, handler)
            installed.append(sig)
    try:
        await service.start()
        bound_grpc: int | None = None
        if grpc_port is not None:
            grpc = require("grpc", purpose="the gRPC server")
            from grpc_health.v1 import health_pb2

            from seekforge.serve._grpc import SERVICE_NAME, add_services

            grpc_server = grpc.aio.server(options=_grpc_options(service.config))
            health = add_services(grpc_server, service)
            try:
                bound_grpc = grpc_server.add_insecure_port(f"{host}:{grpc_port}")
            except RuntimeError:
                raise SeekforgeError(
                    f"cannot listen on {host}:{grpc_port} for gRPC",
                    hint="choose another --grpc-port, or stop the process that holds the port",
                ) from None
            await grpc_server.start()
            for name in ("", SERVICE_NAME):
                await health.set(name, health_pb2.HealthCheckResponse.SERVING)

        bound_http: int | None = None
        if http_socket is not None:
            from seekforge.serve._http import create_app

            http_server = _uvicorn_server(
                create_app(service), host, http_socket.getsockname()[1], drain_seconds, service.config
            )
            http_task = loop.create_task(http_server.serve(sockets=[http_socket]), name="seekforge-http")
            while not http_server.started:
                if http_task.done():
                    await http_task
                    raise SeekforgeError(f"the HTTP server on {host}:{http_port} stopped while starting")
                await asyncio.sleep(0.01)
            bound_http = http_socket.getsockname()[1]

        if on_ready is not None:
            on_ready(Listening(host, bound_http, bound_grpc))
        stopped = loop.create_task(stop.wait())
        waiters: list[asyncio.Future[Any]] = [stopped, *([http_task] if http_task is not None else [])]
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if http_task is not None and http_task.done() and not stop.is_set():
            http_task.result()  # the HTTP server stopped on its own: say why
            raise SeekforgeError("the HTTP server stopped unexpectedly")
    finally:
        # Drain: not ready, stop listening, answer what is queued, flush the log.
        service.ready = False
        service.draining = True
        if health is not None:
            await health.enter_graceful_shutdown()
        stopping: list[Any] = []
        if grpc_server is not None:
            stopping.append(grpc_server.stop(grace=grace["seconds"]))
        if http_server is not None and http_task is not None:
            http_server.should_exit = True
            stopping.append(http_task)
        for outcome in await asyncio.gather(*stopping, return_exceptions=True):
            if isinstance(outcome, Exception):
                logger.error("a listener failed while stopping: %s", outcome)
        await service.drain(grace["seconds"])
        if http_socket is not None:
            http_socket.close()
        for sig in installed:
            loop.remove_signal_handler(sig)
