from __future__ import annotations

import asyncio
import threading
import time

import pytest

from seekforge.core.errors import DataError
from seekforge.serve import DeadlineExceeded, DynamicBatcher, Overloaded, ShuttingDown
from tests.serve.conftest import Gate


class FakeClock:
    """The batcher's clock: time passes only when a model spends some."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Model:
    """Doubles each row's x, after ``delay`` real seconds and ``cost`` seconds of ``clock``; records the
    size of every batch it ran."""

    def __init__(self, delay: float = 0.0, *, cost: float = 0.0, clock: FakeClock | None = None) -> None:
        self.delay = delay
        self.cost = cost
        self.clock = clock or FakeClock()
        self.batches: list[int] = []
        self.threads: set[str] = set()

    def __call__(self, rows: list[dict]) -> list[dict]:
        self.threads.add(threading.current_thread().name)
        if any(row.get("bad") for row in rows):
            raise DataError("a bad row")
        time.sleep(self.delay)
        self.clock.now += self.cost
        self.batches.append(len(rows))
        return [{"y": row["x"] * 2} for row in rows]


def run(coro):
    return asyncio.run(coro)


def test_concurrent_requests_share_batches_counted_in_rows_and_keep_their_order() -> None:
    model = Model(delay=0.02)

    async def main():
        batcher = DynamicBatcher(model, max_batch_rows=8, max_wait_ms=50)
        requests = [[{"x": 10 * r + i} for i in range(3)] for r in range(6)]
        answers = await asyncio.gather(*(batcher.submit(rows) for rows in requests))
        await batcher.drain()
        return requests, answers

    requests, answers = run(main())
    for rows, answer in zip(requests, answers, strict=True):
        assert answer == [{"y": row["x"] * 2} for row in rows]
    assert sum(model.batches) == 18
    assert max(model.batches) <= 8  # whole requests only: 3 + 3 rows, never 9
    assert len(model.batches) < 6
    assert model.threads and not any(name.startswith("MainThread") for name in model.threads)


def test_a_batch_is_flushed_after_max_wait_without_filling() -> None:
    model = Model()

    async def main():
        batcher = DynamicBatcher(model, max_batch_rows=1000, max_wait_ms=30)
        started = time.perf_counter()
        await batcher.submit([{"x": 1}])
        waited = time.perf_counter() - started
        await batcher.drain()
        return waited

    waited = run(main())
    assert 0.025 <= waited < 1.0
    assert model.batches == [1]


def test_a_full_queue_refuses_with_a_retry_hint() -> None:
    model = Gate(Model())

    async def main():
        batcher = DynamicBatcher(model, max_batch_rows=2, max_wait_ms=0, max_queue_rows=4)
        first = asyncio.create_task(batcher.submit([{"x": 0}] * 2))
        await model.running()  # the first batch is running; the queue is empty again
        queued = [asyncio.create_task(batcher.submit([{"x": 1}] * 2)) for _ in range(2)]
        await asyncio.sleep(0)  # each task queues its rows
        assert batcher.queued_rows == 4
        with pytest.raises(Overloaded) as refused:
            await batcher.submit([{"x": 2}])
        model.open()
        await asyncio.gather(first, *queued)
        await batcher.drain()
        return refused.value, batcher.stats

    refused, stats = run(main())
    assert refused.retry_after > 0
    assert "4 rows are queued" in str(refused)
    assert stats.refused == 1 and stats.rows == 6


def test_a_request_past_its_deadline_is_never_run() -> None:
    model = Gate(Model())

    async def main():
        batcher = DynamicBatcher(model, max_batch_rows=1, max_wait_ms=0)
        slow = asyncio.create_task(batcher.submit([{"x": 1}]))
        await model.running()
        with pytest.raises(DeadlineExceeded):
            await batcher.submit([{"x": 2}], timeout=0.05)
        model.open()
        await slow
        await batcher.drain()
        return batcher.stats

    stats = run(main())
    assert model.fn.batches == [1]
    assert stats.expired == 1


def test_one_bad_request_does_not_fail_the_others_in_its_batch() -> None:
    model = Model()

    async def main():
        batcher = DynamicBatcher(model, max_batch_rows=10, max_wait_ms=30)
        results = await asyncio.gather(
            batcher.submit([{"x": 1}]), batcher.submit([{"x": 2, "bad": True}]), batcher.submit([{"x": 3}]),
            return_exceptions=True,
        )  # fmt: skip
        await batcher.drain()
        return results

    good, bad, other = run(main())
    assert good == [{"y": 2}] and other == [{"y": 6}]
    assert isinstance(bad, DataError)


def test_drain_answers_the_queue_then_refuses() -> None:
    model = Model(delay=0.01)

    async def main():
        batcher = DynamicBatcher(model, max_batch_rows=2, max_wait_ms=1)
        pending = [asyncio.create_task(batcher.submit([{"x": i}])) for i in range(5)]
        await asyncio.sleep(0)
        await batcher.drain(timeout=5)
        answers = [task.result() for task in pending]
        with pytest.raises(ShuttingDown):
            await batcher.submit([{"x": 9}])
        return answers

    assert run(main()) == [[{"y": 2 * i}] for i in range(5)]


def test_limits_are_checked() -> None:
    with pytest.raises(ValueError, match="max_batch_rows"):
        DynamicBatcher(Model(), max_batch_rows=0)


def test_a_lone_request_does_not_wait_when_no_other_is_arriving() -> None:
    model = Model()
    arriving = [0]

    async def main():
        batcher = DynamicBatcher(model, max_batch_rows=1000, max_wait_ms=10_000, arriving=lambda: arriving[0])
        started = time.perf_counter()
        await batcher.submit([{"x": 1}])
        alone = time.perf_counter() - started
        arriving[0] = 1  # another request is being read: the batch waits for it (up to max_wait)
        first = asyncio.create_task(batcher.submit([{"x": 2}]))
        await asyncio.sleep(0)  # the task queues its row; the batch waits
        assert batcher.queued_rows == 1
        arriving[0] = 0
        second = batcher.enqueue([{"x": 3}])
        await asyncio.gather(first, second)
        await batcher.drain()
        return alone, time.perf_counter() - started

    alone, both = run(main())
    assert alone < 5.0 and both < 5.0  # neither waited the 10 s max_wait
    assert model.batches == [1, 2]


def test_fast_batches_run_on_the_event_loop_and_slow_ones_on_the_worker_thread() -> None:
    fast, slow = Model(cost=0.004), Model(cost=0.006)

    async def main():
        for model in (fast, slow):
            batcher = DynamicBatcher(model, max_batch_rows=4, max_wait_ms=0, inline_below_ms=5.0, clock=model.clock)
            for i in range(4):
                assert await batcher.submit([{"x": i}]) == [{"y": 2 * i}]
            await batcher.drain()
            model.inline = batcher.stats.inline

    run(main())
    assert fast.inline == 3 and "MainThread" in fast.threads  # the first batch measures the model
    assert slow.inline == 0 and "MainThread" not in slow.threads


def test_one_slow_batch_does_not_send_a_fast_model_to_the_worker_thread() -> None:
    model = Model()
    costs = iter([0.001, 0.001, 0.001, 0.05, 0.001, 0.001, 0.001])  # the fourth batch waited, say for the GIL

    def run_model(rows: list[dict]) -> list[dict]:
        model.cost = next(costs)
        return model(rows)

    async def main():
        batcher = DynamicBatcher(run_model, max_batch_rows=4, max_wait_ms=0, inline_below_ms=5.0, clock=model.clock)
        for i in range(7):
            await batcher.submit([{"x": i}])
        await batcher.drain()
        return batcher.stats.inline

    assert run(main()) == 6  # all but the first, which measures the model


def test_a_deadline_is_kept_even_deep_in_the_queue() -> None:
    model = Gate(Model())

    async def main():
        batcher = DynamicBatcher(model, max_batch_rows=1, max_wait_ms=0)
        first = asyncio.create_task(batcher.submit([{"x": 1}]))
        await model.running()  # and runs until the gate opens: the deadline must not wait for it
        with pytest.raises(DeadlineExceeded):
            await batcher.submit([{"x": 2}], timeout=0.05)
        model.open()
        await first
        await batcher.drain()

    run(main())
    assert model.fn.batches == [1]


def test_a_refused_request_stops_the_batch_waiting_for_it() -> None:
    model = Model()
    arriving = [1]

    async def main():
        batcher = DynamicBatcher(model, max_batch_rows=10, max_wait_ms=30_000, arriving=lambda: arriving[0])
        started = time.perf_counter()
        task = asyncio.create_task(batcher.submit([{"x": 1}]))
        await asyncio.sleep(0)  # the task queues its row; the batch waits for the other request
        assert batcher.queued_rows == 1 and not task.done()
        arriving[0] = 0  # the other request failed validation
        batcher.poke()
        await task
        await batcher.drain()
        return time.perf_counter() - started

    assert run(main()) < 10.0  # not the 30 s max_wait


def test_a_drain_past_its_timeout_answers_the_running_batch_too() -> None:
    model = Gate(Model())

    async def main():
        batcher = DynamicBatcher(model, max_batch_rows=1, max_wait_ms=0)
        running = asyncio.create_task(batcher.submit([{"x": 1}]))
        queued = asyncio.create_task(batcher.submit([{"x": 2}]))
        await model.running()  # and runs until the gate opens, long after the drain's timeout
        await batcher.drain(timeout=0.05)
        results = await asyncio.gather(running, queued, return_exceptions=True)
        model.open()
        return results

    results = run(main())  # the event loop did not wait for the model: the gate opens only after the drain
    assert all(isinstance(r, ShuttingDown) for r in results)


def test_a_model_with_a_fixed_cost_per_call_is_never_run_inline() -> None:
    calls: list[int] = []
    clock = FakeClock()

    def fixed_cost(rows):  # 20 ms a call whatever the rows: spread over 64 rows it looks cheap
        calls.append(len(rows))
        clock.now += 0.02
        return [{"y": 0} for _ in rows]

    async def main():
        batcher = DynamicBatcher(fixed_cost, max_batch_rows=64, max_wait_ms=0, inline_below_ms=1.0, clock=clock)
        await batcher.submit([{"x": 0}] * 64)
        await batcher.submit([{"x": 0}])
        await batcher.drain()
        return batcher.stats.inline

    assert run(main()) == 0
