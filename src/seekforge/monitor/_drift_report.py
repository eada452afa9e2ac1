"""A drift report: one result per feature and the verdict over them, as a dict (for ``monitor.json``)
and as HTML (a row per feature with its verdict and a bar chart of training and live shares)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from seekforge.core.report import esc, fmt
from seekforge.monitor._embedding import EmbeddingDrift
from seekforge.monitor._statistics import Histogram


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

    @property
    def status(self) -> str:
        """``drift``, ``no drift`` or ``not enough data``: the verdict every report and the exit code give."""
        return "drift" if self.drift else "no drift" if self.enough_data else "not enough data"

    @property
    def verdict(self) -> str:
        """The verdict in one line, the same in the terminal, ``monitor.json`` and ``monitor.html``."""
        if self.status == "not enough data":
            return f"not enough data: {self.rows:,} rows, fewer than min_rows {self.min_rows:,}"
        return (
            f"{'DRIFT' if self.drift else 'no drift'}: {self.drifted_count} of {len(self.features)} features "
            f"drifted (share {self.drifted_share:.2f}, threshold {self.drift_share:g})"
        )

    def to_html(self) -> str:
        """An HTML section: the verdict, then a table with a training-vs-live chart per feature (inline SVG,
        no scripts, no external files); styles come from the page around it."""
        head = (
            f"<p><b>{esc(self.verdict)}</b>; {self.rows:,} live rows "
            f"against {self.reference_rows:,} training rows. Bars: training (grey) and live (blue, red when "
            "drifted) shares.</p>"
        )
        results = sorted(self.features, key=lambda f: not f.drifted)  # drifted first, stable otherwise
        if self.prediction is not None:
            results.insert(0, self.prediction)
        header = ("feature", "type", "test", "statistic", "p-value", "threshold", "rows", "missing", "drift", "")
        rows = "".join(feature_row(f, f is self.prediction) for f in results)
        table = "<tr>" + "".join(f"<th>{h}</th>" for h in header) + f"</tr>{rows}"
        return f"<section class='seekforge-drift'>{head}<table>{table}</table></section>"


def feature_row(result: FeatureDrift, is_prediction: bool) -> str:
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
    cells += [missing, flag, bars(result.histogram, result.drifted) if result.histogram else ""]
    return "<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>"


def bars(hist: Histogram, drifted: bool, width: int = 180, height: int = 44) -> str:
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
