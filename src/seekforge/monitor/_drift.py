"""Drift of live inputs (and predictions) against a package's reference sketch, never the training data.

How each test is computed from a sketch (``reference.json``, see :mod:`seekforge.monitor._reference`):

- Numbers carry a cumulative sketch: up to 101 points ``x`` with the training share ``p`` of values <= each
  (every distinct value of a column with at most 100 of them, else the percentiles). One pass over the
  live column (a binary search on ``x``, mostly replaced by a uniform grid) gives the live share at the
  same points, exactly; every numeric test reads those two step functions.

  - ``psi``: population stability index ``sum((q - p) * ln(q / p))`` over about 20 bins of equal training
    mass cut at sketch points, open at both ends (live values beyond the training range land in the first
    or last bin); a column with at most 20 values has a bin per value, and bins for "below the smallest"
    and "above the largest", where training has nothing. Shares below 1e-4 count as 1e-4, so empty bins
    stay finite. A window of fewer than 500 live values gets one bin per 25 of them (at least 5): PSI's
    mean under no drift is about (bins - 1) / rows, 0.19 for 20 bins at 100 rows, against a 0.2 threshold.
  - ``ks``: the two-sample Kolmogorov-Smirnov statistic ``D = max |F_train - F_live|`` at the sketch
    points, with scipy's asymptotic p-value ``kstwo.sf(D, round(n*m / (n+m)))`` (as
    ``scipy.stats.ks_2samp(method="asymp")``). Points 1% of the mass apart make ``D`` a slight
    underestimate, so the test errs towards no drift.
  - ``wasserstein``: ``W1 = integral |F_train - F_live| dx`` divided by the training standard deviation
    (at least 1e-3), as Evidently's ``wasserstein`` test. The sketch holds the exact integral of
    ``F_train`` between consecutive points, and the same pass over the live column sums its values per
    interval, which makes the integral of ``F_live`` there exact too. Where ``F_train - F_live`` keeps its
    sign over an interval, its share of ``W1`` is ``|difference of the integrals|``, exactly; where the
    sign changes inside one, both CDFs are taken as linear there. Beyond the training range the live
    values alone give it: ``mean((min - v)+)`` below, ``mean((v - max)+)`` above.

  Sketches before version 2 have no cumulative sketch: their 20 quantile bins stand in for it (coarser,
  with both CDFs linear inside each bin; a column with few distinct values may be a single bin there,
  which no test can see move).

- Categories carry the 50 most frequent training values and the count of all the others: the buckets are
  those values plus ``other``, where live values outside them (unseen ones included) are counted.

  - ``psi``: as for numbers, over the buckets (for a window under 500 values, the largest training buckets,
    one per 25 values, and the rest together; so too for ``jensenshannon``).
  - ``chi2``: chi-square test of homogeneity of the 2 x buckets table of training and live counts
    (``scipy.stats.chi2_contingency``, buckets empty on both sides dropped).
  - ``jensenshannon``: ``scipy.spatial.distance.jensenshannon`` of the two shares, natural logarithm (as
    scipy's default and Evidently: from 0 to sqrt(ln 2) = 0.83).

- Text is compared by its length in tokens (with the package's Preprocessor) or in whitespace words
  (without one), images by their mean normalised intensity: both then as numbers. Sketches before
  version 2 hold no usable text length, so for them only the share of empty texts is compared.
  A text feature whose sketch holds the model's embeddings is also compared by meaning, on embeddings
  of the live texts by the same model (see :mod:`seekforge.monitor._embedding`); it drifts when either
  its lengths or its embeddings do.

Missing values are left out of every test and compared on their own: a feature also drifts when its
missing share (empty texts, for text) moves by more than ``missing_threshold``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from seekforge.core.errors import ConfigError, PackageError
from seekforge.monitor._drift_report import DriftReport, FeatureDrift
from seekforge.monitor._embedding import EmbeddingDrift, embedding_drift
from seekforge.monitor._statistics import (
    categorical_test,
    number_sketch,
    numeric_test,
)
from seekforge.monitor.config import CATEGORICAL_TESTS, NUMERIC_TESTS, P_VALUE_TESTS, MonitorConfig
from seekforge.runtime import canonical

if TYPE_CHECKING:
    from seekforge.data import Preprocessor

_IMAGE_CHUNK = 256
#: Fewer live texts than this are not embedded: no classifier or permutation test means much on them.
_EMBED_MIN_ROWS = 10

#: Embeddings ``[rows, dim]`` of a text feature's live values, by the package's model: (feature, texts).
Embedder = Callable[[str, pd.Series], np.ndarray]


# ------------------------------------------------------------------------------------------- sketches


def _floats(column: pd.Series) -> np.ndarray:
    """Numbers as float64, NaN where missing; values that are not numbers count as missing."""
    if column.dtype.kind in "fiub":
        return column.to_numpy(dtype=np.float64)
    return pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _text_lengths(name: str, sketch: dict[str, Any], column: pd.Series, preprocessor: Preprocessor | None) -> tuple:
    """(numeric sketch, live lengths, measure, live empty share) of a text feature; no sketch and no lengths
    for sketches before version 2, whose token counts were all the padded ``max_length``."""
    from seekforge.monitor._reference import token_counts, word_counts

    texts = column.fillna("").astype(str)
    empty = float(texts.str.strip().eq("").mean()) if len(texts) else 0.0
    if "words" not in sketch:
        return {}, np.zeros(len(texts)), "empty share (sketch without text lengths)", empty
    if preprocessor is not None:
        return sketch["tokens"], token_counts(preprocessor.text_[name], texts.tolist()), "token counts", empty
    return sketch["words"], word_counts(texts.tolist()), "word counts", empty


def _text_embedding(
    name: str, sketch: dict[str, Any], column: pd.Series, config: MonitorConfig, embed: Embedder | None
) -> EmbeddingDrift:
    """The embedding comparison of a text feature: a seeded sample of at most ``embedding_rows`` live
    texts (empty ones included, as in the training sample), embedded by ``embed``."""
    test = config.embedding_test
    threshold = config.classifier_auc if test == "classifier" else config.mmd_p_value
    rows = len(column)
    if embed is None or rows < _EMBED_MIN_ROWS:
        note = (
            "no model was given to embed the live texts"
            if embed is None
            else f"{rows} live texts, at least {_EMBED_MIN_ROWS} needed"
        )
        return EmbeddingDrift(test, None, None, threshold, False, 0, int(sketch["rows"]), f"not compared: {note}")
    texts = column.fillna("").astype(str)
    if rows > config.embedding_rows:
        picked = np.random.default_rng(config.seed).choice(rows, config.embedding_rows, replace=False)
        texts = texts.iloc[np.sort(picked)]
    return embedding_drift(sketch, embed(name, texts), config, enough=rows >= config.min_rows)


def _image_means(name: str, sketch: dict[str, Any], column: pd.Series, preprocessor: Preprocessor | None) -> np.ndarray:
    """Mean normalised intensity of each live image (missing ones as NaN), as the sketch measured them."""
    from seekforge.data import ImageStats, load_images

    if preprocessor is not None:
        image_stats = preprocessor.images_[name]
    elif "image" in sketch:
        image_stats = ImageStats.from_dict(sketch["image"])
    else:
        raise PackageError(
            f"image feature '{name}': this reference sketch lacks the image transform",
            hint="pass the package's Preprocessor (preprocessor=), or rebuild the package with this seekforge",
        )
    means = np.full(len(column), np.nan)
    where = np.flatnonzero(column.notna().to_numpy())
    for start in range(0, where.size, _IMAGE_CHUNK):
        chunk = column.iloc[where[start : start + _IMAGE_CHUNK]]
        means[where[start : start + _IMAGE_CHUNK]] = load_images(chunk, chunk.to_frame(), image_stats).mean(
            dim=(1, 2, 3)
        )
    return means


# ---------------------------------------------------------------------------------------- the report


def _choose(config: MonitorConfig, name: str, ftype: str, *, numeric: bool) -> tuple[str, float]:
    """The test and threshold for feature ``name``: a numeric or a categorical one, as its measure is."""
    override = config.features.get(name)
    test = (override.test if override else None) or (config.numeric_test if numeric else config.categorical_test)
    allowed = NUMERIC_TESTS if numeric else CATEGORICAL_TESTS
    if test not in allowed:
        raise ConfigError(
            f"monitor.features.{name}.test: '{test}' does not apply to the {ftype} feature '{name}'; "
            f"use one of {', '.join(allowed)}"
        )
    threshold = override.threshold if override and override.threshold is not None else config.threshold(test)
    if test in P_VALUE_TESTS and threshold >= 1.0:
        raise ConfigError(f"monitor.features.{name}.threshold: a {test} threshold is a p-value < 1, got {threshold}")
    return test, threshold


def _share(part: float, whole: float) -> float:
    return float(part / whole) if whole else 0.0


def _evaluate(
    config: MonitorConfig,
    name: str,
    ftype: str,
    measure: str,
    sketch: dict[str, Any],
    live: np.ndarray | pd.Series,
    missing_reference: float | None = None,
    missing_live: float | None = None,
) -> FeatureDrift:
    """Test ``live`` (numbers as float64 with NaN, or a Series of categories) against ``sketch``."""
    test, threshold = _choose(config, name, ftype, numeric=isinstance(live, np.ndarray))
    rows, outcome, new = len(live), None, ()
    if isinstance(live, np.ndarray):
        finite = np.isfinite(live)
        values = live if finite.all() else live[finite]
        ref = number_sketch(sketch)
        present = values.size
        if ref is not None and present:
            outcome = numeric_test(ref, values, test)
    else:
        labels, ref_counts, counts, new = _count_categories(sketch, live, binary=ftype == "binary")
        present = int(counts.sum())
        if ref_counts.sum() and present:
            outcome = categorical_test(labels, ref_counts, counts, test)
    statistic, p_value, hist = outcome if outcome is not None else (None, None, None)
    if missing_reference is None:
        missing_reference = _share(sketch.get("missing", 0), sketch.get("count", 0))
    if missing_live is None:
        missing_live = _share(rows - present, rows)
    enough = statistic is not None and present >= config.min_rows
    crossed = enough and ((p_value or 0.0) < threshold if test in P_VALUE_TESTS else statistic >= threshold)
    missing_drifted = rows >= config.min_rows and abs(missing_live - missing_reference) > config.missing_threshold
    return FeatureDrift(
        name=name,
        type=ftype,
        measure=measure,
        test=test,
        statistic=statistic,
        p_value=p_value,
        threshold=threshold,
        drifted=bool(crossed or missing_drifted),
        rows=rows,
        present=present,
        missing_reference=missing_reference,
        missing_live=missing_live,
        missing_drifted=bool(missing_drifted),
        enough_data=bool(enough),
        histogram=hist,
        new_categories=new,
    )


def _count_categories(
    sketch: dict[str, Any], column: pd.Series, *, binary: bool
) -> tuple[list[str], np.ndarray, np.ndarray, tuple[str, ...]]:
    """Training labels and counts, live counts in the same buckets (the last is ``other``), new values."""
    labels = list(sketch["frequencies"])
    ref_counts = np.array([*sketch["frequencies"].values(), sketch.get("other", 0)], dtype=float)
    lookup = {label: i for i, label in enumerate(labels)}
    if binary:  # the Preprocessor reads binary values case-insensitively
        lookup = {label.lower(): i for label, i in lookup.items()} | lookup
    counts = np.zeros(len(labels) + 1)
    new: list[str] = []
    for value, count in column.value_counts(dropna=True).items():  # one step per distinct value
        key = canonical(value)
        index = lookup.get(key, lookup.get(str(value), lookup.get(key.lower()) if binary else None))
        if index is None:
            index = len(labels)
            new += [key] if count else []
        counts[index] += count
    # only a sketch that lists every training value (nothing in ``other``) knows which values are new
    return labels, ref_counts, counts, tuple(new[:10]) if not sketch.get("other", 0) else ()


def _feature(
    config: MonitorConfig,
    name: str,
    sketch: dict[str, Any],
    column: pd.Series,
    preprocessor: Preprocessor | None,
    embed: Embedder | None,
) -> FeatureDrift:
    ftype = str(sketch.get("type"))
    if ftype == "numeric":
        return _evaluate(config, name, ftype, "values", sketch, _floats(column))
    if ftype in ("category", "binary"):
        return _evaluate(config, name, ftype, "categories", sketch, column)
    if ftype == "text":
        lengths_sketch, lengths, measure, empty = _text_lengths(name, sketch, column, preprocessor)
        empty_reference = _share(sketch.get("empty", 0), sketch["tokens"].get("count", 0))
        result = _evaluate(config, name, ftype, measure, lengths_sketch, lengths, empty_reference, empty)
        if "embedding" in sketch and config.embedding_test != "none":
            found = _text_embedding(name, sketch["embedding"], column, config, embed)
            result = replace(result, embedding=found, drifted=result.drifted or found.drifted)
        return result
    if ftype == "image":
        means = _image_means(name, sketch, column, preprocessor)
        return _evaluate(config, name, ftype, "mean intensity", sketch["mean_intensity"], means)
    if ftype == "datetime":
        from seekforge.runtime import hours_of_week

        return _evaluate(config, name, ftype, "hour of the week", sketch, hours_of_week(list(column), name))
    if ftype == "sequence":
        from seekforge.monitor._reference import sequence_items, sequence_lists

        items = sequence_items(sequence_lists(column, name))
        if sketch["kind"] == "numbers":
            return _evaluate(config, name, ftype, "item values", sketch["items"], items.to_numpy(dtype=float))
        return _evaluate(config, name, ftype, "items", sketch["items"], items)
    raise PackageError(f"reference sketch of '{name}' has an unknown feature type {ftype!r}")


def _features(reference: dict[str, Any], config: MonitorConfig) -> dict[str, dict[str, Any]]:
    features = reference.get("features") if isinstance(reference, dict) else None
    if not isinstance(features, dict):
        raise PackageError("the reference sketch has no 'features' mapping", hint="pass the package's reference.json")
    output = reference.get("output", {}).get("name")
    unknown = sorted(set(config.features) - set(features) - {output})
    if unknown:
        raise ConfigError(
            f"monitor.features: no feature named {', '.join(map(repr, unknown))}; "
            f"the inputs are {', '.join(features)}" + (f" and the output is '{output}'" if output else "")
        )
    return features


def prediction_drift(
    reference: dict[str, Any], predictions: Sequence[Any], config: MonitorConfig | None = None
) -> FeatureDrift:
    """Drift of a model's predictions against the training split's labels (or values, for regression).

    A classifier's labels are compared with the categorical test, a regressor's values with the numeric
    one. Even without drift, predictions differ from true labels by the model's own errors, so a small
    statistic here is normal; its trend over windows is what to watch.

    Args:
        reference: The package's reference sketch (``reference.json``).
        predictions: Predicted labels or values, one per row.
        config: Tests and thresholds (``features.<output name>`` overrides them).

    Raises:
        PackageError: The sketch has no output.
    """
    config = config or MonitorConfig()
    output = reference.get("output") if isinstance(reference, dict) else None
    if not isinstance(output, dict) or "name" not in output:
        raise PackageError("the reference sketch has no 'output'", hint="pass the package's reference.json")
    series = predictions if isinstance(predictions, pd.Series) else pd.Series(list(predictions), dtype=object)
    if "frequencies" in output:
        return _evaluate(config, output["name"], output.get("type", "category"), "predictions", output, series)
    return _evaluate(config, output["name"], "numeric", "predictions", output, _floats(series))


def drift_report(
    reference: dict[str, Any],
    frame: pd.DataFrame,
    config: MonitorConfig | None = None,
    *,
    predictions: Sequence[Any] | None = None,
    preprocessor: Preprocessor | None = None,
    embed: Embedder | None = None,
) -> DriftReport:
    """Compare a window of live inputs with the training data's sketch, feature by feature.

    Args:
        reference: The package's reference sketch (``reference.json``, from :func:`build_reference`).
        frame: Live raw inputs, one column per input feature (extra columns are ignored; a missing column
            counts as all missing). Numbers may arrive as objects with None; text as strings; images as
            paths or arrays.
        config: Tests and thresholds; the defaults of :class:`MonitorConfig` when None.
        predictions: The model's predictions for the same rows, to compare with the training labels.
        preprocessor: The package's Preprocessor: text is compared by token counts with it, by word counts
            without it; images of sketches before version 2 need it.
        embed: Embeds a text feature's live values with the package's model (``(feature, texts) ->
            [rows, dim]``), for sketches that hold embeddings; without it their embeddings are reported
            as not compared. :func:`seekforge.monitor.monitor_package` passes one.

    Returns:
        A :class:`DriftReport`; nothing drifts in a window of fewer than ``config.min_rows`` rows.

    Raises:
        PackageError: ``reference`` is not a reference sketch.
        ConfigError: An override names an unknown feature or a test that does not suit its type.

    Example:
        >>> report = drift_report(json.loads(Path("package/reference.json").read_text()), live_frame)
        >>> report.drift, report.drifted_features
    """
    config = config or MonitorConfig()
    features = _features(reference, config)
    results = []
    for name, sketch in features.items():
        override = config.features.get(name)
        if override is not None and override.ignore:
            continue
        column = frame[name] if name in frame.columns else pd.Series(np.nan, index=frame.index, dtype=float)
        results.append(_feature(config, name, sketch, column, preprocessor, embed))
    output = config.features.get(reference.get("output", {}).get("name", ""))
    prediction = None
    if predictions is not None and not (output is not None and output.ignore):
        prediction = prediction_drift(reference, predictions, config)
    drifted = sum(result.drifted for result in results)
    share = drifted / len(results) if results else 0.0
    enough = len(frame) >= config.min_rows
    return DriftReport(
        features=tuple(results),
        rows=len(frame),
        reference_rows=int(reference.get("rows", 0)),
        drifted_count=drifted,
        drifted_share=share,
        drift_share=config.drift_share,
        drift=enough and bool(results) and share >= config.drift_share,
        enough_data=enough,
        min_rows=config.min_rows,
        prediction=prediction,
    )
