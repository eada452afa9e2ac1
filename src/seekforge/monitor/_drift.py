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
    stay finite.
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

  - ``psi``: as for numbers, over the buckets.
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
from dataclasses import asdict, dataclass, replace
from itertools import pairwise
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial.distance import jensenshannon

from seekforge.core.errors import ConfigError, PackageError
from seekforge.core.report import esc, fmt
from seekforge.monitor._embedding import EmbeddingDrift, embedding_drift
from seekforge.monitor.config import CATEGORICAL_TESTS, NUMERIC_TESTS, P_VALUE_TESTS, MonitorConfig
from seekforge.runtime._encode import canonical

if TYPE_CHECKING:
    from seekforge.data import Preprocessor

EPSILON = 1e-4
PSI_BINS = 20
OTHER = "(other)"
_IMAGE_CHUNK = 256
_GRID = 1 << 16
_GRID_MIN_ROWS = 20_000
#: Fewer live texts than this are not embedded: no classifier or permutation test means much on them.
_EMBED_MIN_ROWS = 10

#: Embeddings ``[rows, dim]`` of a text feature's live values, by the package's model: (feature, texts).
Embedder = Callable[[str, pd.Series], np.ndarray]


@dataclass(frozen=True)
class Histogram:
    """Training and live shares over a test's bins or categories, for charts."""

    labels: tuple[str, ...]
    reference: tuple[float, ...]
    live: tuple[float, ...]


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's comparison.

    Attributes:
        name, type: The feature's (or output's) name and declared type.
        measure: What was compared: ``values``, ``categories``, ``token counts``, ``word counts``,
            ``mean intensity`` or ``predictions``.
        test, threshold: The test and its threshold (a p-value for ``ks`` and ``chi2``).
        statistic: The test's statistic (PSI, KS D, normalised W1, chi-square, JS distance); None when
            there was nothing to compare.
        p_value: For ``ks`` and ``chi2``.
        drifted: The distribution crossed the threshold (with enough data), the missing share moved, or
            (text) the embeddings drifted.
        rows: Live rows; ``present``: those with a value.
        missing_reference, missing_live: Shares of missing values (empty texts for text).
        missing_drifted: The missing share moved by more than ``missing_threshold``.
        enough_data: At least ``min_rows`` live values, so the distribution test counts.
        histogram: Shares per bin or category, training vs live.
        new_categories: Live values the training data never had (up to 10, most frequent first).
        embedding: A text feature's embedding comparison, when its sketch holds embeddings.
    """

    name: str
    type: str
    measure: str
    test: str
    statistic: float | None
    p_value: float | None
    threshold: float
    drifted: bool
    rows: int
    present: int
    missing_reference: float
    missing_live: float
    missing_drifted: bool
    enough_data: bool
    histogram: Histogram | None = None
    new_categories: tuple[str, ...] = ()
    embedding: EmbeddingDrift | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureDrift:
        hist, embedding = data.get("histogram"), data.get("embedding")
        return cls(
            **{
                **data,
                "histogram": Histogram(*(tuple(hist[k]) for k in ("labels", "reference", "live"))) if hist else None,
                "new_categories": tuple(data.get("new_categories", ())),
                "embedding": EmbeddingDrift(**embedding) if embedding else None,
            }
        )


@dataclass(frozen=True)
class DriftReport:
    """Drift of one window of live data.

    Attributes:
        features: One result per input feature, in the reference's order (ignored ones left out).
        rows: Live rows; ``reference_rows``: training rows the sketch summarises.
        drifted_count, drifted_share: Features that drifted, and their share of ``features``.
        drift_share: The share at which the window counts as drifted.
        drift: Dataset-level drift: enough data and ``drifted_share >= drift_share``.
        enough_data: The window has at least ``min_rows`` rows.
        min_rows: The configured minimum.
        prediction: The predictions' drift against the training labels (or values), when given.
    """

    features: tuple[FeatureDrift, ...]
    rows: int
    reference_rows: int
    drifted_count: int
    drifted_share: float
    drift_share: float
    drift: bool
    enough_data: bool
    min_rows: int
    prediction: FeatureDrift | None = None

    @property
    def drifted_features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features if f.drifted)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (finite floats, lists and strings only)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DriftReport:
        """The report back from :meth:`to_dict` (for example after a JSON round trip)."""
        prediction = data.get("prediction")
        return cls(
            **{
                **data,
                "features": tuple(FeatureDrift.from_dict(f) for f in data["features"]),
                "prediction": FeatureDrift.from_dict(prediction) if prediction else None,
            }
        )

    def to_html(self) -> str:
        """An HTML section: the verdict, then a table with a training-vs-live chart per feature (inline SVG,
        no scripts, no external files); styles come from the page around it."""
        verdict = "dataset drift" if self.drift else "no dataset drift"
        if not self.enough_data:
            verdict = f"not enough data ({self.rows:,} rows, at least {self.min_rows:,} needed)"
        head = (
            f"<p><b>{esc(verdict)}</b>: {self.drifted_count} of {len(self.features)} features drifted "
            f"({self.drifted_share:.0%}; dataset drift at {self.drift_share:.0%}); {self.rows:,} live rows "
            f"against {self.reference_rows:,} training rows. Bars: training (grey) and live (blue, red when "
            "drifted) shares.</p>"
        )
        results = sorted(self.features, key=lambda f: not f.drifted)  # drifted first, stable otherwise
        if self.prediction is not None:
            results.insert(0, self.prediction)
        header = ("feature", "type", "test", "statistic", "p-value", "threshold", "rows", "missing", "drift", "")
        rows = "".join(_row(f, f is self.prediction) for f in results)
        table = "<tr>" + "".join(f"<th>{h}</th>" for h in header) + f"</tr>{rows}"
        return f"<section class='seekforge-drift'>{head}<table>{table}</table></section>"


def _row(result: FeatureDrift, is_prediction: bool) -> str:
    name = f"{esc(result.name)} (prediction)" if is_prediction else esc(result.name)
    if result.measure not in ("values", "categories", "predictions"):
        name += f"<br><span class='muted'>{esc(result.measure)}</span>"
    if result.new_categories:
        name += f"<br><span class='muted'>new: {esc(', '.join(result.new_categories[:5]))}</span>"
    if result.embedding is not None:
        name += f"<br><span class='muted'>{esc(result.embedding.text())}</span>"
    quiet = "no" if result.enough_data else ("n/a" if result.statistic is None else "too few")
    flag = "<b style='color:#d62728'>drift</b>" if result.drifted else quiet
    if result.missing_drifted:
        flag += " (missing)"
    if result.embedding is not None and result.embedding.drifted:
        flag += " (embeddings)"
    missing = f"<span style='white-space:nowrap'>{result.missing_reference:.1%} &rarr; {result.missing_live:.1%}</span>"
    cells = [name, esc(result.type), esc(result.test), fmt(result.statistic) if result.statistic is not None else ""]
    cells += [fmt(result.p_value) if result.p_value is not None else "", fmt(result.threshold), f"{result.rows:,}"]
    cells += [missing, flag, _bars(result.histogram, result.drifted) if result.histogram else ""]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def _bars(hist: Histogram, drifted: bool, width: int = 180, height: int = 44) -> str:
    """Paired bars per bin: training share (grey) beside live share (blue, red when drifted)."""
    peak = max(max(hist.reference, default=0), max(hist.live, default=0)) or 1.0
    slot = width / max(len(hist.labels), 1)
    color = "#d62728" if drifted else "#1f77b4"
    out = [f"<svg width='{width}' height='{height}' role='img' aria-label='training vs live'>"]
    for i, (label, ref, live) in enumerate(zip(hist.labels, hist.reference, hist.live, strict=True)):
        tip = f"<title>{esc(label)}: training {ref:.1%}, live {live:.1%}</title>"
        for k, (share, fill) in enumerate(((ref, "#999"), (live, color))):
            tall = (height - 2) * share / peak
            out.append(
                f"<rect x='{i * slot + k * slot / 2:.1f}' y='{height - tall:.1f}' width='{max(slot / 2 - 0.5, 0.5):.1f}' "
                f"height='{tall:.1f}' fill='{fill}'>{tip}</rect>"
            )
    return "".join(out) + "</svg>"


# ------------------------------------------------------------------------------------------- sketches


@dataclass(frozen=True)
class _Numbers:
    """A numeric sketch as a step function: training share ``p`` of values <= ``x`` (``side`` "left"), or
    of values < ``x`` except the last point (``side`` "right", sketches without ``cdf``)."""

    x: np.ndarray
    p: np.ndarray
    side: str
    discrete: bool
    n: int
    std: float
    cuts: np.ndarray  # indices into x of the PSI bins' boundaries
    area: np.ndarray | None  # integral of the training CDF between consecutive points


def _numbers(sketch: dict[str, Any]) -> _Numbers | None:
    n = int(sketch.get("count", 0)) - int(sketch.get("missing", 0))
    if n <= 0 or "bin_edges" not in sketch:
        return None
    std = float(sketch.get("std", 0.0))
    if "cdf" in sketch:
        x, p = np.asarray(sketch["cdf"]["x"], dtype=float), np.asarray(sketch["cdf"]["p"], dtype=float)
        side, discrete, area = "left", bool(sketch["cdf"]["discrete"]), np.asarray(sketch["cdf"]["area"], dtype=float)
    else:  # a sketch without ``cdf``: its 20 quantile bins [e_i, e_i+1), the last closed
        x, counts = np.asarray(sketch["bin_edges"], dtype=float), np.asarray(sketch["bin_counts"], dtype=float)
        p = np.concatenate([[0.0], np.cumsum(counts)[:-1] / n, [1.0]]) if x.size > 1 else np.ones(1)
        side, discrete, area = ("right", False, None) if x.size > 1 else ("left", True, np.zeros(0))
    if not discrete:  # open outer bins: about 20 of equal training mass, cut where the share crosses k/20
        level = np.floor(p[:-1] * PSI_BINS + 1e-9)
        return _Numbers(x, p, side, False, n, std, np.flatnonzero(np.diff(level, prepend=0.0) > 0), area)
    # Discrete: a point just below the smallest value makes "below it" a bin (as "above the largest" is),
    # so a value training never had lands in a bin of training share 0 (even for a constant column).
    x, p = np.concatenate([[np.nextafter(x[0], -np.inf)], x]), np.concatenate([[0.0], p])
    if x.size <= PSI_BINS + 1:
        cuts = np.arange(x.size)
    else:
        level = np.floor(p * PSI_BINS + 1e-9)
        cuts = np.unique(np.concatenate([[0], np.flatnonzero(np.diff(level, prepend=0.0) > 0), [x.size - 1]]))
    return _Numbers(x, p, side, True, n, std, cuts, None if area is None else np.concatenate([[0.0], area]))


# ---------------------------------------------------------------------------------------- statistics


def _psi(reference: np.ndarray, live: np.ndarray) -> float:
    p, q = np.clip(reference, EPSILON, None), np.clip(live, EPSILON, None)
    return float(np.sum((q - p) * np.log(q / p)))


def _bin_shares(p: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Shares of the bins (-inf, x[c0]], (x[c0], x[c1]], ..., (x[c_last], inf) from cumulative shares."""
    return np.diff(np.concatenate([[0.0], p[cuts], [1.0]]))


def _buckets(x: np.ndarray, values: np.ndarray, side: str, *, sums: bool) -> tuple[np.ndarray, np.ndarray]:
    """Counts of ``values`` per bucket of ``np.searchsorted(x, values, side)`` (``x.size + 1`` buckets) and,
    with ``sums``, their sums of ``value - x[0]`` (zeros without).

    Several times faster than a binary search per value on large columns: values go to the cells of a
    uniform grid over ``[x[1], x[-2]]`` by arithmetic, and the points of ``x`` through the same arithmetic
    (same rounding, same order). A value then lies above every point of an earlier cell and below every
    point of a later one, so a cell without points counts for one bucket as a whole, a value in a cell with
    one point needs one comparison, and only values in cells with several points are searched.
    """
    total = np.zeros(x.size + 1)
    lo, hi = (x[1], x[-2]) if x.size > 4 else (x[0], x[-1])
    if values.size < _GRID_MIN_ROWS or not hi > lo:
        index = np.searchsorted(x, values, side=side)
        if sums:
            total = np.bincount(index, weights=values - x[0], minlength=x.size + 1)
        return np.bincount(index, minlength=x.size + 1), total

    def cell_of(numbers: np.ndarray) -> np.ndarray:
        cell = np.subtract(numbers, lo)
        cell *= scale
        cell += 1.0
        np.clip(cell, 0.0, _GRID + 1, out=cell)  # 0: below lo; _GRID + 1: at or beyond hi
        return np.floor(cell, out=cell).astype(np.intp)

    scale = _GRID / float(hi - lo)
    cells = cell_of(values)
    in_cell = np.bincount(cell_of(x), minlength=_GRID + 2)
    before = np.concatenate([[0], np.cumsum(in_cell)[:-1]])  # points in earlier cells
    empty = in_cell == 0
    per_cell = np.bincount(cells, minlength=_GRID + 2)
    counts = np.bincount(before[empty], weights=per_cell[empty], minlength=x.size + 1)
    if sums:
        cell_sums = np.bincount(cells, weights=values - x[0], minlength=_GRID + 2)
        total = np.bincount(before[empty], weights=cell_sums[empty], minlength=x.size + 1)
    pick = ~empty[cells]
    if pick.any():
        near, cell = values[pick], cells[pick]
        first = before[cell]  # the cell's first point
        index = first + (near > x[first] if side == "left" else near >= x[first])
        crowded = in_cell[cell] > 1
        index[crowded] = np.searchsorted(x, near[crowded], side=side)
        counts += np.bincount(index, minlength=x.size + 1)
        if sums:
            total += np.bincount(index, weights=near - x[0], minlength=x.size + 1)
    return counts.astype(np.int64), total


def _bin_labels(ref: _Numbers) -> tuple[str, ...]:
    if not ref.cuts.size:
        return ("all",)
    x, cuts = ref.x, ref.cuts
    first = f"< {x[1]:.4g}" if ref.discrete else f"<= {x[cuts[0]]:.4g}"
    middle = [
        f"{x[b]:.4g}" if ref.discrete and b == a + 1 else f"{x[a + 1] if ref.discrete else x[a]:.4g} to {x[b]:.4g}"
        for a, b in pairwise(cuts)
    ]
    return (first, *middle, f"> {x[cuts[-1]]:.4g}")


def _numeric_test(ref: _Numbers, values: np.ndarray, test: str) -> tuple[float, float | None, Histogram]:
    """Statistic, p-value and histogram of finite, present live ``values`` against ``ref``."""
    n, x = values.size, ref.x
    counts, sums = _buckets(x, values, ref.side, sums=test == "wasserstein")
    live = np.cumsum(counts)[:-1] / n  # the live share at each point, as the sketch counts (<= x, or < x)
    ref_bins, live_bins = _bin_shares(ref.p, ref.cuts), _bin_shares(live, ref.cuts)
    hist = Histogram(_bin_labels(ref), tuple(ref_bins.tolist()), tuple(live_bins.tolist()))
    if test == "psi":
        return _psi(ref_bins, live_bins), None, hist
    gap = ref.p - live
    if test == "ks":
        d = float(np.max(np.abs(gap)))
        return d, float(stats.kstwo.sf(d, np.round(ref.n * n / (ref.n + n)))), hist
    # W1 = integral |F - G|: beyond the training range from the live values alone, exactly
    widths, offsets = np.diff(x), x - x[0]
    tails = (-sums[0] + sums[-1] - counts[-1] * offsets[-1]) / n
    a, b = np.abs(gap[:-1]), np.abs(gap[1:])
    crossing = gap[:-1] * gap[1:] < 0  # F - G changes sign inside the interval: both CDFs taken as linear
    linear = np.where(crossing, (a * a + b * b) / (2 * np.where(a + b > 0, a + b, 1.0)), (a + b) / 2) * widths
    inner = linear
    if ref.area is not None:  # where F - G keeps its sign, |integral of F - integral of G| is exact
        exact = np.abs(ref.area - (live[:-1] * widths + (counts[1:-1] * offsets[1:] - sums[1:-1]) / n))
        inner = exact if ref.discrete else np.where(crossing, linear, exact)  # steps: exact throughout
    return (float(np.sum(inner)) + float(tails)) / max(ref.std, 1e-3), None, hist


def _categorical_test(labels: list[str], ref_counts: np.ndarray, live_counts: np.ndarray, test: str) -> tuple:
    ref, live = ref_counts / ref_counts.sum(), live_counts / max(live_counts.sum(), 1)
    hist = Histogram((*labels, OTHER), tuple(ref.tolist()), tuple(live.tolist()))
    if test == "psi":
        return _psi(ref, live), None, hist
    if test == "jensenshannon":
        return float(jensenshannon(ref, live)), None, hist
    table = np.stack([ref_counts, live_counts])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0, hist
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue), hist


# ----------------------------------------------------------------------------------------- live data


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
    from seekforge.data._images import ImageStats, load_images

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


def _choose(config: MonitorConfig, name: str, ftype: str) -> tuple[str, float]:
    numeric = ftype in ("numeric", "text", "image")
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
    test, threshold = _choose(config, name, ftype)
    rows, outcome, new = len(live), None, ()
    if isinstance(live, np.ndarray):
        finite = np.isfinite(live)
        values = live if finite.all() else live[finite]
        ref = _numbers(sketch)
        present = values.size
        if ref is not None and present:
            outcome = _numeric_test(ref, values, test)
    else:
        labels, ref_counts, counts, new = _count_categories(sketch, live, binary=ftype == "binary")
        present = int(counts.sum())
        if ref_counts.sum() and present:
            outcome = _categorical_test(labels, ref_counts, counts, test)
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
