"""Inputs derived from an entity's earlier rows, checked against a direct computation row by row."""

from __future__ import annotations

import numpy as np
import pytest

from seekforge.core.errors import DataError
from seekforge.runtime import add_history, history_values

SPECS = [{"count": True}, {"gap": True}, {"lag": 1}, {"lag": 3}] + [
    {"window": w, "stat": s} for w in (2, 5) for s in ("mean", "sum", "min", "max", "std", "count")
]


def _data(n: int = 240, seed: int = 0) -> tuple[list, list, np.ndarray]:
    rng = np.random.default_rng(seed)
    keys = rng.choice(["a", "b", "c", None], size=n, p=[0.4, 0.3, 0.25, 0.05]).tolist()
    times: list = (rng.permutation(n) * 3600.0).tolist()  # distinct times: the order is unambiguous
    times[5] = times[6] = times[7]  # ... but for one tie
    times[9] = None
    values = rng.normal(size=n)
    values[rng.random(n) < 0.1] = np.nan
    return keys, times, values


def _direct(keys: list, times: list, values: np.ndarray, spec: dict) -> np.ndarray:
    out = np.full(len(keys), np.nan)
    for i in range(len(keys)):
        if keys[i] is None or times[i] is None:
            continue
        earlier = sorted(
            (j for j in range(len(keys)) if keys[j] == keys[i] and times[j] is not None and times[j] < times[i]),
            key=lambda j: (times[j], j),
        )
        if spec.get("count"):
            out[i] = len(earlier)
        elif spec.get("gap"):
            out[i] = (times[i] - times[earlier[-1]]) / 86400 if earlier else np.nan
        elif "lag" in spec:
            out[i] = values[earlier[-spec["lag"]]] if len(earlier) >= spec["lag"] else np.nan
        else:
            window = values[earlier[-spec["window"] :]]
            window = window[~np.isnan(window)]
            stat = spec["stat"]
            if stat in ("count", "sum"):
                out[i] = len(window) if stat == "count" else window.sum()
            elif len(window):
                out[i] = getattr(np, stat)(window)
    return out


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: "-".join(f"{k}{v}" for k, v in s.items()))
def test_each_derived_input_reads_strictly_earlier_rows_of_its_entity(spec: dict) -> None:
    keys, times, values = _data()
    got = history_values(keys, times, values, {"key": "k", "time": "t", "of": "v", **spec})
    np.testing.assert_allclose(got, _direct(keys, times, values, spec), equal_nan=True, atol=1e-12)
    assert np.isnan(got[[i for i, k in enumerate(keys) if k is None] + [9]]).all()  # no key or no time: no history


def test_rows_at_one_time_do_not_see_each_other_and_iso_times_order_rows() -> None:
    keys = ["a", "a", "a", "a"]
    times = ["2024-03-01T10:00:00+02:00", "2024-03-01T08:30:00Z", "2024-03-01T08:30:00Z", "2024-03-02"]
    got = history_values(keys, times, [1.0, 2.0, 3.0, 4.0], {"key": "k", "time": "t", "of": "v", "lag": 1})
    np.testing.assert_array_equal(got, [np.nan, 1.0, 1.0, 3.0])  # 10:00+02:00 is 08:00 UTC, the first
    counts = history_values(keys, times, None, {"key": "k", "time": "t", "count": True})
    np.testing.assert_array_equal(counts, [0, 1, 1, 3])


def test_given_derived_values_are_kept_and_absent_ones_need_their_columns() -> None:
    schema = [{"name": "x", "type": "numeric"},
              {"name": "x_lag", "type": "numeric", "history": {"key": "id", "time": "t", "of": "x", "lag": 1}}]  # fmt: skip
    given = add_history({"x": [1.0, 2.0], "x_lag": [7.0, None]}, schema)
    assert given["x_lag"] == [7.0, None]
    made = add_history({"x": [1.0, 2.0], "id": ["u", "u"], "t": [0, 60]}, schema)
    np.testing.assert_array_equal(made["x_lag"], [np.nan, 1.0])
    with pytest.raises(DataError, match=r"input 'x_lag' is derived .* neither it nor 'id', 't'"):
        add_history({"x": [1.0]}, schema)
    with pytest.raises(DataError, match=r"row 1: .*'x' holds 'lots', which is not a number"):
        add_history({"x": [1.0, "lots"], "id": ["u", "u"], "t": [0, 60]}, schema)
    with pytest.raises(DataError, match=r"row 0: datetime column 't' holds 'noon'"):
        add_history({"x": [1.0], "id": ["u"], "t": ["noon"]}, schema)
