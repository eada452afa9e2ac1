from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

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


class Gate:
    """Wraps a model: each call says it has started, then holds until the test opens the gate. A model
    busy for exactly as long as a test needs, however loaded the machine, where a sleep would guess."""

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.started = threading.Event()
        self.gate = threading.Event()
        self.calls: list[tuple[Any, ...]] = []  # the arguments of each call

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(args)
        self.started.set()
        if not self.gate.wait(60):
            raise TimeoutError("the test never opened the gate")
        return self.fn(*args, **kwargs)

    async def running(self) -> None:
        """Wait, on an event loop, until a call has started."""
        assert await asyncio.to_thread(self.started.wait, 60), "the model was never called"

    def open(self) -> None:
        self.gate.set()


def wait_until(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    """Return once ``condition()`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.005)


def open_when(gate: Gate, condition: Callable[[], bool]) -> None:
    """Open ``gate`` once ``condition()`` holds (or after a minute, so a failing test does not hang)."""
    try:
        wait_until(condition)
    finally:
        gate.open()
