"""Self-contained HTML reports: tables and inline SVG charts, no scripts and no external files."""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
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


def _ticks(low: float, high: float, count: int = 5) -> list[float]:
    if high <= low:
        return [low]
    return [low + (high - low) * i / (count - 1) for i in range(count)]


def line_chart(
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    x_label: str = "epoch",
    width: int = 460,
    height: int = 260,
) -> str:
    """Lines over x = 1..n, one per named series, with axes and a legend."""
    clean = {k: [float(v) for v in vs] for k, vs in series.items() if vs}
    if not clean:
        return ""
    values = [v for vs in clean.values() for v in vs if math.isfinite(v)]
    low, high = (min(values), max(values)) if values else (0.0, 1.0)
    if high == low:
        low, high = low - 0.5, high + 0.5
    n = max(len(vs) for vs in clean.values())
    left, right, top, bottom = 50, 10, 24, 34
    w, h = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + (w * i / (n - 1) if n > 1 else w / 2)

    def y(v: float) -> float:
        return top + h - (v - low) / (high - low) * h

    out = _frame(width, height, left, top, w, h, title)
    for t in _ticks(low, high):
        out.append(f"<text x='{left - 4}' y='{y(t) + 4:.1f}' text-anchor='end'>{t:.3g}</text>")
    for i in sorted({0, n - 1, (n - 1) // 2}):
        out.append(f"<text x='{x(i):.1f}' y='{top + h + 14}' text-anchor='middle'>{i + 1}</text>")
    out.append(f"<text x='{left + w / 2}' y='{height - 4}' text-anchor='middle'>{esc(x_label)}</text>")
    for k, (name, vs) in enumerate(clean.items()):
        color = PALETTE[k % len(PALETTE)]
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(vs) if math.isfinite(v))
        out.append(f"<polyline fill='none' stroke='{color}' stroke-width='2' points='{points}'/>")
        out.append(
            f"<text x='{left + w - 4}' y='{top + 14 + 14 * k}' text-anchor='end' style='fill:{color}'>{esc(name)}</text>"
        )
    out.append("</svg>")
    return "".join(out)


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
    hi_x, hi_y = (hi_x if hi_x > lo_x else lo_x + 1), (hi_y if hi_y > lo_y else lo_y + 1)
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
    for t in _ticks(lo_y, hi_y):
        out.append(f"<text x='{left - 4}' y='{py(t) + 4:.1f}' text-anchor='end'>{t:.3g}</text>")
    for t in _ticks(lo_x, hi_x, 3):
        out.append(f"<text x='{px(t):.1f}' y='{top + h + 14}' text-anchor='middle'>{t:.3g}</text>")
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
