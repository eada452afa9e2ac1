from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from seekforge.data import load_splits
from seekforge.data.config import DataConfig, FeaturesConfig
from tests.conftest import make_tabular, tabular_recipe

FEATURES = FeaturesConfig.model_validate(tabular_recipe("x")["features"])


def test_same_seed_same_split_and_stratified(tabular_csv: Path) -> None:
    data = DataConfig(source=str(tabular_csv))
    a = load_splits(data, FEATURES, seed=3)
    b = load_splits(data, FEATURES, seed=3)
    c = load_splits(data, FEATURES, seed=4)
    pd.testing.assert_frame_equal(a.test, b.test)
    assert not a.test.equals(c.test)
    assert len(a.train) + len(a.validation) + len(a.test) == 160
    share = (a.train["label"] == "buy").mean()
    assert abs((a.test["label"] == "buy").mean() - share) < 0.1
    assert a.data_hash == b.data_hash == c.data_hash


def test_explicit_test_source(tmp_path: Path, tabular_csv: Path) -> None:
    test_path = tmp_path / "test.csv"
    make_tabular(30, seed=9).to_csv(test_path, index=False)
    data = DataConfig.model_validate(
        {"source": str(tabular_csv), "test": str(test_path), "split": {"train": 0.8, "validation": 0.2, "test": 0.0}}
    )
    splits = load_splits(data, FEATURES, seed=0)
    assert len(splits.test) == 30
    assert len(splits.train) + len(splits.validation) == 160
    assert len(splits.validation) == 32


def test_data_hash_changes_with_data(tmp_path: Path, tabular_csv: Path) -> None:
    other = tmp_path / "other.csv"
    frame = make_tabular()
    frame.loc[0, "x1"] = 99.0
    frame.to_csv(other, index=False)
    a = load_splits(DataConfig(source=str(tabular_csv)), FEATURES, seed=0)
    b = load_splits(DataConfig(source=str(other)), FEATURES, seed=0)
    assert a.data_hash != b.data_hash


def test_errors_in_a_split_name_the_source_line(tmp_path: Path) -> None:
    from seekforge.core.errors import DataError
    from seekforge.data import Preprocessor

    path = tmp_path / "d.csv"
    make_tabular(60).to_csv(path, index=False)
    splits = load_splits(DataConfig(source=str(path)), FEATURES, seed=0)
    row = int(splits.test.index[-1])
    pre = Preprocessor(FEATURES).fit(splits.train)
    bad = splits.test.copy()
    bad.loc[row, "label"] = "maybe"
    with pytest.raises(DataError, match=rf"{path} line {row + 2}: label 'maybe'"):
        pre.transform_target(bad)


def test_a_recipe_balances_its_training_rows_only(tmp_path: Path) -> None:
    import json

    import seekforge
    from seekforge.recipe import load_recipe

    frame = make_tabular(400)
    frame = frame[(frame["label"] == "buy") | (frame.index % 4 == 0)]  # about one 'skip' in six
    frame.to_csv(tmp_path / "d.csv", index=False)
    plain = tabular_recipe(str(tmp_path / "d.csv"))
    balanced = {**plain, "data": {**plain["data"], "balance": {"method": "smote"}}}
    before = load_splits(load_recipe(plain).data, FEATURES, 0)
    after = load_splits(load_recipe(balanced).data, FEATURES, 0)
    counts = after.train["label"].value_counts()
    assert counts["skip"] == counts["buy"] == (before.train["label"] == "buy").sum()
    assert after.balancing["sampler"] == "SMOTENC" and after.balancing["rows_in"] == len(before.train)
    for name in ("validation", "test"):
        pd.testing.assert_frame_equal(getattr(after, name), getattr(before, name))
    result = seekforge.run(balanced, runs_dir=tmp_path / "runs")
    manifest = json.loads((result.package / "package.json").read_text())
    assert manifest["data"]["balance"]["classes_after"] == {"buy": int(counts["buy"]), "skip": int(counts["skip"])}
    assert manifest["data"]["rows"]["train"] == len(after.train)
