"""What the memory benchmarks share: running a measurement in a child process of its own (its peak
resident memory is its own), and reading a process's resident memory."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any


def in_child(target: Callable[..., None], *args: Any) -> dict[str, Any]:
    """Run ``target(*args, queue)`` in a fresh (spawned) process and return what it puts on the queue."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=target, args=(*args, queue))
    process.start()
    found = queue.get()
    process.join()
    return found


def resident_mib() -> float:
    """This process's resident memory now (not its peak), MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")
