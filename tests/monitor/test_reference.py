from __future__ import annotations

import numpy as np

from seekforge.data import Preprocessor
from seekforge.data.config import FeaturesConfig
from seekforge.monitor import build_reference
from tests.conftest import make_tabular, tabular_recipe


def test_reference_sketch_summarises_each_feature() -> None:
    frame = make_tabular(200)
    frame.loc[:9, "x1"] = np.nan
    pre = Preprocessor(FeaturesConfig.model_validate(tabular_recipe("x")["features"])).fit(frame)
    ref = build_reference(frame, pre)
    assert ref["rows"] == 200
    x1 = ref["features"]["x1"]
    assert x1["missing"] == 10 and sum(x1["bin_counts"]) == 190
    assert x1["quantiles"]["0.0"] <= x1["quantiles"]["0.5"] <= x1["quantiles"]["1.0"]
    assert set(ref["features"]["city"]["frequencies"]) == {"paris", "oslo", "rome"}
    assert sum(ref["output"]["frequencies"].values()) == 200
