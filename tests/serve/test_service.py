from __future__ import annotations

import json

import numpy as np
import pytest

from seekforge.core.errors import DataError
from seekforge.serve._model import rows_of as _rows_of


def test_rows_carry_each_records_prediction_and_probabilities_as_plain_values() -> None:
    proba = np.array([[0.25, 0.75], [0.9, 0.1]], dtype=np.float32)
    rows = _rows_of(["yes", "no"], proba, ["no", "yes"])
    assert rows == [
        {"prediction": "yes", "proba": {"no": 0.25, "yes": 0.75}},
        {"prediction": "no", "proba": {"no": pytest.approx(0.9), "yes": pytest.approx(0.1)}},
    ]
    json.dumps(rows)  # nothing numpy left in them
    assert _rows_of([np.int64(3), 1], np.array([[0.5, 0.5], [0.5, 0.5]]), [1, 3])[0]["proba"] == {"1": 0.5, "3": 0.5}
    assert type(_rows_of([np.float64(2.5)], None, None)[0]["prediction"]) is float


@pytest.mark.parametrize(
    ("predictions", "proba", "classes", "bad"),
    [
        ([1.0, float("inf"), float("nan")], None, None, "records 1, 2"),
        (["a", "b"], np.array([[0.5, 0.5], [np.nan, np.nan]]), ["a", "b"], "record 1:"),
    ],
)
def test_a_non_finite_output_names_its_records(predictions: list, proba: np.ndarray | None, classes, bad: str) -> None:
    with pytest.raises(DataError, match=f"not a finite number for {bad}"):
        _rows_of(predictions, proba, classes)


def test_no_rows_give_no_outputs() -> None:
    assert _rows_of([], np.empty((0, 2)), ["a", "b"]) == []
    assert _rows_of([], None, None) == []
