"""Derived inputs over a recipe's splits: each split reads only the rows it may see, and a time-ordered
split puts the future in the test set."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from seekforge.core.errors import DataError
from seekforge.data import load_splits
from seekforge.data.config import DataConfig, FeaturesConfig


def make_visits(root: Path, customers: int = 30, visits: int = 10, seed: int = 0) -> Path:
    """``root/visits.csv``: each customer's visits (ISO times, in shuffled order), an amount that is the
    row's own id (so a derived value tells which row it came from), and a label of the amount's parity."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(customers):
        start = pd.Timestamp("2024-01-01") + pd.Timedelta(hours=int(rng.integers(0, 500)))
        for v in range(visits):
            rows.append({"customer": f"c{c}", "ts": (start + pd.Timedelta(hours=7 * v)).isoformat(), "amount": 0.0})
    frame = pd.DataFrame(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    frame["amount"] = np.arange(len(frame), dtype=float)
    frame["label"] = np.where(frame["amount"] % 2 == 0, "even", "odd")
    frame.to_csv(root / "visits.csv", index=False)
    return root / "visits.csv"


def features(**history: object) -> FeaturesConfig:
    return FeaturesConfig.model_validate({
        "inputs": [{"name": "amount", "type": "numeric"},
                   {"name": "last", "type": "numeric", "history": {"of": "amount", "lag": 1}},
                   {"name": "top3", "type": "numeric", "history": {"of": "amount", "window": 3, "stat": "max"}},
                   {"name": "seen", "type": "numeric", "history": {"count": True}}],
        "history": {"key": "customer", "time": "ts", **history},
        "output": {"name": "label", "type": "category"},
    })  # fmt: skip


def test_a_split_reads_its_own_rows_and_earlier_splits_only(tmp_path: Path) -> None:
    source = make_visits(tmp_path)
    with pytest.warns(UserWarning, match="set data.split.order: ts"):
        splits = load_splits(DataConfig(source=str(source)), features(), seed=0)
    raw = pd.read_csv(source)
    split_of = {}
    for name, part in (("train", splits.train), ("validation", splits.validation), ("test", splits.test)):
        split_of.update(dict.fromkeys(part["amount"].astype(int), name))
    allowed = {"train": {"train"}, "validation": {"train", "validation"}, "test": {"train", "validation", "test"}}
    for name, part in (("train", splits.train), ("validation", splits.validation), ("test", splits.test)):
        for _, row in part.iterrows():
            me = raw.loc[int(row["amount"])]
            earlier = raw[(raw["customer"] == me["customer"]) & (raw["ts"] < me["ts"])].sort_values("ts")
            visible = earlier[[split_of[int(a)] in allowed[name] for a in earlier["amount"]]]
            assert row["seen"] == len(visible)
            if len(visible):
                assert split_of[int(row["last"])] in allowed[name] and row["last"] == visible["amount"].iloc[-1]
                assert row["top3"] == visible["amount"].iloc[-3:].max()
            else:
                assert np.isnan(row["last"]) and np.isnan(row["top3"])
    assert splits.test["seen"].mean() > splits.train["seen"].mean()  # held-out rows see more of the past


def test_a_time_ordered_split_trains_on_the_past_and_tests_on_the_future(tmp_path: Path) -> None:
    source = make_visits(tmp_path)
    data = DataConfig.model_validate({"source": str(source), "split": {"order": "ts"}})
    splits = load_splits(data, features(), seed=0)
    raw = pd.read_csv(source).set_index("amount")["ts"]
    times = {name: pd.to_datetime(raw.loc[part["amount"]]) for name, part in
             (("train", splits.train), ("validation", splits.validation), ("test", splits.test))}  # fmt: skip
    assert times["train"].max() <= times["validation"].min() and times["validation"].max() <= times["test"].min()
    assert (len(splits.train), len(splits.validation), len(splits.test)) == (240, 30, 30)
    assert load_splits(data, features(), seed=5).train.equals(splits.train)  # no seed in a time order


def test_an_explicit_test_file_reads_the_source_rows_as_its_past(tmp_path: Path) -> None:
    source = make_visits(tmp_path)
    frame = pd.read_csv(source).sort_values("ts")
    frame.iloc[:250].to_csv(tmp_path / "past.csv", index=False)
    frame.iloc[250:].to_csv(tmp_path / "future.csv", index=False)
    data = DataConfig.model_validate({"source": str(tmp_path / "past.csv"), "test": str(tmp_path / "future.csv"),
                                      "split": {"order": "ts"}})  # fmt: skip
    splits = load_splits(data, features(), seed=0)
    seen = frame.groupby("customer").cumcount()  # every earlier visit, in the source file or the test file
    assert len(splits.test) == 50
    np.testing.assert_array_equal(splits.test["seen"], seen.iloc[250:])


def test_bad_history_declarations_are_refused_with_the_field(tmp_path: Path) -> None:
    base = {"inputs": [{"name": "x", "type": "numeric"}], "output": {"name": "y", "type": "numeric"}}
    cases = {
        "declare the entity and time columns as features.history": {"name": "d", "history": {"lag": 1, "of": "x"}},
        "give exactly one of lag, window": {"name": "d", "history": {"lag": 1, "window": 3, "of": "x"}},
        "lag needs 'of'": {"name": "d", "history": {"lag": 1}},
        "count takes no 'of'": {"name": "d", "history": {"count": True, "of": "x"}},
        "stat is for a window": {"name": "d", "history": {"lag": 2, "of": "x", "stat": "max"}},
        "looks back on 'x', itself derived": {"name": "d", "history": {"lag": 1, "of": "x"}},
    }
    for message, derived in cases.items():
        inputs = [{"name": "x", "type": "numeric"}, {"type": "numeric", **derived}]
        if "itself derived" in message:
            inputs[0] = {"name": "x", "type": "numeric", "history": {"count": True}}
        declared = {**base, "inputs": inputs}
        if "features.history" not in message:
            declared["history"] = {"key": "k", "time": "t"}
        with pytest.raises(ValidationError, match=message):
            FeaturesConfig.model_validate(declared)


def test_bad_history_data_names_the_column_or_row(tmp_path: Path) -> None:
    source = make_visits(tmp_path)
    frame = pd.read_csv(source)
    frame.rename(columns={"customer": "client"}).to_csv(tmp_path / "a.csv", index=False)
    with pytest.raises(DataError, match=r"column 'customer' \(features.history.key\) not found"):
        load_splits(DataConfig(source=str(tmp_path / "a.csv"), split={"order": "ts"}), features(), seed=0)
    frame.assign(last=1.0).to_csv(tmp_path / "b.csv", index=False)
    with pytest.raises(DataError, match="column 'last' is in the data, and the recipe derives an input"):
        load_splits(DataConfig(source=str(tmp_path / "b.csv"), split={"order": "ts"}), features(), seed=0)
    frame.loc[7, "ts"] = "last tuesday"
    frame.to_csv(tmp_path / "c.csv", index=False)
    with pytest.raises(DataError, match=r"c.csv line 9: datetime column 'ts' holds 'last tuesday'"):
        load_splits(DataConfig(source=str(tmp_path / "c.csv"), split={"order": "ts"}), features(), seed=0)
