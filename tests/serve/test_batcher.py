from __future__ import annotations

import asyncio
import threading
import time

import pytest

from seekforge.core.errors import DataError
from seekforge.serve._batcher import DeadlineExceeded, DynamicBatcher, Overloaded, ShuttingDown


class Model:
    """Doubles each row's x, after ``delay`` seconds; records the size of every batch it ran."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.batches: list[int] = []
        self.threads: set[str] = set()

    def __call__(self, rows: list[dict]) -> list[dict]:
        self.threads.add(threading.current_thread().name)
        if any(row.get("bad") for row in rows):
            raise DataError("a bad row")
        time.sleep(self.delay)
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
    model = Model(delay=0.2)

    async def main():
        batcher = DynamicBatcher(model, max_batch_rows=2, max_wait_ms=0, max_queue_rows=4)
        first = asyncio.create_task(batcher.submit([{"x": 0}] * 2))
        await asyncio.sleep(0.05)  # the first batch is running; the queue is empty again
        queued = [asyncio.create_task(batcher.submit([{"x": 1}] * 2)) for _ in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(Overloaded) as refused:
            await batcher.submit([{"x": 2}])
        await asyncio.gather(first, *queued)
        await batcher.drain()
        return refused.value, batcher.stats

    refused, stats = run(main())
    assert refused.retry_after > 0
    assert "4 rows are queued" in str(refused)
    assert stats.refused == 1 and stats.rows == 6


def test_a_request_past_its_deadline_is_never_run() -> None:
    model = Model(delay=0.15)

    async def main():
        batcher = DynamicBatcher(model, max_batch_rows=1, max_wait_ms=0)
        slow = asyncio.create_task(batcher.submit([{"x": 1}]))
        await asyncio.sleep(0.01)
        with pytest.raises(DeadlineExceeded):
            await batcher.submit([{"x": 2}], timeout=0.05)
        await slow
        await batcher.drain()
        return batcher.stats

    stats = run(main())
    assert model.batches == [1]
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
        batcher = DynamicBatcher(model, max_batch_rows=1000, max_wait_ms=500, arriving=lambda: arriving[0])
        started = time.perf_counter()
        await batcher.submit([{"x": 1}])
        alone = time.perf_counter() - started
        arriving[0] = 1  # another request is being read: the batch waits for it (up to max_wait)
        first = asyncio.create_task(batcher.submit([{"x": 2}]))
        await asyncio.sleep(0.05)
        arriving[0] = 0
        second = batcher.enqueue([{"x": 3}])
        await asyncio.gather(first, second)
        await batcher.drain()
        return alone

    assert run(main()) < 0.25
    assert model.batches == [1, 2]


def test_fast_batches_run_on_the_event_loop_and_slow_ones_on_the_worker_thread() -> None:
    fast, slow = Model(), Model(delay=0.01)

    async def main():
        for model in (fast, slow):
            batcher = DynamicBatcher(model, max_batch_rows=4, max_wait_ms=0, inline_below_ms=5.0)
            for i in range(4):
                assert await batcher.submit([{"x": i}]) == [{"y": 2 * i}]
            await batcher.drain()
            model.inline = batcher.stats.inline

    run(main())
    assert fast.inline == 3 and "MainThread" in fast.threads  # the first batch measures the model
    assert slow.inline == 0 and "MainThread" not in slow.threads


def test_one_slow_batch_does_not_send_a_fast_model_to_the_worker_thread() -> None:
    model = Model()
    delays = iter([0.0, 0.0, 0.0, 0.05, 0.0, 0.0, 0.0])  # the fourth batch waited, say for the GIL

    def run_model(rows: list[dict]) -> list[dict]:
        model.delay = next(delays)
        return model(rows)

    async def main():
        batcher = DynamicBatcher(run_model, max_batch_rows=4, max_wait_ms=0, inline_below_ms=5.0)
        for i in range(7):
            await batcher.submit([{"x": i}])
        await batcher.drain()
        return batcher.stats.inline

    assert run(main()) == 6  # all but the first, which measures the model


def test_a_deadline_is_kept_even_deep_in_the_queue() -> None:
    model = Model(delay=0.3)

    async def main():
        batcher = DynamicBatcher(model, max_batch_rows=1, max_wait_ms=0)
        first = asyncio.create_task(batcher.submit([{"x": 1}]))
        await asyncio.sleep(0.02)
        started = time.perf_counter()
        with pytest.raises(DeadlineExceeded):
            await batcher.submit([{"x": 2}], timeout=0.05)
        waited = time.perf_counter() - started
        await first
        await batcher.drain()
        return waited

    assert run(main()) < 0.2  # answered at its deadline, not when the batch before it finished
    assert model.batches == [1]


def test_a_refused_request_stops_the_batch_waiting_for_it() -> None:
    model = Model()
    arriving = [1]

    async def main():
        batcher = DynamicBatcher(model, max_batch_rows=10, max_wait_ms=2000, arriving=lambda: arriving[0])
        started = time.perf_counter()
        task = asyncio.create_task(batcher.submit([{"x": 1}]))
        await asyncio.sleep(0.05)
        arriving[0] = 0  # the other request failed validation
        batcher.poke()
        await task
        await batcher.drain()
        return time.perf_counter() - started

    assert run(main()) < 1.0


def test_a_drain_past_its_timeout_answers_the_running_batch_too() -> None:
    model = Model(delay=0.5)

    async def main():
        batcher = DynamicBatcher(model, max_batch_rows=1, max_wait_ms=0)
        running = asyncio.create_task(batcher.submit([{"x": 1}]))
        queued = asyncio.create_task(batcher.submit([{"x": 2}]))
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        await batcher.drain(timeout=0.05)
        took = time.perf_counter() - started
        results = await asyncio.gather(running, queued, return_exceptions=True)
        return took, results

    took, results = run(main())
    assert took < 0.3  # the event loop did not wait for the model
    assert all(isinstance(r, ShuttingDown) for r in results)


def test_a_model_with_a_fixed_cost_per_call_is_never_run_inline() -> None:
    calls: list[int] = []

    def fixed_cost(rows):  # 20 ms a call whatever the rows: spread over 64 rows it looks cheap
        calls.append(len(rows))
        time.sleep(0.02)
        return [{"y": 0} for _ in rows]

    async def main():
        batcher = DynamicBatcher(fixed_cost, max_batch_rows=64, max_wait_ms=0, inline_below_ms=1.0)
        await batcher.submit([{"x": 0}] * 64)
        await batcher.submit([{"x": 0}])
        await batcher.drain()
        return batcher.stats.inline

    assert run(main()) == 0
