from __future__ import annotations

import copy
import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from scipy import stats
from scipy.spatial.distance import jensenshannon

from seekforge.core.errors import ConfigError, PackageError
from seekforge.data import Preprocessor
from seekforge.data.config import FeaturesConfig
from seekforge.monitor import DriftReport, build_reference, drift_report, prediction_drift
from seekforge.monitor._statistics import buckets
from seekforge.monitor.config import FeatureMonitorConfig, MonitorConfig

FEATURES = {
    "inputs": [
        {"name": "x", "type": "numeric"},
        {"name": "k", "type": "numeric"},
        {"name": "city", "type": "category"},
        {"name": "member", "type": "binary"},
    ],
    "output": {"name": "label", "type": "binary"},
}
CITIES = ("paris", "oslo", "rome")


def _table(
    rows: int, seed: int, *, shift: float = 0.0, scale: float = 1.0, cities: tuple[float, ...] = (0.5, 0.3, 0.2)
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(shift, scale, rows)
    return pd.DataFrame(
        {
            "x": x,
            "k": rng.poisson(3, rows).astype(float),  # few distinct values: a discrete sketch
            "city": rng.choice(CITIES, rows, p=cities),
            "member": rng.choice(["yes", "no"], rows),
            "label": np.where(x + rng.normal(0, 1, rows) > 0, "buy", "skip"),
        }
    )


@pytest.fixture(scope="module")
def training() -> pd.DataFrame:
    return _table(5000, 0)


@pytest.fixture(scope="module")
def reference(training: pd.DataFrame) -> dict[str, Any]:
    pre = Preprocessor(FeaturesConfig.model_validate(FEATURES)).fit(training)
    return json.loads(json.dumps(build_reference(training, pre)))  # as read back from reference.json


def _old(reference: dict[str, Any]) -> dict[str, Any]:
    """The sketch as packages written before version 2 hold it."""
    old = copy.deepcopy(reference)
    del old["version"], old["output"]["type"]
    for sketch in old["features"].values():
        for part in (sketch, sketch.get("tokens", {}), sketch.get("mean_intensity", {})):
            part.pop("cdf", None)
        sketch.pop("words", None), sketch.pop("image", None)
    return old


def test_sketch_holds_exact_cumulative_shares(training: pd.DataFrame, reference: dict[str, Any]) -> None:
    x, k = reference["features"]["x"]["cdf"], reference["features"]["k"]["cdf"]
    assert not x["discrete"] and len(x["x"]) == 101 and x["p"][-1] == 1.0
    assert np.allclose(x["p"], [(training["x"] <= v).mean() for v in x["x"]])
    assert k["discrete"] and k["x"] == sorted(training["k"].unique())
    assert reference["version"] == 2 and reference["output"]["type"] == "binary"


@pytest.mark.parametrize(
    ("numeric", "categorical", "p_value"),
    [("psi", "psi", 0.05), ("wasserstein", "jensenshannon", 0.05), ("ks", "chi2", 0.001)],
)
def test_same_distribution_is_not_flagged(
    reference: dict[str, Any], numeric: str, categorical: str, p_value: float
) -> None:
    config = MonitorConfig(numeric_test=numeric, categorical_test=categorical, ks_p_value=p_value, chi2_p_value=p_value)
    for seed in range(1, 6):
        report = drift_report(reference, _table(2000, seed), config)
        assert report.drifted_count == 0 and not report.drift, report.drifted_features
        assert all(f.enough_data and f.statistic is not None for f in report.features)


@pytest.mark.parametrize("test", ["psi", "ks", "wasserstein"])
@pytest.mark.parametrize(("shift", "scale"), [(0.5, 1.0), (0.0, 2.0)])
def test_shifted_mean_or_scaled_variance_is_flagged(
    reference: dict[str, Any], test: str, shift: float, scale: float
) -> None:
    report = drift_report(reference, _table(2000, 1, shift=shift, scale=scale), MonitorConfig(numeric_test=test))
    assert report.drifted_features == ("x",)
    assert report.features[0].test == test and report.features[0].enough_data


@pytest.mark.parametrize("test", ["psi", "chi2", "jensenshannon"])
def test_new_category_and_moved_frequencies_are_flagged(reference: dict[str, Any], test: str) -> None:
    config = MonitorConfig(categorical_test=test)
    moved = drift_report(reference, _table(2000, 1, cities=(0.2, 0.3, 0.5)), config)
    assert moved.drifted_features == ("city",)
    live = _table(2000, 1)
    live.loc[:599, "city"] = "berlin"
    report = drift_report(reference, live, config)
    city = report.features[2]
    assert report.drifted_features == ("city",) and city.new_categories == ("berlin",)
    assert city.histogram is not None and city.histogram.labels[-1] == "(other)"
    assert city.histogram.reference[-1] == 0.0 and city.histogram.live[-1] == pytest.approx(0.3)


def test_missingness_jump_is_flagged_on_object_columns(reference: dict[str, Any]) -> None:
    live = _table(2000, 1)
    values = live["x"].astype(object)
    values[::4] = None  # numbers arriving as objects with None
    live["x"] = values
    x = drift_report(reference, live).features[0]
    assert x.drifted and x.missing_drifted and x.missing_reference == 0.0 and x.missing_live == 0.25
    assert x.present == 1500 and x.statistic is not None and x.statistic < 0.2  # the values themselves did not move
    few = _table(2000, 1)["x"].astype(object)
    few[::20] = None  # 5% missing: within missing_threshold
    assert not drift_report(reference, live.assign(x=few)).features[0].drifted


def test_absent_column_counts_as_missing(reference: dict[str, Any]) -> None:
    report = drift_report(reference, _table(2000, 1).drop(columns=["city"]))
    assert report.drifted_features == ("city",) and report.features[2].missing_live == 1.0


def test_statistics_agree_with_scipy_on_the_raw_samples(training: pd.DataFrame, reference: dict[str, Any]) -> None:
    live = _table(3000, 7, shift=0.2, scale=1.3, cities=(0.4, 0.35, 0.25))
    ks = drift_report(reference, live, MonitorConfig(numeric_test="ks")).features[0]
    exact = stats.ks_2samp(training["x"], live["x"])
    assert exact.statistic - 0.01 <= ks.statistic <= exact.statistic  # binned: at most 1% of the mass low
    # scipy's asymptotic p-value of the sketch's D, and so between those of the exact D and of D - 0.01
    rows = round(len(training) * len(live) / (len(training) + len(live)))
    asymptotic = stats.ks_2samp(training["x"], live["x"], method="asymp").pvalue
    assert asymptotic == pytest.approx(stats.kstwo.sf(exact.statistic, rows), rel=1e-9)
    assert ks.p_value == pytest.approx(stats.kstwo.sf(ks.statistic, rows), rel=1e-9)
    assert asymptotic <= ks.p_value <= stats.kstwo.sf(exact.statistic - 0.01, rows)
    config = MonitorConfig(numeric_test="wasserstein")
    for name in ("x", "k"):  # continuous (within-bin linear) and discrete (exact)
        w = drift_report(reference, live.assign(k=live["k"] + 1), config).features[["x", "k"].index(name)]
        raw = live[name] + (name == "k")
        expected = stats.wasserstein_distance(training[name], raw) / training[name].std(ddof=0)
        assert w.statistic == pytest.approx(expected, rel=1e-3 if name == "x" else 1e-9)
    table = pd.crosstab(
        np.r_[np.zeros(len(training)), np.ones(len(live))], np.r_[training["city"], live["city"]]
    ).to_numpy()
    chi2 = drift_report(reference, live, MonitorConfig(categorical_test="chi2")).features[2]
    assert chi2.p_value == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue)
    js = drift_report(reference, live, MonitorConfig(categorical_test="jensenshannon")).features[2]
    assert js.statistic == pytest.approx(jensenshannon(table[0] / table[0].sum(), table[1] / table[1].sum()))


def test_thresholds_and_overrides_come_from_the_config(reference: dict[str, Any]) -> None:
    live = _table(2000, 1, shift=0.5)
    assert not drift_report(reference, live, MonitorConfig(psi_threshold=5.0)).features[0].drifted
    report = drift_report(
        reference,
        live,
        MonitorConfig.model_validate(
            {
                "features": {
                    "x": {"test": "wasserstein", "threshold": 0.9},
                    "k": {"test": "ks"},
                    "member": {"ignore": True},
                }
            }
        ),
    )
    x, k = report.features[:2]
    assert (x.test, x.threshold, x.drifted) == ("wasserstein", 0.9, False)
    assert (k.test, k.threshold) == ("ks", 0.05) and k.p_value is not None
    assert [f.name for f in report.features] == ["x", "k", "city"]


def test_dataset_drift_needs_the_configured_share(reference: dict[str, Any]) -> None:
    live = _table(2000, 1, shift=0.5, cities=(0.2, 0.3, 0.5))
    report = drift_report(reference, live)
    assert report.drifted_count == 2 and report.drifted_share == 0.5 and report.drift
    assert not drift_report(reference, live, MonitorConfig(drift_share=0.75)).drift


def test_small_window_is_not_enough_data(reference: dict[str, Any]) -> None:
    report = drift_report(reference, _table(60, 1, shift=3.0))
    assert not report.enough_data and not report.drift and report.drifted_count == 0
    assert report.features[0].statistic is not None and not report.features[0].enough_data
    assert drift_report(reference, _table(60, 1, shift=3.0), MonitorConfig(min_rows=50)).drifted_features == ("x",)


def test_invalid_configs_say_what_is_wrong(reference: dict[str, Any]) -> None:
    live = _table(600, 1)
    with pytest.raises(ConfigError, match="no feature named 'town'"):
        drift_report(reference, live, MonitorConfig.model_validate({"features": {"town": {"ignore": True}}}))
    with pytest.raises(ConfigError, match="'ks' does not apply to the category feature 'city'"):
        drift_report(reference, live, MonitorConfig.model_validate({"features": {"city": {"test": "ks"}}}))
    with pytest.raises(ConfigError, match="p-value < 1"):
        drift_report(
            reference, live, MonitorConfig(numeric_test="ks", features={"x": FeatureMonitorConfig(threshold=2)})
        )
    with pytest.raises(ValidationError, match="must be < 1"):
        FeatureMonitorConfig(test="chi2", threshold=1.5)
    with pytest.raises(ValidationError, match="numeric_tset"):
        MonitorConfig.model_validate({"numeric_tset": "ks"})
    with pytest.raises(ValidationError, match="numeric_test"):
        MonitorConfig.model_validate({"numeric_test": "chi2"})
    with pytest.raises(PackageError, match="no 'features'"):
        drift_report({"rows": 3}, live)


def test_predictions_are_compared_with_the_training_labels(training: pd.DataFrame, reference: dict[str, Any]) -> None:
    rng = np.random.default_rng(1)
    same = rng.choice(
        ["buy", "skip"], 2000, p=[(training["label"] == "buy").mean(), 1 - (training["label"] == "buy").mean()]
    )
    assert not prediction_drift(reference, list(same)).drifted
    skewed = rng.choice(["buy", "skip"], 2000, p=[0.85, 0.15])
    report = drift_report(reference, _table(2000, 1), predictions=skewed)
    assert report.prediction is not None and report.prediction.drifted and report.prediction.measure == "predictions"
    assert not report.drift  # the inputs did not move


def test_report_round_trips_through_json_and_renders_html(reference: dict[str, Any]) -> None:
    live = _table(2000, 1, shift=0.5)
    live.loc[:9, "city"] = "<b>new</b>"
    report = drift_report(reference, live, predictions=live["label"])
    text = json.dumps(report.to_dict(), allow_nan=False)
    assert DriftReport.from_dict(json.loads(text)) == report
    html = report.to_html()
    assert html.startswith("<section") and html.count("<svg") == 5
    assert all(f">{name}" in html for name in ("x", "k", "city", "member", "label (prediction)"))
    assert "&lt;b&gt;new&lt;/b&gt;" in html and "<b>new</b>" not in html


def test_old_sketches_still_work(reference: dict[str, Any]) -> None:
    old = _old(reference)
    for test in ("psi", "ks", "wasserstein"):
        config = MonitorConfig(numeric_test=test)
        assert drift_report(old, _table(2000, 1), config).drifted_count == 0
        assert "x" in drift_report(old, _table(2000, 1, shift=0.5), config).drifted_features
    assert drift_report(old, _table(2000, 1), predictions=["buy"] * 2000).prediction.drifted  # type: ignore[union-attr]


def _text_sketch(texts: list[str]) -> tuple[dict[str, Any], Preprocessor]:
    features = FeaturesConfig.model_validate(
        {"inputs": [{"name": "review", "type": "text", "vocab_size": 200}], "output": {"name": "y", "type": "binary"}}
    )
    frame = pd.DataFrame({"review": texts, "y": ["a", "b"] * (len(texts) // 2)})
    pre = Preprocessor(features).fit(frame)
    return json.loads(json.dumps(build_reference(frame, pre))), pre


def _reviews(rows: int, seed: int, *, longer: int = 0, empty: float = 0.05) -> list[str]:
    rng = np.random.default_rng(seed)
    words = ["tea", "great", "coffee", "bitter", "fresh", "never", "again", "tasty", "price", "good"]
    return [
        "" if rng.random() < empty else " ".join(rng.choice(words, rng.integers(2, 12) + longer)) for _ in range(rows)
    ]


def test_text_drifts_on_length_and_empty_share() -> None:
    reference, pre = _text_sketch(_reviews(1000, 0))
    assert reference["features"]["review"]["empty"] > 0 and "words" in reference["features"]["review"]
    for preprocessor, measure in ((pre, "token counts"), (None, "word counts")):
        same = drift_report(reference, pd.DataFrame({"review": _reviews(1000, 1)}), preprocessor=preprocessor)
        assert same.features[0].measure == measure and not same.drift
        longer = drift_report(
            reference, pd.DataFrame({"review": _reviews(1000, 1, longer=6)}), preprocessor=preprocessor
        )
        assert longer.drift and not longer.features[0].missing_drifted
    blank = drift_report(reference, pd.DataFrame({"review": _reviews(1000, 1, empty=0.4)})).features[0]
    assert blank.missing_drifted and blank.missing_live == pytest.approx(0.4, abs=0.05)
    # sketches before version 2 measured every text at the padded max_length: only the empty share is left
    old = drift_report(_old(reference), pd.DataFrame({"review": _reviews(600, 1, longer=6, empty=0.4)}))
    assert old.features[0].statistic is None and old.features[0].missing_drifted


def test_images_drift_on_mean_intensity() -> None:
    rng = np.random.default_rng(0)

    def images(rows: int, level: float) -> list[np.ndarray]:
        return [
            np.clip(rng.normal(level + rng.normal(0, 20), 10, (6, 6)), 0, 255).astype(np.uint8) for _ in range(rows)
        ]

    features = FeaturesConfig.model_validate(
        {"inputs": [{"name": "image", "type": "image"}], "output": {"name": "y", "type": "binary"}}
    )
    frame = pd.DataFrame({"image": images(600, 100), "y": ["a", "b"] * 300})
    pre = Preprocessor(features).fit(frame)
    reference = json.loads(json.dumps(build_reference(frame, pre)))
    config = MonitorConfig(min_rows=200)
    same = drift_report(reference, pd.DataFrame({"image": images(300, 100)}), config)
    assert same.features[0].measure == "mean intensity" and not same.drift
    assert drift_report(reference, pd.DataFrame({"image": images(300, 140)}), config).drift
    live = pd.Series(images(300, 100), dtype=object)
    live[::3] = None
    missing = drift_report(reference, pd.DataFrame({"image": live}), config).features[0]
    assert missing.present == 200 and missing.missing_drifted
    with pytest.raises(PackageError, match="lacks the image transform"):
        drift_report(_old(reference), pd.DataFrame({"image": images(300, 100)}), config)
    assert not drift_report(_old(reference), pd.DataFrame({"image": images(300, 100)}), config, preprocessor=pre).drift


@pytest.mark.parametrize("side", ["left", "right"])
def test_fast_buckets_equal_searchsorted(side: str) -> None:
    rng = np.random.default_rng(0)
    points = np.unique(rng.normal(size=40))
    cases = [
        (np.quantile(rng.normal(size=2000), np.linspace(0, 1, 101)), rng.normal(size=30_000)),
        (np.quantile(rng.lognormal(0, 3, 2000), np.linspace(0, 1, 101)), rng.lognormal(0, 3, 30_000)),
        (points, np.r_[rng.choice(points, 20_000), rng.normal(size=10_000) * 3]),  # values exactly on points
        (
            np.unique(np.r_[0.0, 1e-12, 2e-12, points]),
            np.r_[np.zeros(10_000), 1e-12, rng.normal(size=20_000)],
        ),  # crowded
        (np.array([0.0, 1.0]), rng.integers(0, 2, 30_000).astype(float)),
    ]
    for x, values in cases:
        index = np.searchsorted(x, values, side=side)
        counts, sums = buckets(x, values, side, sums=True)
        assert np.array_equal(counts, np.bincount(index, minlength=x.size + 1))
        assert np.allclose(sums, np.bincount(index, weights=values - x[0], minlength=x.size + 1))


def test_a_small_window_is_judged_over_fewer_bins_and_does_not_cry_wolf() -> None:
    """100 live rows with no drift: over the fixed 20 bins PSI's noise alone crosses 0.2 in a good share of
    windows; over the window's own 5 bins almost never, and a real shift of 3/4 of a deviation still shows."""
    from seekforge.monitor._statistics import PSI_BINS, bin_shares, number_sketch, psi

    training = _table(20_000, 0)
    pre = Preprocessor(FeaturesConfig.model_validate(FEATURES)).fit(training)
    reference = json.loads(json.dumps(build_reference(training, pre)))
    sketch = number_sketch(reference["features"]["x"])
    assert sketch is not None
    quiet, loud, alarms = 0, 0, 0
    config = MonitorConfig()
    assert config.min_rows == 100
    for seed in range(1, 201):
        window = _table(100, seed)
        found = {f.name: f for f in drift_report(reference, window, config).features}
        alarms += found["x"].drifted or found["city"].drifted
        values = np.sort(window["x"].to_numpy())
        live = np.searchsorted(values, sketch.x, side="right") / values.size
        fixed = psi(bin_shares(sketch.p, sketch.cuts), bin_shares(live, sketch.cuts))  # 20 bins, as before
        quiet += fixed >= 0.2
        loud += drift_report(reference, _table(100, seed, shift=0.75), config).features[0].drifted
    assert len(sketch.cuts) + 1 >= PSI_BINS - 1
    assert quiet >= 60, quiet  # what a fixed 20 bins would have raised (about half the windows here)
    assert alarms <= 4, alarms  # no false alarm in at least 98% of quiet windows
    assert loud >= 190, loud  # a shift of 3/4 of a standard deviation is found in at least 95% of windows
