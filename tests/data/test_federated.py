"""A preprocessor pooled from the sites' statistics is the one a central fit makes: the same scaling,
vocabularies, classes and image statistics (a missing number's fill: the pooled mean, not the median);
only sums and counts leave a site; inputs whose preprocessing needs the rows themselves are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seekforge.core.errors import ConfigError
from seekforge.data import FeaturesConfig, Preprocessor, check_federated, merge_statistics, site_statistics
from tests.conftest import image_folder_recipe, make_tabular, tabular_recipe


def test_pooled_statistics_make_the_central_fit(tmp_path: Path) -> None:
    rows = make_tabular(300, seed=3)
    rows.loc[rows.index[::17], "x1"] = np.nan
    features = FeaturesConfig.model_validate(tabular_recipe("x.csv")["features"])
    sites = [rows.iloc[i::3] for i in range(3)]
    stats = [site_statistics(site, features) for site in sites]
    assert set(stats[0]["inputs"]["x1"]) == {"n", "sum", "sumsq"}  # no row's own value
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


def test_image_statistics_pool_and_unsupported_inputs_are_refused(tmp_path: Path) -> None:
    recipe = image_folder_recipe(tmp_path, per_class=6)
    features = FeaturesConfig.model_validate(recipe["features"])
    rows = pd.DataFrame([{"image": str(p), "label": p.parent.name} for p in sorted((tmp_path / "img").rglob("*.png"))])
    pooled = merge_statistics(features, [site_statistics(rows.iloc[i::2], features) for i in range(2)])
    central = Preprocessor(features).fit(rows)
    assert pooled.images_["image"].size == central.images_["image"].size == (8, 8)
    assert np.allclose(pooled.images_["image"].mean, central.images_["image"].mean, atol=1e-5)
    assert np.allclose(pooled.images_["image"].std, central.images_["image"].std, atol=1e-4)
    sequence = FeaturesConfig.model_validate({"inputs": [{"name": "clicks", "type": "sequence"}],
                                              "output": {"name": "y", "type": "binary"}})  # fmt: skip
    with pytest.raises(ConfigError, match="cannot be trained federated yet"):
        check_federated(sequence)


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
