from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from seekforge.core.errors import DataError
from seekforge.runtime import MISSING, as_columns, binary_table, canonical, raw_feeds

SCHEMA = [
    {"name": "age", "type": "numeric"},
    {"name": "city", "type": "category", "values": ["oslo", "rome"]},
    {"name": "member", "type": "binary", "values": ["no", "yes"]},
]


def test_canonical_keys_match_across_types() -> None:
    assert canonical(3) == canonical(3.0) == canonical("3") == canonical(np.int64(3)) == "3"
    assert canonical(2.5) == "2.5" and canonical(True) == "True"


def test_binary_table_accepts_synonyms_only_for_boolean_words() -> None:
    assert binary_table("no", "yes")["true"] == 1.0 and binary_table("no", "yes")["0"] == 0.0
    assert binary_table("cat", "dog") == {"cat": 0.0, "dog": 1.0}
    one_sided = binary_table("", "yes")  # training saw only "yes"
    assert one_sided["yes"] == 1.0 and one_sided["false"] == 0.0


def test_as_columns_accepts_every_record_shape() -> None:
    rows = [{"age": 1, "city": "oslo"}, {"age": 2, "member": "no"}]
    assert as_columns(rows) == {"age": [1, 2], "city": ["oslo", None], "member": [None, "no"]}
    assert as_columns({"age": 1, "city": "oslo"}) == {"age": [1], "city": ["oslo"]}
    assert as_columns({"age": [1, 2]}) == {"age": [1, 2]}
    assert as_columns(pd.DataFrame({"age": [1, 2]})) == {"age": [1, 2]}
    assert as_columns({"age": np.array([1, 2])}) == {"age": [1, 2]}
    with pytest.raises(DataError, match="mappings of feature name to value"):
        as_columns([1, 2])
    with pytest.raises(DataError, match=r"mix columns .* single values \(.city.\)"):
        as_columns({"age": [1, 2], "city": "oslo"})


def test_pandas_missing_markers_are_missing_everywhere() -> None:
    feeds = raw_feeds(SCHEMA, {"age": [pd.NA, pd.NaT], "city": [pd.NA, None], "member": [pd.NA, np.nan]})
    assert np.isnan(feeds["age"]).all()
    assert list(feeds["city"]) == [MISSING, MISSING] and list(feeds["member"]) == [MISSING, MISSING]


def test_raw_feeds_encode_types_and_missing_values() -> None:
    feeds = raw_feeds(SCHEMA, {"age": [41, None, "7.5"], "city": ["rome", float("nan"), 3], "member": ["Yes", None, 0]})
    assert feeds["age"].dtype == np.float64 and np.isnan(feeds["age"][1]) and feeds["age"][2] == 7.5
    assert list(feeds["city"]) == ["rome", MISSING, "3"]
    assert list(feeds["member"]) == ["yes", MISSING, "0"]


@pytest.mark.parametrize(
    ("columns", "message"),
    [
        ({"age": [1], "city": ["oslo"]}, "lack the input column.*'member'"),
        ({"age": [1, 2], "city": ["oslo"], "member": ["no"]}, "differ in length"),
        ({"age": ["x"], "city": ["oslo"], "member": ["no"]}, "row 0: numeric column 'age' holds 'x'"),
        ({"age": [""], "city": ["oslo"], "member": ["no"]}, "numeric column 'age' holds ''"),  # as in training data
        ({"age": ["nan"], "city": ["oslo"], "member": ["no"]}, "numeric column 'age' holds 'nan'"),
        ({"age": ["1_000"], "city": ["oslo"], "member": ["no"]}, "numeric column 'age' holds '1_000'"),
        ({"age": [1], "city": ["oslo"], "member": ["maybe"]}, "row 0: binary column 'member' holds 'maybe'"),
    ],
)
def test_raw_feeds_name_the_bad_value(columns: dict[str, list[object]], message: str) -> None:
    with pytest.raises(DataError, match=message):
        raw_feeds(SCHEMA, columns)


def test_raw_feeds_refuse_features_the_graph_cannot_hold() -> None:
    with pytest.raises(DataError, match=r"(?s)text feature.*full install: pip install --constraint .*\[all\]\""):
        raw_feeds([{"name": "review", "type": "text"}], {"review": ["good"]})


def test_raw_feeds_name_rows_as_the_caller_says() -> None:
    with pytest.raises(DataError, match=r"data\.csv line 7: binary column 'member'"):
        raw_feeds(
            SCHEMA, {"age": [1], "city": ["oslo"], "member": ["maybe"]}, place=lambda row: f"data.csv line {row + 7}"
        )


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_softmax_of_a_few_logits_matches_the_vectorised_one(dtype: type) -> None:
    from seekforge.runtime import softmax

    rng = np.random.default_rng(0)
    big = (rng.normal(size=(40, 3)) * 30).astype(dtype)  # large logits: the shift keeps exp finite
    for logits in (big[:1], big[:5], big[:0]):  # served requests: few numbers
        small = softmax(logits)
        assert small.dtype == dtype and small.shape == logits.shape
        np.testing.assert_allclose(small, softmax(big)[: len(logits)], rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(softmax(big).sum(axis=1), 1.0, rtol=1e-6)
