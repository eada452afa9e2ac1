from __future__ import annotations

import functools

import pytest

from seekforge.core.errors import ConfigError
from seekforge.core.timing import time_interleaved


def test_time_interleaved_goes_round_every_call_in_each_round() -> None:
    order: list[str] = []
    calls = {name: functools.partial(order.append, name) for name in ("a", "b", "c")}
    times = time_interleaved(calls, warmup=1, seconds=0.0, rounds=3, min_runs=6)
    assert order[:3] == ["a", "b", "c"]  # warm-up, once each
    # 3 rounds of 2 calls each (6 at least, in 3 slices), every call in turn
    assert order[3:] == ["a", "a", "b", "b", "c", "c"] * 3
    assert {name: len(taken) for name, taken in times.items()} == {"a": 6, "b": 6, "c": 6}
    with pytest.raises(ConfigError, match="rounds must be at least 1, got 0"):
        time_interleaved(calls, rounds=0)
