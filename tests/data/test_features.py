from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from seekforge.core.errors import ConfigError, DataError
from seekforge.data._features import engineer_frame
from seekforge.data.clean_config import FeatureEngineeringConfig
from seekforge.data.quality import features


def steps(**sections: object) -> FeatureEngineeringConfig:
    return FeatureEngineeringConfig.model_validate(sections)


def table(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 10, rows)
    clusters = rng.choice([0.0, 50.0, 100.0], rows) + rng.normal(0, 1, rows)
    return pd.DataFrame({"x": x, "clusters": clusters, "y": np.where(x > 3.0, "high", "low")})


def test_quantile_kmeans_and_tree_bins() -> None:
    frame = table()
    frame.loc[7, "x"] = np.nan
    config = steps(
        bins=[
            {"column": "x", "method": "quantile", "bins": 4},
            {"column": "clusters", "method": "kmeans", "bins": 3},
            {"column": "x", "name": "x_tree", "method": "tree", "bins": 6},
        ]
    )
    result = engineer_frame(frame, config, label="y")
    out, fitted = result.frame, {b["new_column"]: b for b in result.fitted["bins"]}
    assert list(frame.columns) == ["x", "clusters", "y"]  # the input is not modified
    counts = out["x_bin"].value_counts().sort_index()
    assert counts.index.tolist() == [0, 1, 2, 3] and counts.max() - counts.min() <= 1  # equal counts
    assert pd.isna(out.loc[7, "x_bin"]) and out["x_bin"].dtype == "Int64"
    # k-means finds the three clusters: each bin holds one cluster
    by_cluster = out.groupby((frame["clusters"] / 50).round())["clusters_bin"].nunique()
    assert by_cluster.tolist() == [1, 1, 1] and fitted["clusters_bin"]["bins"] == 3
    # the tree splits where the label changes, and needs no more bins than that
    assert fitted["x_tree"]["edges"] == pytest.approx([3.0], abs=0.05)
    assert (out["x_tree"] == (frame["x"] > 3.0).astype(int)).sum() == len(frame) - 1  # all but the missing one


def test_fitted_edges_bin_new_data_the_same_way() -> None:
    config = steps(bins=[{"column": "x", "method": "quantile", "bins": 5}])
    first = engineer_frame(table(seed=0), config)
    new = table(rows=50, seed=9)
    applied = engineer_frame(new, config, fitted=first.fitted).frame["x_bin"]
    edges = first.fitted["bins"][0]["edges"]
    assert applied.tolist() == np.searchsorted(edges, new["x"], side="right").tolist()
    shuffled = new.sample(frac=1, random_state=0)  # an index that is not 0, 1, 2, ...
    moved = engineer_frame(shuffled, config, fitted=first.fitted).frame
    assert moved["x_bin"].tolist() == np.searchsorted(edges, shuffled["x"], side="right").tolist()
    refit = engineer_frame(new, config).frame["x_bin"]
    assert applied.tolist() != refit.tolist()
    other = steps(bins=[{"column": "clusters"}])
    with pytest.raises(DataError, match="hold no bins of 'clusters'"):
        engineer_frame(new, other, fitted=first.fitted)


def test_stl_recovers_trend_and_season_per_series_in_row_order() -> None:
    rng = np.random.default_rng(0)
    days = pd.date_range("2024-01-01", periods=120)
    t = np.arange(120)
    parts = []
    for store, slope in (("a", 0.2), ("b", -0.1)):
        season = 3 * np.sin(2 * np.pi * t / 7)
        parts.append(pd.DataFrame({"store": store, "day": days, "sales": slope * t + season + rng.normal(0, 0.2, 120),
                                   "season": season, "trend": slope * t}))  # fmt: skip
    frame = pd.concat(parts).sample(frac=1, random_state=1).reset_index(drop=True)  # rows out of time order
    config = steps(stl=[{"column": "sales", "period": 7, "time": "day", "group": "store"}])
    result = engineer_frame(frame, config)
    out = result.frame
    assert np.corrcoef(out["sales_seasonal"], frame["season"])[0, 1] > 0.98
    assert np.corrcoef(out["sales_trend"], frame["trend"])[0, 1] > 0.99
    total = out["sales_trend"] + out["sales_seasonal"] + out["sales_residual"]
    np.testing.assert_allclose(total, frame["sales"])
    summary = result.fitted["stl"][0]
    assert summary["series"] == 2 and summary["seasonal_strength"] > 0.9 and summary["trend_strength"] > 0.9


def test_what_cannot_be_derived_is_named() -> None:
    frame = table(60)
    frame["day"] = pd.date_range("2024-01-01", periods=60)
    frame["word"] = "a"
    holes = frame.assign(x=frame["x"].where(frame.index != 5))
    cases = [
        (frame, steps(bins=[{"column": "nope"}]), None, "features.bins names the column 'nope'"),
        (frame, steps(bins=[{"column": "word"}]), None, "holds 0 numbers, too few for 5 bins"),
        (frame, steps(bins=[{"column": "x", "method": "tree"}]), None, "learns from the label, and none is given"),
        (frame.assign(x_bin=1), steps(bins=[{"column": "x"}]), None, "already has a column 'x_bin'"),
        (holes, steps(stl=[{"column": "x", "period": 7, "time": "day"}]), None, "no number at row 5"),
        (frame, steps(stl=[{"column": "x", "period": 40}]), None, "needs at least two periods"),
        (frame.assign(day="2024-01-01"), steps(stl=[{"column": "x", "period": 7, "time": "day"}]), None,
         "repeats a time"),
    ]  # fmt: skip
    for data, config, label, message in cases:
        with pytest.raises(DataError, match=message):
            engineer_frame(data, config, label=label)
    with pytest.raises(ValidationError, match="both be called x_bin"):
        steps(bins=[{"column": "x"}, {"column": "x", "method": "kmeans"}])
    with pytest.raises(ValidationError, match="seasonal must be odd"):
        steps(stl=[{"column": "x", "period": 7, "seasonal": 8}])


def test_features_writes_a_folder_and_reapplies_its_edges(tmp_path: Path) -> None:
    table().to_csv(tmp_path / "in.csv", index=False)
    (tmp_path / "dq.yaml").write_text("label: y\nfeatures:\n  bins:\n    - {column: x, method: tree}\n")
    result = features(tmp_path / "in.csv", tmp_path / "out", tmp_path / "dq.yaml")
    written = json.loads((tmp_path / "out" / "features.json").read_text())
    assert written["bins"][0]["edges"] == result.report["bins"][0]["edges"]
    schema = json.loads((tmp_path / "out" / "schema.json").read_text())
    assert schema["columns"]["x_bin"]["type"] == "category"
    table(40, seed=5).to_csv(tmp_path / "new.csv", index=False)
    again = features(
        tmp_path / "new.csv", tmp_path / "new_out", tmp_path / "dq.yaml", apply=tmp_path / "out" / "features.json"
    )
    assert again.report["bins"][0]["edges"] == written["bins"][0]["edges"]
    with pytest.raises(ConfigError, match="declares no features"):
        features(tmp_path / "in.csv", tmp_path / "x", {"label": "y"})
    with pytest.raises(ConfigError, match=r"not a readable features\.json"):
        features(tmp_path / "in.csv", tmp_path / "x", tmp_path / "dq.yaml", apply=tmp_path / "dq.yaml")
    assert not (tmp_path / "x").exists()
