"""The drift statistics over a feature's training sketch and its live values: PSI, Kolmogorov-Smirnov and
Wasserstein for numbers; PSI, chi-square and Jensen-Shannon for categories (see ``_drift``'s notes)."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

import numpy as np
from scipy import stats
from scipy.spatial.distance import jensenshannon

EPSILON = 1e-4
PSI_BINS = 20
#: Live values per PSI bin: a window of fewer than ``PSI_BINS`` x this has fewer, coarser bins (at least
#: ``MIN_PSI_BINS``), since PSI's mean under no drift is about (bins - 1) / rows and would near its 0.2
#: threshold at 100 rows over 20 bins.
ROWS_PER_BIN = 25
MIN_PSI_BINS = 5
OTHER = "(other)"
_GRID = 1 << 16
_GRID_MIN_ROWS = 20_000


@dataclass(frozen=True)
class Histogram:
    """Training and live shares over a test's bins or categories, for charts."""

    labels: tuple[str, ...]
    reference: tuple[float, ...]
    live: tuple[float, ...]


@dataclass(frozen=True)
class NumberSketch:
    """A numeric sketch as a step function: training share ``p`` of values <= ``x`` (``side`` "left"), or
    of values < ``x`` except the last point (``side`` "right", sketches without ``cdf``)."""

    x: np.ndarray
    p: np.ndarray
    side: str
    discrete: bool
    n: int
    std: float
    cuts: np.ndarray  # indices into x of the PSI bins' boundaries (PSI_BINS of them)
    area: np.ndarray | None  # integral of the training CDF between consecutive points

    def cuts_for(self, bins: int) -> np.ndarray:
        """The boundaries of about ``bins`` bins of equal training mass (``cuts`` for ``PSI_BINS``)."""
        return self.cuts if bins >= PSI_BINS else _cuts(self.p, self.discrete, bins)


def psi_bins(rows: int) -> int:
    """PSI bins for a window of ``rows`` live values: ``PSI_BINS`` from 500 rows, fewer below."""
    return max(MIN_PSI_BINS, min(PSI_BINS, rows // ROWS_PER_BIN))


def _cuts(p: np.ndarray, discrete: bool, bins: int) -> np.ndarray:
    """Cut where the training share crosses k / bins; open outer bins. Discrete sketches (with their point
    below the smallest value) keep a bin per value when they have at most ``bins`` values."""
    if not discrete:
        level = np.floor(p[:-1] * bins + 1e-9)
        return np.flatnonzero(np.diff(level, prepend=0.0) > 0)
    if p.size <= bins + 1:
        return np.arange(p.size)
    level = np.floor(p * bins + 1e-9)
    return np.unique(np.concatenate([[0], np.flatnonzero(np.diff(level, prepend=0.0) > 0), [p.size - 1]]))


def number_sketch(sketch: dict[str, Any]) -> NumberSketch | None:
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
        return NumberSketch(x, p, side, False, n, std, _cuts(p, False, PSI_BINS), area)
    # Discrete: a point just below the smallest value makes "below it" a bin (as "above the largest" is),
    # so a value training never had lands in a bin of training share 0 (even for a constant column).
    x, p = np.concatenate([[np.nextafter(x[0], -np.inf)], x]), np.concatenate([[0.0], p])
    cuts = _cuts(p, True, PSI_BINS)
    return NumberSketch(x, p, side, True, n, std, cuts, None if area is None else np.concatenate([[0.0], area]))


# ---------------------------------------------------------------------------------------- statistics


def psi(reference: np.ndarray, live: np.ndarray) -> float:
    p, q = np.clip(reference, EPSILON, None), np.clip(live, EPSILON, None)
    return float(np.sum((q - p) * np.log(q / p)))


def bin_shares(p: np.ndarray, cuts: np.ndarray) -> np.ndarray:
    """Shares of the bins (-inf, x[c0]], (x[c0], x[c1]], ..., (x[c_last], inf) from cumulative shares."""
    return np.diff(np.concatenate([[0.0], p[cuts], [1.0]]))


def buckets(x: np.ndarray, values: np.ndarray, side: str, *, sums: bool) -> tuple[np.ndarray, np.ndarray]:
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


def bin_labels(ref: NumberSketch, cuts: np.ndarray) -> tuple[str, ...]:
    if not cuts.size:
        return ("all",)
    x = ref.x
    first = f"< {x[1]:.4g}" if ref.discrete else f"<= {x[cuts[0]]:.4g}"
    middle = [
        f"{x[b]:.4g}" if ref.discrete and b == a + 1 else f"{x[a + 1] if ref.discrete else x[a]:.4g} to {x[b]:.4g}"
        for a, b in pairwise(cuts)
    ]
    return (first, *middle, f"> {x[cuts[-1]]:.4g}")


def numeric_test(ref: NumberSketch, values: np.ndarray, test: str) -> tuple[float, float | None, Histogram]:
    """Statistic, p-value and histogram of finite, present live ``values`` against ``ref``."""
    n, x = values.size, ref.x
    counts, sums = buckets(x, values, ref.side, sums=test == "wasserstein")
    live = np.cumsum(counts)[:-1] / n  # the live share at each point, as the sketch counts (<= x, or < x)
    cuts = ref.cuts_for(psi_bins(n))  # a small window: fewer bins, so its sampling noise stays small
    ref_bins, live_bins = bin_shares(ref.p, cuts), bin_shares(live, cuts)
    hist = Histogram(bin_labels(ref, cuts), tuple(ref_bins.tolist()), tuple(live_bins.tolist()))
    if test == "psi":
        return psi(ref_bins, live_bins), None, hist
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


def categorical_test(labels: list[str], ref_counts: np.ndarray, live_counts: np.ndarray, test: str) -> tuple:
    ref, live = ref_counts / ref_counts.sum(), live_counts / max(live_counts.sum(), 1)
    hist = Histogram((*labels, OTHER), tuple(ref.tolist()), tuple(live.tolist()))
    if test in ("psi", "jensenshannon"):
        # a small window: the largest training buckets and the rest together, so that the statistic's
        # sampling noise (which grows with buckets / rows) stays well under its threshold
        keep = psi_bins(int(live_counts.sum())) - 1
        if ref.size > keep + 1:
            order = np.argsort(-ref[:-1], kind="stable")
            big, rest = order[:keep], np.concatenate([order[keep:], [ref.size - 1]])
            ref, live = np.append(ref[big], ref[rest].sum()), np.append(live[big], live[rest].sum())
        return (psi(ref, live) if test == "psi" else float(jensenshannon(ref, live))), None, hist
    table = np.stack([ref_counts, live_counts])
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2:
        return 0.0, 1.0, hist
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue), hist


# ----------------------------------------------------------------------------------------- live data
