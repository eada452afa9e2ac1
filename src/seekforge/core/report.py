"""Self-contained HTML reports: tables and inline SVG charts, no scripts and no external files."""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")
STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1000px;color:#222}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{font-size:1.2rem;margin-top:2rem;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ddd;padding:.25rem .6rem;text-align:right}
th{background:#f5f5f5}td:first-child,th:first-child{text-align:left}.muted{color:#777;font-size:.9rem}
pre{background:#f7f7f7;padding:.8rem;overflow:auto;font-size:.8rem}.charts{display:flex;flex-wrap:wrap;gap:1rem}
svg text{font-size:11px;fill:#333}
"""


def esc(value: Any) -> str:
    return html.escape(str(value))


def fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4g}"
    return esc(value)


def table(rows: Sequence[Sequence[Any]], header: Sequence[str] | None = None) -> str:
    head = "<tr>" + "".join(f"<th>{esc(h)}</th>" for h in header) + "</tr>" if header else ""
    body = "".join("<tr>" + "".join(f"<td>{fmt(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table>{head}{body}</table>"


def page(title: str, subtitle: str, sections: Sequence[tuple[str, str]]) -> str:
    """A whole HTML document from (heading, html body) sections."""
    parts = [f"<h2>{esc(h)}</h2>\n{body}" for h, body in sections]
    return (
        f"<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'><title>{esc(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{esc(title)}</h1><p class='muted'>{esc(subtitle)}</p>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def _frame(width: int, height: int, left: int, top: int, w: int, h: int, title: str) -> list[str]:
    """The opening of a chart: the svg element, its title and the plot area's border."""
    return [
        f"<svg width='{width}' height='{height}' role='img' aria-label='{esc(title)}'>",
        f"<text x='{left}' y='14' font-weight='bold'>{esc(title)}</text>",
        f"<rect x='{left}' y='{top}' width='{w}' height='{h}' fill='none' stroke='#bbb'/>",
    ]


def nice_ticks(low: float, high: float, count: int = 5, *, integers: bool = False) -> list[float]:
    """About ``count`` ticks at round steps (1, 2, 2.5 or 5 times a power of ten; whole steps for
    ``integers``) spanning [low, high]: the first at or below ``low``, the last at or above ``high``, so an
    axis can start and end on them."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return [0.0, 1.0]
    if high <= low:  # a constant: a range around it that survives the float's precision
        pad = max(0.5, abs(low) * 1e-6)
        low, high = low - pad, high + pad
    raw = (high - low) / max(count - 1, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    steps = (1.0, 2.0, 5.0, 10.0) if integers else (1.0, 2.0, 2.5, 5.0, 10.0)
    step = next(m * power for m in steps if m * power >= raw * (1 - 1e-9))
    if integers:
        step = max(step, 1.0)
    first = math.floor(low / step + 1e-9) * step
    ticks = [first]
    while ticks[-1] < high - step * 1e-9:
        ticks.append(first + len(ticks) * step)
    digits = max(0, -math.floor(math.log10(step))) + 3  # 0.9991000000000001 is the tick 0.9991
    return [0.0 if abs(v) < step * 1e-9 else round(v, digits) for v in ticks]


def tick_label(value: float, ticks: Sequence[float]) -> str:
    """``value`` with as many decimals as the ticks' step needs (``0.25``, ``1500``, ``0.99925``)."""
    step = abs(ticks[1] - ticks[0]) if len(ticks) > 1 else abs(value) or 1.0
    decimals = min(15, max(0, -math.floor(math.log10(step) + 1e-9)))
    if round(step * 10**decimals, 6) % 1:  # 2.5 x 10^k needs one more
        decimals += 1
    return f"{value:.{decimals}f}"


def _legend(entries: Sequence[tuple[str, str]], *, left: int, top: int, width: int) -> tuple[list[str], int]:
    """(name, colour) entries in rows under the plot (never over a line); returns the svg parts and the
    height they take."""
    parts, x, row = [], left, 0
    for name, color in entries:
        text = str(name)[:40]
        size = 14 + 7 * len(text)
        if x > left and x + size > left + width:
            x, row = left, row + 1
        y = top + 14 * row
        parts.append(f"<rect x='{x}' y='{y - 8}' width='10' height='3' fill='{color}'/>")
        parts.append(f"<text x='{x + 14}' y='{y - 3}' style='fill:{color}'>{esc(text)}</text>")
        x += size + 12
    return parts, (14 * (row + 1) + 6) if entries else 0


def curves(
    series: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    title: str,
    x_label: str,
    y_label: str = "",
    x_range: tuple[float, float] | None = None,
    y_range: tuple[float, float] | None = None,
    diagonal: tuple[tuple[float, float], tuple[float, float]] | None = None,
    markers: bool = False,
    integer_x: bool = False,
    colors: Mapping[str, str] | None = None,
    legend: Sequence[tuple[str, str]] | None = None,
    width: int = 460,
    height: int = 260,
) -> str:
    """Named (x, y) lines on round-numbered axes, the legend under the plot; ``diagonal`` draws a dashed
    reference line between two points (chance for ROC, perfect calibration). ``colors`` gives series their
    own colours and ``legend`` its own (label, colour) entries, for many lines in a few groups."""
    clean = {
        name: [(float(a), float(b)) for a, b in zip(xs, ys, strict=True) if math.isfinite(a) and math.isfinite(b)]
        for name, (xs, ys) in series.items()
    }
    clean = {name: points for name, points in clean.items() if points}
    if not clean:
        return ""
    every = [p for points in clean.values() for p in points]
    x_ticks = nice_ticks(*(x_range or (min(p[0] for p in every), max(p[0] for p in every))), integers=integer_x)
    y_ticks = nice_ticks(*(y_range or (min(p[1] for p in every), max(p[1] for p in every))))
    lo_x, hi_x, lo_y, hi_y = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]
    left, right, top, bottom = 56, 12, 24, 36
    entries = (
        list(legend) if legend is not None else [(name, PALETTE[k % len(PALETTE)]) for k, name in enumerate(clean)]
    )
    key, legend_height = _legend(entries, left=left, top=height + 15, width=width - left - right)
    height += legend_height
    w, h = width - left - right, height - top - bottom - legend_height

    def px(v: float) -> float:
        return left + (v - lo_x) / (hi_x - lo_x) * w

    def py(v: float) -> float:
        return top + h - (v - lo_y) / (hi_y - lo_y) * h

    out = _frame(width, height, left, top, w, h, title)
    for t in y_ticks:
        out.append(f"<line x1='{left}' x2='{left + w}' y1='{py(t):.1f}' y2='{py(t):.1f}' stroke='#eee'/>")
        out.append(f"<text x='{left - 4}' y='{py(t) + 4:.1f}' text-anchor='end'>{tick_label(t, y_ticks)}</text>")
    for t in x_ticks:
        out.append(f"<text x='{px(t):.1f}' y='{top + h + 14}' text-anchor='middle'>{tick_label(t, x_ticks)}</text>")
    out.append(f"<text x='{left + w / 2}' y='{top + h + 30}' text-anchor='middle'>{esc(x_label)}</text>")
    if y_label:
        out.append(f"<text x='12' y='{top + h / 2}' transform='rotate(-90 12 {top + h / 2})' "
                   f"text-anchor='middle'>{esc(y_label)}</text>")  # fmt: skip
    if diagonal is not None:
        (x1, y1), (x2, y2) = diagonal
        out.append(f"<line x1='{px(x1):.1f}' y1='{py(y1):.1f}' x2='{px(x2):.1f}' y2='{py(y2):.1f}' "
                   "stroke='#999' stroke-dasharray='4'/>")  # fmt: skip
    for k, (name, points) in enumerate(clean.items()):
        color = (colors or {}).get(name, PALETTE[k % len(PALETTE)])
        drawn = " ".join(f"{px(a):.1f},{py(b):.1f}" for a, b in points)
        out.append(f"<polyline fill='none' stroke='{color}' stroke-width='2' points='{drawn}'/>")
        if markers or len(points) == 1:
            out += [f"<circle cx='{px(a):.1f}' cy='{py(b):.1f}' r='3' fill='{color}'/>" for a, b in points]
    out += key
    out.append("</svg>")
    return "".join(out)


def line_chart(
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    x_label: str = "epoch",
    width: int = 460,
    height: int = 260,
) -> str:
    """Lines over x = 1..n, one per named series, on round-numbered axes with the legend under the plot."""
    named = {k: (list(range(1, len(vs) + 1)), [float(v) for v in vs]) for k, vs in series.items() if vs}
    return curves(named, title=title, x_label=x_label, integer_x=True, width=width, height=height)


def heatmap(matrix: Sequence[Sequence[float]], labels: Sequence[Any], *, title: str, cell: int = 34) -> str:
    """A confusion matrix: rows are true classes, columns predicted; cells shaded by row share."""
    n = len(matrix)
    cell = max(14, min(cell, 480 // max(n, 1)))
    left, top = 90, 40
    size = cell * n
    out = [
        f"<svg width='{left + size + 10}' height='{top + size + 40}' role='img' aria-label='{esc(title)}'>",
        f"<text x='0' y='14' font-weight='bold'>{esc(title)}</text>",
        f"<text x='{left + size / 2}' y='{top + size + 32}' text-anchor='middle'>predicted</text>",
    ]
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        out.append(
            f"<text x='{left - 6}' y='{top + i * cell + cell / 2 + 4}' text-anchor='end'>{esc(str(labels[i])[:12])}</text>"
        )
        out.append(
            f"<text x='{left + i * cell + cell / 2}' y='{top + size + 14}' text-anchor='middle'>{esc(str(labels[i])[:6])}</text>"
        )
        for j, value in enumerate(row):
            share = value / total
            shade = int(255 - 200 * share)
            out.append(
                f"<rect x='{left + j * cell}' y='{top + i * cell}' width='{cell}' height='{cell}' "
                f"fill='rgb({shade},{shade},255)' stroke='#fff'/>"
            )
            if cell >= 22:
                color = "#fff" if share > 0.6 else "#222"
                out.append(
                    f"<text x='{left + j * cell + cell / 2}' y='{top + i * cell + cell / 2 + 4}' "
                    f"text-anchor='middle' style='fill:{color}'>{int(value)}</text>"
                )
    out.append("</svg>")
    return "".join(out)


def scatter(
    xs: Sequence[float],
    ys: Sequence[float],
    *,
    title: str,
    x_label: str,
    y_label: str,
    diagonal: bool = False,
    width: int = 460,
    height: int = 300,
) -> str:
    """Points, optionally with the y = x line (predicted vs actual)."""
    if not xs:
        return ""
    lo_x, hi_x = min(xs), max(xs)
    lo_y, hi_y = min(ys), max(ys)
    if diagonal:
        lo_x = lo_y = min(lo_x, lo_y)
        hi_x = hi_y = max(hi_x, hi_y)
    x_ticks, y_ticks = nice_ticks(lo_x, hi_x), nice_ticks(lo_y, hi_y)
    lo_x, hi_x, lo_y, hi_y = x_ticks[0], x_ticks[-1], y_ticks[0], y_ticks[-1]
    left, right, top, bottom = 55, 10, 24, 34
    w, h = width - left - right, height - top - bottom

    def px(v: float) -> float:
        return left + (v - lo_x) / (hi_x - lo_x) * w

    def py(v: float) -> float:
        return top + h - (v - lo_y) / (hi_y - lo_y) * h

    out = [
        *_frame(width, height, left, top, w, h, title),
        f"<text x='{left + w / 2}' y='{height - 4}' text-anchor='middle'>{esc(x_label)}</text>",
        f"<text x='12' y='{top + h / 2}' transform='rotate(-90 12 {top + h / 2})' text-anchor='middle'>{esc(y_label)}</text>",
    ]
    for t in y_ticks:
        out.append(f"<text x='{left - 4}' y='{py(t) + 4:.1f}' text-anchor='end'>{tick_label(t, y_ticks)}</text>")
    for t in x_ticks:
        out.append(f"<text x='{px(t):.1f}' y='{top + h + 14}' text-anchor='middle'>{tick_label(t, x_ticks)}</text>")
    if diagonal:
        out.append(
            f"<line x1='{px(lo_x):.1f}' y1='{py(lo_y):.1f}' x2='{px(hi_x):.1f}' y2='{py(hi_y):.1f}' stroke='#999' stroke-dasharray='4'/>"
        )
    out += [
        f"<circle cx='{px(a):.1f}' cy='{py(b):.1f}' r='2.5' fill='{PALETTE[0]}' fill-opacity='0.6'/>"
        for a, b in zip(xs, ys, strict=True)
    ]
    out.append("</svg>")
    return "".join(out)


def histogram(edges: Sequence[float], counts: Sequence[int], *, title: str, width: int = 300, height: int = 150) -> str:
    """Bars of ``counts`` between consecutive ``edges``, with the range below."""
    if not counts:
        return ""
    left, right, top, bottom = 10, 10, 24, 22
    w, h = width - left - right, height - top - bottom
    peak = max(max(counts), 1)
    bar = w / len(counts)
    out = _frame(width, height, left, top, w, h, title)
    for i, count in enumerate(counts):
        tall = h * count / peak
        out.append(
            f"<rect x='{left + i * bar:.1f}' y='{top + h - tall:.1f}' width='{max(bar - 1, 1):.1f}' "
            f"height='{tall:.1f}' fill='{PALETTE[0]}'><title>{edges[i]:.4g} to {edges[i + 1]:.4g}: {count}</title></rect>"
        )
    out.append(f"<text x='{left}' y='{height - 6}'>{edges[0]:.4g}</text>")
    out.append(f"<text x='{left + w}' y='{height - 6}' text-anchor='end'>{edges[-1]:.4g}</text>")
    out.append("</svg>")
    return "".join(out)


def axis_positions(values: Sequence[Any]) -> tuple[list[float], list[tuple[float, str]]]:
    """Where each value sits on a parallel-coordinates axis (0..1) and the axis's labels: numbers spread over
    their range (log-spaced when positive and spanning more than two decades), anything else a category,
    spaced evenly in sorted order."""
    numbers = [v for v in values if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)]
    if values and len(numbers) == len(values):
        low, high = min(numbers), max(numbers)
        log = low > 0 and high / low > 100
        f = (lambda v: math.log10(v)) if log else (lambda v: float(v))
        span = (f(high) - f(low)) or 1.0
        return [(f(v) - f(low)) / span for v in numbers], [(0.0, f"{low:.3g}"), (1.0, f"{high:.3g}")]
    kinds = sorted({str(v) for v in values})
    step = 1 / max(len(kinds) - 1, 1)
    where = {kind: i * step if len(kinds) > 1 else 0.5 for i, kind in enumerate(kinds)}
    return [where[str(v)] for v in values], [(where[k], k[:14]) for k in kinds]


def parallel_coordinates(
    axes: Sequence[tuple[str, Sequence[Any]]],
    scores: Sequence[float],
    *,
    title: str,
    better: str = "higher",
    width: int = 760,
    height: int = 300,
) -> str:
    """One vertical axis per (name, values), one line per row across them, darker for a better score (the
    best drawn last, on top). Numbers spread over their range (log-spaced when positive and spanning more
    than two decades); anything else is a category, spaced evenly in sorted order."""
    rows = len(scores)
    if rows == 0 or not axes:
        return ""
    left, right, top, bottom = 40, 40, 40, 30
    w, h = width - left - right, height - top - bottom
    gap = w / max(len(axes) - 1, 1)
    placed = [axis_positions(values) for _, values in axes]
    positions = [p for p, _ in placed]  # per axis, each row's height 0..1
    labels = [tick for _, tick in placed]
    finite = [s for s in scores if math.isfinite(s)]
    lo, hi = (min(finite), max(finite)) if finite else (0.0, 1.0)
    sign = 1.0 if better == "higher" else -1.0

    def goodness(s: float) -> float:
        if not math.isfinite(s) or hi == lo:
            return 0.5
        return ((s - lo) / (hi - lo)) if sign > 0 else ((hi - s) / (hi - lo))

    out = [f"<svg width='{width}' height='{height}' role='img' aria-label='{esc(title)}'>",
           f"<text x='{left}' y='14' font-weight='bold'>{esc(title)}</text>"]  # fmt: skip
    for i, row in sorted(enumerate(scores), key=lambda item: goodness(item[1])):
        g = goodness(row)
        shade = (int(200 - 170 * g), int(210 - 130 * g), int(230 - 40 * g))
        points = " ".join(f"{left + a * gap:.1f},{top + h - positions[a][i] * h:.1f}" for a in range(len(axes)))
        out.append(f"<polyline fill='none' stroke='rgb{shade}' stroke-width='{1 + 1.5 * g:.1f}' points='{points}'/>")
    for a, (name, _) in enumerate(axes):
        x = left + a * gap
        out.append(f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{top}' y2='{top + h}' stroke='#555'/>")
        out.append(f"<text x='{x:.1f}' y='{top - 8}' text-anchor='middle'>{esc(name)}</text>")
        for at, text in labels[a]:
            out.append(f"<text x='{x + 3:.1f}' y='{top + h - at * h + 4:.1f}'>{esc(text)}</text>")
    out.append(f"<text x='{left}' y='{height - 6}' class='muted'>darker: better ({better} is better)</text>")
    out.append("</svg>")
    return "".join(out)


def correlation_heatmap(matrix: Sequence[Sequence[float | None]], labels: Sequence[str], *, title: str) -> str:
    """A correlation matrix: red for positive, blue for negative, white at 0; values in cells large enough."""
    n = len(matrix)
    if n == 0:
        return ""
    cell = max(12, min(30, 600 // n))
    left, top = 150, 30
    size = cell * n
    out = [f"<svg width='{left + size + 90}' height='{top + size + 120}' role='img' aria-label='{esc(title)}'>",
           f"<text x='0' y='14' font-weight='bold'>{esc(title)}</text>"]  # fmt: skip
    for i, row in enumerate(matrix):
        out.append(f"<text x='{left - 6}' y='{top + i * cell + cell / 2 + 4}' text-anchor='end'>"
                   f"{esc(str(labels[i])[:22])}</text>")  # fmt: skip
        x = left + i * cell + cell / 2
        out.append(f"<text x='{x}' y='{top + size + 8}' transform='rotate(60 {x} {top + size + 8})'>"
                   f"{esc(str(labels[i])[:18])}</text>")  # fmt: skip
        for j, value in enumerate(row):
            if value is None:
                fill, text = "#eee", "–"
            else:
                strength = int(255 - 200 * min(abs(value), 1.0))
                fill = f"rgb(255,{strength},{strength})" if value >= 0 else f"rgb({strength},{strength},255)"
                text = f"{value:.2f}"
            out.append(f"<rect x='{left + j * cell}' y='{top + i * cell}' width='{cell}' height='{cell}' "
                       f"fill='{fill}' stroke='#fff'><title>{esc(labels[i])} / {esc(labels[j])}: {text}</title></rect>")  # fmt: skip
            if cell >= 28:
                out.append(f"<text x='{left + j * cell + cell / 2}' y='{top + i * cell + cell / 2 + 4}' "
                           f"text-anchor='middle' style='font-size:9px'>{text}</text>")  # fmt: skip
    out.append("</svg>")
    return "".join(out)


def _signed_axis(
    values: Sequence[float], left: int, top: int, width: int, height: int, label: str
) -> tuple[Callable[[float], float], list[str]]:
    """The function placing a value on a horizontal axis of round ticks spanning ``values`` and zero, and
    the axis drawn: grid lines, tick labels and ``label`` under the plot."""
    ticks = nice_ticks(min(0.0, *values), max(0.0, *values))
    lo, hi = ticks[0], ticks[-1]
    span = (hi - lo) or 1.0

    def px(v: float) -> float:
        return left + (v - lo) / span * width

    out = []
    for t in ticks:
        out.append(f"<line x1='{px(t):.1f}' x2='{px(t):.1f}' y1='{top}' y2='{top + height}' stroke='#eee'/>")
        out.append(f"<text x='{px(t):.1f}' y='{top + height + 14}' text-anchor='middle'>{tick_label(t, ticks)}</text>")
    out.append(f"<text x='{left + width / 2}' y='{top + height + 30}' text-anchor='middle'>{esc(label)}</text>")
    return px, out


def bar_chart(labels: Sequence[str], values: Sequence[float], *, title: str, x_label: str, width: int = 560) -> str:
    """Horizontal bars, one per label, in the order given (negative values to the left of zero)."""
    if not labels:
        return ""
    left, top, row = 190, 24, 18
    w, h = width - left - 16, row * len(labels)
    px, axis = _signed_axis(values, left, top, w, h, x_label)
    out = _frame(width, top + h + 40, left, top, w, h, title) + axis
    for k, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = top + k * row
        x0, x1 = sorted((px(0.0), px(value)))
        color = PALETTE[0] if value >= 0 else PALETTE[3]
        out.append(f"<text x='{left - 6}' y='{y + 13}' text-anchor='end'>{esc(str(label)[:30])}</text>")
        out.append(
            f"<rect x='{x0:.1f}' y='{y + 3}' width='{max(x1 - x0, 0.5):.1f}' height='{row - 6}' fill='{color}'/>"
        )
    out.append("</svg>")
    return "".join(out)


def beeswarm(
    labels: Sequence[str],
    values: Sequence[Sequence[float]],
    shades: Sequence[Sequence[float]],
    *,
    title: str,
    x_label: str,
    width: int = 560,
) -> str:
    """One row of dots per label (``values[label]``: one dot per sample, placed by value, jittered
    vertically where dots crowd), coloured from blue (low) to red (high) by ``shades`` in [0, 1] (NaN:
    grey)."""
    if not labels:
        return ""
    left, top, row = 190, 24, 22
    w, h = width - left - 16, row * len(labels)
    every = [float(v) for vs in values for v in vs]
    px, axis = _signed_axis(every, left, top, w, h, x_label)
    out = _frame(width, top + h + 56, left, top, w, h, title) + axis
    for k, label in enumerate(labels):
        middle = top + k * row + row / 2
        out.append(f"<text x='{left - 6}' y='{middle + 4}' text-anchor='end'>{esc(str(label)[:30])}</text>")
        crowd: dict[int, int] = {}
        for value, shade in zip(values[k], shades[k], strict=True):
            x = px(float(value))
            slot = crowd.get(int(x // 3), 0)
            crowd[int(x // 3)] = slot + 1
            offset = ((slot + 1) // 2) * (1 if slot % 2 else -1) * 2.0
            offset = max(-row / 2 + 2, min(row / 2 - 2, offset))
            color = "#999" if not math.isfinite(shade) else _blue_red(shade)
            out.append(f"<circle cx='{x:.1f}' cy='{middle + offset:.1f}' r='2.2' fill='{color}' fill-opacity='.8'/>")
    legend_y = top + h + 46
    out.append(f"<text x='{left}' y='{legend_y}' style='fill:{_blue_red(0)}'>● low feature value</text>")
    out.append(f"<text x='{left + 130}' y='{legend_y}' style='fill:{_blue_red(1)}'>● high feature value</text>")
    out.append("</svg>")
    return "".join(out)


def _blue_red(shade: float) -> str:
    shade = min(max(shade, 0.0), 1.0)
    return f"rgb({int(30 + 200 * shade)},{int(100 - 40 * abs(shade - 0.5))},{int(230 - 200 * shade)})"


def waterfall(
    start: float, steps: Sequence[tuple[str, float]], *, title: str, start_label: str, end_label: str, width: int = 620
) -> str:
    """A waterfall: from ``start``, each (label, change) bar moves the running total, to the end value."""
    left, top, row = 230, 24, 18
    totals = [start]
    for _, change in steps:
        totals.append(totals[-1] + change)
    h = row * (len(steps) + 2)
    w = width - left - 70  # room for the last bar's label
    ticks = nice_ticks(min(totals), max(totals))
    lo, hi = ticks[0], ticks[-1]

    def px(v: float) -> float:
        return left + (v - lo) / ((hi - lo) or 1.0) * w

    out = _frame(width, top + h + 24, left, top, w, h, title)
    for t in ticks:
        out.append(f"<line x1='{px(t):.1f}' x2='{px(t):.1f}' y1='{top}' y2='{top + h}' stroke='#eee'/>")
        out.append(f"<text x='{px(t):.1f}' y='{top + h + 14}' text-anchor='middle'>{tick_label(t, ticks)}</text>")
    rows = [(start_label, None, start), *[(label, change, totals[k + 1]) for k, (label, change) in enumerate(steps)]]
    rows.append((end_label, None, totals[-1]))
    for k, (label, change, total) in enumerate(rows):
        y = top + k * row
        out.append(f"<text x='{left - 6}' y='{y + 13}' text-anchor='end'>{esc(str(label)[:36])}</text>")
        if change is None:
            out.append(f"<line x1='{px(total):.1f}' x2='{px(total):.1f}' y1='{y + 2}' y2='{y + row - 2}' "
                       f"stroke='#222' stroke-width='2'/><text x='{px(total) + 4:.1f}' y='{y + 13}'>{fmt(total)}</text>")  # fmt: skip
            continue
        x0, x1 = sorted((px(total - change), px(total)))
        color = PALETTE[3] if change >= 0 else PALETTE[0]
        out.append(
            f"<rect x='{x0:.1f}' y='{y + 3}' width='{max(x1 - x0, 0.5):.1f}' height='{row - 6}' fill='{color}'/>"
        )
        out.append(f"<text x='{x1 + 4:.1f}' y='{y + 13}'>{'+' if change >= 0 else ''}{fmt(float(change))}</text>")
    out.append("</svg>")
    return "".join(out)
