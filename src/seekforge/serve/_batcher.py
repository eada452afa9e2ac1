"""The dynamic batcher both protocols share: requests' rows are gathered into batches counted in rows.

A batch closes when it holds ``max_batch_rows`` rows or when its first request has waited ``max_wait_ms``,
whichever comes first, and at once when no other request is on its way (``arriving``: requests the
server has received but not yet queued), so a lone request does not wait for company that is not
coming. Inference runs on a worker thread, off the event loop; while it runs, the next batch fills, so
batches grow with load on their own. A batch whose measured cost is below ``inline_below_ms`` (a small
model's) runs on the event loop itself when no other request waits: handing it to the thread and back
would cost more than the model.
Each request gets its own rows back, in order.

The queue is bounded in rows: a request that does not fit is refused at once with :class:`Overloaded`
(HTTP 503, gRPC RESOURCE_EXHAUSTED) and a retry hint, rather than queued until its client gives up.
A request whose deadline passes while it waits is answered with :class:`DeadlineExceeded` and never run.
"""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from seekforge.core.errors import SeekforgeError

__all__ = ["BatchStats", "DeadlineExceeded", "DynamicBatcher", "Overloaded", "ShuttingDown"]

Rows = list[dict[str, Any]]
#: How often queued requests' deadlines are checked.
SWEEP_SECONDS = 0.005
#: How many of the latest batches the time of a batch is the median of.
RECENT_BATCHES = 15


class Overloaded(SeekforgeError, RuntimeError):
    """The queue is full; ``retry_after`` is the number of seconds after which a retry may fit."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message, hint=f"retry after {retry_after:.2f} s")
        self.retry_after = retry_after


class DeadlineExceeded(SeekforgeError, TimeoutError):
    """The request's deadline passed before its rows were run."""


class ShuttingDown(SeekforgeError, RuntimeError):
    """The server is draining: no new requests are taken."""


@dataclass
class _Pending:
    rows: Rows
    future: asyncio.Future[Rows]
    deadline: float | None  # time.monotonic() value
    arrived: float = field(default_factory=time.monotonic)


@dataclass
class BatchStats:
    """What the batcher has done so far (the metrics read it)."""

    batches: int = 0
    rows: int = 0
    expired: int = 0
    refused: int = 0
    inline: int = 0  # batches run on the event loop (see ``inline_below_ms``)
    recent_seconds_per_row: float = 0.0  # smoothed inference time per row, for the retry hint
    recent_batch_seconds: float = 0.0  # median time of the latest batches, for running inline
    recent_batch_rows: float = 0.0  # smoothed rows in a batch


class DynamicBatcher:
    """Gathers rows from concurrent requests into batches for ``run``.

    Args:
        run: Predicts a batch: takes rows, returns one output per row, in order. Called on a worker thread.
        max_batch_rows: Most rows in one batch (a single larger request runs alone, as one batch).
        max_wait_ms: Longest a batch's first request waits for others to join it.
        max_queue_rows: Most rows waiting; beyond it requests are refused with :class:`Overloaded`.
        on_batch: Called on the event loop after each batch with (rows in the batch, seconds it ran,
            whether it ran on the event loop rather than the worker thread).
        arriving: How many requests are on their way to the queue (received, still being read or
            validated); None: always wait up to ``max_wait_ms``.
        inline_below_ms: Run a batch on the event loop, when nothing else waits, if batches have been
            measured to take less than this (see :meth:`_inline_ok`); 0 always uses the worker thread.
        clock: Seconds, to time each batch (a fake clock in tests makes a model's cost exact).
    """

    def __init__(
        self,
        run: Callable[[Rows], Rows],
        *,
        max_batch_rows: int = 64,
        max_wait_ms: float = 5.0,
        max_queue_rows: int = 4096,
        on_batch: Callable[[int, float, bool], None] | None = None,
        arriving: Callable[[], int] | None = None,
        inline_below_ms: float = 0.0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if max_batch_rows < 1 or max_queue_rows < 1 or max_wait_ms < 0:
            raise ValueError("max_batch_rows and max_queue_rows must be >= 1 and max_wait_ms >= 0")
        self._run = run
        self.max_batch_rows = max_batch_rows
        self.max_wait = max_wait_ms / 1000.0
        self.max_queue_rows = max_queue_rows
        self._on_batch = on_batch
        self._arriving = arriving
        self.inline_below = inline_below_ms / 1000.0
        self._clock = clock
        self._queue: deque[_Pending] = deque()
        self._queued_rows = 0
        self._arrival = asyncio.Event()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="seekforge-infer")
        self._task: asyncio.Task[None] | None = None
        self._running: list[_Pending] = []  # the batch being run
        self._deadlines = asyncio.Event()  # set when a request with a deadline is queued
        self._sweeper: asyncio.Task[None] | None = None
        self._closing = False
        self._recent_seconds: deque[float] = deque(maxlen=RECENT_BATCHES)
        self.stats = BatchStats()

    @property
    def queued_rows(self) -> int:
        return self._queued_rows

    def start(self) -> None:
        """Start the batching loop (and the deadline sweeper) on the running event loop."""
        if self._task is None:
            loop = asyncio.get_running_loop()
            self._task = loop.create_task(self._loop(), name="seekforge-batcher")
            self._sweeper = loop.create_task(self._sweep(), name="seekforge-deadlines")

    async def submit(self, rows: Sequence[dict[str, Any]], *, timeout: float | None = None) -> Rows:
        """Queue ``rows`` and wait for their outputs (see :meth:`enqueue`)."""
        return await self.enqueue(rows, timeout=timeout)

    def enqueue(self, rows: Sequence[dict[str, Any]], *, timeout: float | None = None) -> asyncio.Future[Rows]:
        """Queue ``rows`` now; the returned future gets their outputs. Call it on the event loop.

        Raises:
            Overloaded: The queue has no room for these rows now.
            ShuttingDown: The batcher is draining.

        The future raises :class:`DeadlineExceeded` when ``timeout`` seconds pass before the rows run.
        """
        if self._closing:
            raise ShuttingDown("the server is shutting down and takes no new requests")
        n = len(rows)
        if self._queued_rows and self._queued_rows + n > self.max_queue_rows:
            self.stats.refused += 1
            per_row = self.stats.recent_seconds_per_row or 1e-3  # until a batch has run: a guess of 1 ms
            backlog = self._queued_rows * per_row + self.max_wait
            raise Overloaded(
                f"the server is busy: {self._queued_rows} rows are queued (limit {self.max_queue_rows})",
                retry_after=max(backlog, 0.01),
            )
        self.start()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else time.monotonic() + timeout
        pending = _Pending(list(rows), loop.create_future(), deadline)
        if deadline is not None:
            self._deadlines.set()
        self._queue.append(pending)
        self._queued_rows += n
        self._arrival.set()
        return pending.future

    async def _sweep(self) -> None:
        """Answer queued requests whose deadline has passed, even deep in the queue: every few milliseconds
        while any queued request has a deadline (one timer for all, rather than one per request)."""
        while True:
            if not any(p.deadline is not None for p in self._queue):
                self._deadlines.clear()
                await self._deadlines.wait()
                continue
            await asyncio.sleep(SWEEP_SECONDS)
            now = time.monotonic()
            for pending in self._queue:
                if pending.deadline is not None and now > pending.deadline and not pending.future.done():
                    self.stats.expired += 1
                    pending.future.set_exception(DeadlineExceeded("the request's deadline passed while it was queued"))

    def poke(self) -> None:
        """Wake the batching loop: a request it was waiting for will not come (it was refused)."""
        self._arrival.set()

    async def _loop(self) -> None:
        while True:
            if not self._queue:
                if self._closing:
                    return
                self._arrival.clear()
                await self._arrival.wait()
                continue
            first = self._queue[0]
            wait = first.arrived + self.max_wait - time.monotonic()
            while wait > 0 and self._queued_rows < self.max_batch_rows and not self._closing and self._expecting():
                self._arrival.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._arrival.wait(), wait)
                wait = first.arrived + self.max_wait - time.monotonic()
            batch = self._take()
            if not batch:
                continue
            self._running = batch
            try:
                await self._execute(batch)
            except Exception as exc:  # the loop must outlive any batch: its requests get the error
                for pending in batch:
                    _settle(pending.future, exc=exc)
            finally:
                self._running = []

    def _expecting(self) -> bool:
        return self._arriving is None or self._arriving() > 0

    def _take(self) -> list[_Pending]:
        """Requests for the next batch, oldest first, up to ``max_batch_rows`` rows (at least one request);
        requests already answered (deadline passed, caller gone) are left out."""
        batch: list[_Pending] = []
        rows = 0
        while self._queue:
            head = self._queue[0]
            if batch and rows + len(head.rows) > self.max_batch_rows:
                break
            self._queue.popleft()
            self._queued_rows -= len(head.rows)
            if head.future.done():
                continue
            batch.append(head)
            rows += len(head.rows)
        return batch

    def _inline_ok(self, rows: int) -> bool:
        """Whether a batch of ``rows`` should run on the event loop: batches have been measured to be fast
        and nothing else waits. Under load the worker thread runs the model on another core (onnxruntime
        and torch release the GIL) while the event loop reads and answers other requests.

        The estimate is the median time of the latest batches, scaled up (never down) by how many more rows
        this one has than the smoothed batch: a model's fixed cost per call is never spread thin."""
        if self.stats.batches == 0 or self._queue or (self._arriving is not None and self._arriving() > 0):
            return False
        scale = max(1.0, rows / max(self.stats.recent_batch_rows, 1.0))
        return self.stats.recent_batch_seconds * scale < self.inline_below

    async def _execute(self, batch: list[_Pending]) -> None:
        rows = [row for pending in batch for row in pending.rows]
        inline = self._inline_ok(len(rows))
        started = self._clock()
        try:
            if inline:
                self.stats.inline += 1
                outputs = self._run(rows)
            else:
                outputs = await asyncio.get_running_loop().run_in_executor(self._executor, self._run, rows)
        except Exception as exc:
            if len(batch) == 1:
                _settle(batch[0].future, exc=exc)
            else:  # one request's bad rows must not fail the others: run each alone
                for pending in batch:
                    await self._execute([pending])
            return
        self._record(batch, outputs, self._clock() - started, inline)

    def _record(self, batch: list[_Pending], outputs: Rows, seconds: float, inline: bool) -> None:
        """Count a batch that ran, and hand each request its own rows."""
        rows = len(outputs)
        stats = self.stats
        stats.batches += 1
        stats.rows += rows
        first = stats.recent_batch_rows == 0
        stats.recent_seconds_per_row = _smooth(stats.recent_seconds_per_row, seconds / max(rows, 1), first)
        # The median, not a mean: a batch that waited for the GIL (a log write, a collection) must not make
        # the model look slow, or its batches would go to the thread, where they wait for the GIL longer.
        self._recent_seconds.append(seconds)
        stats.recent_batch_seconds = statistics.median_high(self._recent_seconds)
        stats.recent_batch_rows = _smooth(stats.recent_batch_rows, rows, first)
        if self._on_batch is not None:
            self._on_batch(rows, seconds, inline)
        start = 0
        for pending in batch:
            end = start + len(pending.rows)
            _settle(pending.future, result=outputs[start:end])
            start = end

    async def drain(self, timeout: float | None = None) -> None:
        """Take no new requests, run every queued one, then stop the worker thread. Past ``timeout``,
        whatever is still queued or running is answered with :class:`ShuttingDown`."""
        self._closing = True
        self._arrival.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), timeout)
            except TimeoutError:
                self._task.cancel()
                stopped = ShuttingDown("the server stopped before this request ran")
                for pending in [*self._running, *self._queue]:
                    _settle(pending.future, exc=stopped)
                self._queue.clear()
                self._queued_rows = 0
        if self._sweeper is not None:
            self._sweeper.cancel()
        # a batch still running in the thread finishes there; the event loop does not wait for it
        self._executor.shutdown(wait=False, cancel_futures=True)


def _smooth(old: float, new: float, first: bool) -> float:
    return new if first else 0.8 * old + 0.2 * new


def _settle(future: asyncio.Future[Rows], *, result: Rows | None = None, exc: BaseException | None = None) -> None:
    if future.done():
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result or [])
