from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from seekforge.serve import Listening, ModelService, ServeConfig, serve


@contextmanager
def running(
    package: Path, config: ServeConfig, *, http: bool = True, grpc: bool = True
) -> Iterator[tuple[ModelService, Listening]]:
    """A real server on free loopback ports, in a thread with its own event loop; stopped (drained) after."""
    service = ModelService(package, config)
    started = threading.Event()
    where: list[Listening] = []
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    failure: list[BaseException] = []

    def ready(listening: Listening) -> None:
        where.append(listening)
        started.set()

    def main() -> None:
        try:
            loop.run_until_complete(
                serve(service, http_port=0 if http else None, grpc_port=0 if grpc else None, on_ready=ready, stop=stop)
            )
        except BaseException as exc:
            failure.append(exc)
            started.set()
        finally:
            loop.close()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    assert started.wait(60), "the server did not start"
    if failure:
        raise failure[0]
    try:
        yield service, where[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(60)
        assert not thread.is_alive()
        if failure:
            raise failure[0]
