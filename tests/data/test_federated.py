"""A preprocessor pooled from the sites' statistics is the one a central fit makes: the same scaling,
vocabularies, classes, image, sequence and time statistics (a missing number's or time's fill: the pooled
mean, not the median); only sums and counts leave a site."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seekforge.core.errors import DataError
from seekforge.data import FeaturesConfig, Preprocessor, image_sizes, merge_statistics, site_statistics
from tests.conftest import image_folder_recipe, make_tabular, tabular_recipe


def test_pooled_statistics_make_the_central_fit(tmp_path: Path) -> None:
    rows = make_tabular(300, seed=3)
    rows.loc[rows.index[::17], "x1"] = np.nan
    features = FeaturesConfig.model_validate(tabular_recipe("x.csv")["features"])
    sites = [rows.iloc[i::3] for i in range(3)]
    stats = [site_statistics(site, features) for site in sites]
    assert set(stats[0]["inputs"]["x1"]) == {"n", "sum", "m2"}  # no row's own value
    assert not set(stats[0]["inputs"]["x1"].values()) & set(sites[0]["x1"].dropna())
    assert json.loads(json.dumps(stats[0])) == stats[0]  # JSON values: what a message carries
    pooled = merge_statistics(features, stats)
    central = Preprocessor(features).fit(rows)
    for name in ("x1", "x2"):
        assert np.isclose(pooled.numeric_[name]["center"], central.numeric_[name]["center"])
        assert np.isclose(pooled.numeric_[name]["scale"], central.numeric_[name]["scale"])
    assert np.isclose(pooled.numeric_["x1"]["fill"], rows["x1"].mean())
    assert pooled.categories_ == central.categories_ and pooled.binary_ == central.binary_
    assert pooled.classes_ == central.classes_
    present = rows.dropna().head(20)  # (a missing number's fill is the one approximation)
    assert np.allclose(pooled.transform(present)["numeric"], central.transform(present)["numeric"], atol=1e-5)


def test_variances_pool_without_losing_precision_on_large_values() -> None:
    rows = pd.DataFrame({"x": 1e9 + np.arange(40, dtype=float) / 7, "y": [0, 1] * 20})
    features = FeaturesConfig.model_validate({"inputs": [{"name": "x", "type": "numeric"}],
                                              "output": {"name": "y", "type": "binary"}})  # fmt: skip
    pooled = merge_statistics(features, [site_statistics(rows.iloc[i::4], features) for i in range(4)])
    # (a sum of squares minus the squared mean loses every digit of this spread to rounding)
    assert np.isclose(pooled.numeric_["x"]["scale"], rows["x"].std(ddof=0), rtol=1e-9)


def test_sequences_and_times_pool() -> None:
    features = FeaturesConfig.model_validate({"inputs": [
        {"name": "amounts", "type": "sequence", "max_length": 3}, {"name": "pages", "type": "sequence"},
        {"name": "seen", "type": "datetime", "parts": ["elapsed", "year", "month"]}],
        "output": {"name": "y", "type": "binary"}})  # fmt: skip
    rng = np.random.default_rng(0)
    rows = pd.DataFrame({
        "amounts": [json.dumps(rng.normal(50, 20, rng.integers(0, 6)).round(2).tolist()) for _ in range(60)],
        "pages": [json.dumps(list(rng.choice(["home", "cart", "faq", "pay"], rng.integers(1, 4)))) for _ in range(60)],
        "seen": pd.date_range("2021-01-01", periods=60, freq="9D").strftime("%Y-%m-%dT%H:%M:%SZ"),
        "y": [0, 1] * 30})  # fmt: skip
    rows.loc[7, "seen"] = None
    stats = [site_statistics(rows.iloc[i::3], features) for i in range(3)]
    assert set(stats[0]["inputs"]["seen"]["elapsed"]) == {"n", "sum", "m2"}
    assert set(stats[0]["inputs"]["pages"]["counts"]) <= {"home", "cart", "faq", "pay"}
    pooled = merge_statistics(features, stats)
    central = Preprocessor(features).fit(rows)
    assert pooled.sequences_["pages"] == central.sequences_["pages"]
    for key in ("kind", "rows", "truncated", "longest", "max_length", "keep"):
        assert pooled.sequences_["amounts"][key] == central.sequences_["amounts"][key]
    assert np.isclose(pooled.sequences_["amounts"]["mean"], central.sequences_["amounts"]["mean"])
    assert np.isclose(pooled.sequences_["amounts"]["std"], central.sequences_["amounts"]["std"])
    for part in ("elapsed", "year"):
        assert np.allclose(
            list(pooled.datetimes_["seen"][part].values()), list(central.datetimes_["seen"][part].values())
        )
    seconds = np.array([pd.Timestamp(v).timestamp() for v in rows["seen"].dropna()])
    assert np.isclose(pooled.datetimes_["seen"]["fill"], seconds.mean())  # (the median's stand-in)
    present = rows.drop(index=7)
    assert all(np.allclose(pooled.transform(present)[k], central.transform(present)[k], atol=1e-5)
               for k in central.transform(present))  # fmt: skip
    mixed = [stats[0], site_statistics(rows.iloc[1::3].assign(amounts='["a", "b"]'), features)]
    with pytest.raises(DataError, match="numbers at some sites and tokens at others"):
        merge_statistics(features, mixed)
    silent = site_statistics(rows.iloc[2::3].assign(pages="[null]"), features)  # (missing items only: no say)
    assert silent["inputs"]["pages"]["kind"] is None
    assert merge_statistics(features, [stats[0], silent]).sequences_["pages"]["kind"] == "tokens"


def test_image_statistics_pool(tmp_path: Path) -> None:
    recipe = image_folder_recipe(tmp_path, per_class=6)
    features = FeaturesConfig.model_validate(recipe["features"])
    rows = pd.DataFrame([{"image": str(p), "label": p.parent.name} for p in sorted((tmp_path / "img").rglob("*.png"))])
    pooled = merge_statistics(features, [site_statistics(rows.iloc[i::2], features) for i in range(2)])
    central = Preprocessor(features).fit(rows)
    assert pooled.images_["image"].size == central.images_["image"].size == (8, 8)
    assert np.allclose(pooled.images_["image"].mean, central.images_["image"].mean, atol=1e-5)
    assert np.allclose(pooled.images_["image"].std, central.images_["image"].std, atol=1e-4)


def test_images_of_other_sizes_are_summed_again_at_the_pooled_size(tmp_path: Path) -> None:
    """No size declared: a site whose own most common size is not the pooled one is asked again at it."""
    from PIL import Image

    rng = np.random.default_rng(1)
    paths = []
    for i, side in enumerate([8] * 14 + [12] * 6):  # site 0: all 8x8; site 1: mostly 12x12
        path = tmp_path / f"{i}.png"
        Image.fromarray(rng.integers(0, 255, size=(side, side, 3), dtype=np.uint8)).save(path)
        paths.append(str(path))
    rows = pd.DataFrame({"image": paths, "label": ["a", "b"] * 10})
    sites = [rows.iloc[:10], rows.iloc[10:]]
    features = FeaturesConfig.model_validate({"inputs": [{"name": "image", "type": "image"}],
                                              "output": {"name": "label", "type": "category"}})  # fmt: skip
    first = [site_statistics(site, features) for site in sites]
    assert [s["inputs"]["image"]["at"] for s in first] == [[8, 8], [12, 12]]
    with pytest.raises(DataError, match="summed their pixels at different sizes"):
        merge_statistics(features, first)
    sizes = image_sizes(features, first)
    assert sizes == {"image": [8, 8]}
    pooled = merge_statistics(features, [site_statistics(site, features, image_sizes=sizes) for site in sites])
    central = Preprocessor(features).fit(rows)
    assert pooled.images_["image"].size == central.images_["image"].size == (8, 8)
    assert np.allclose(pooled.images_["image"].mean, central.images_["image"].mean, atol=1e-5)
    assert np.allclose(pooled.images_["image"].std, central.images_["image"].std, atol=1e-4)


def test_a_fitted_vocabulary_pools_the_sites_words() -> None:
    features = FeaturesConfig.model_validate({"inputs": [{"name": "review", "type": "text", "vocab_size": 100}],
                                              "output": {"name": "y", "type": "binary"}})  # fmt: skip
    rows = pd.DataFrame({"review": ["Great food, great staff", "awful wait", "food was fine", "Staff were awful"] * 5,
                         "y": [1, 0, 1, 0] * 5})  # fmt: skip
    stats = [site_statistics(rows.iloc[i::2], features) for i in range(2)]
    assert stats[0]["inputs"]["review"]["words"]["great"] == 10  # words and their counts, not the rows
    pooled = merge_statistics(features, stats)
    central = Preprocessor(features).fit(rows)
    assert pooled.text_["review"].to_dict() == central.text_["review"].to_dict()  # every word within vocab_size
    assert np.array_equal(pooled.transform(rows)["input_ids"], central.transform(rows)["input_ids"])
