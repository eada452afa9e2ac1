"""The drift report's HTML: a row per feature with its verdict and a bar chart of training and live shares."""

from __future__ import annotations

from typing import TYPE_CHECKING

from seekforge.core.report import esc, fmt
from seekforge.monitor._statistics import Histogram

if TYPE_CHECKING:
    from seekforge.monitor._drift import FeatureDrift


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


# ------------------------------------------------------------------------------------------- sketches
