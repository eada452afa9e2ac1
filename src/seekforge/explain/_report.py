"""The explanation's HTML report: what was explained and how well, then per kind of input the global
importance, beeswarm and waterfalls (tables), highlighted tokens and attention maps (text), saliency
overlays and feature maps (images)."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING, Any

import numpy as np

from seekforge.core.report import bar_chart, beeswarm, curves, esc, fmt, page, table, waterfall

if TYPE_CHECKING:
    from seekforge.explain._explain import Explanation

#: Features in the importance chart and the beeswarm; rows given a waterfall; texts highlighted.
TOP_FEATURES, WATERFALLS, TEXTS = 20, 3, 30


def render(found: Explanation) -> str:
    sections = [("Summary", _summary(found))]
    if found.faithfulness:
        sections.append(("Faithfulness (deletion test)", _faithfulness(found)))
    if found.kind in ("tabular", "inputs"):
        sections += _tabular(found)
    elif found.kind == "text":
        sections += _text(found)
    else:
        sections += _image(found)
    subtitle = f"{found.package} · {found.method} · {len(found.rows)} rows · {found.seconds:.1f} s"
    return page("Explanation", subtitle, sections)


def _summary(found: Explanation) -> str:
    check = found.completeness
    verdict = "not applicable" if check["passed"] is None else ("passed" if check["passed"] else "FAILED")
    rows = [
        ["kind of input", found.kind],
        ["method", found.method],
        ["explained output", found.output],
        ["rows", len(found.rows)],
        ["completeness", f"{verdict} (largest gap {fmt(check['max_error'])})"],
        ["completeness rule", check["note"]],
        ["seed", found.seed],
    ]
    if found.faithfulness:
        rows.append(["deletion area ratio (attribution / random)", found.faithfulness["area_ratio"]])
    return table(rows)


def _faithfulness(found: Explanation) -> str:
    curve = found.faithfulness
    chart = curves(
        {
            "by attribution": (curve["fractions"], curve["by_attribution"]),
            "random": (curve["fractions"], curve["random"]),
        },
        title="mean drop of the explained output",
        x_label="share of each row's inputs removed",
        markers=True,
    )
    return (
        f"<p>Removing each row's inputs ({curve['removed']}) with the largest attributions first should lower "
        f"the explained output "
        f"faster than removing random ones. Area ratio: <b>{fmt(curve['area_ratio'])}</b> (above 1: the "
        f"attributions point at what the model uses).</p>{chart}"
    )


def _tabular(found: Explanation) -> list[tuple[str, str]]:
    values = np.asarray(found.attributions)
    features = found.features or []
    ranked = found.importance()[:TOP_FEATURES]
    order = [features.index(name) for name, _ in ranked]
    importance = bar_chart([n for n, _ in ranked], [v for _, v in ranked], title="mean |attribution|",
                           x_label=f"mean |effect| on the {found.output}")  # fmt: skip
    encoded = np.asarray(found.extras["encoded"], dtype=np.float64)
    shades = []
    for column in order:
        col = encoded[:, column]
        lo, hi = np.nanmin(col), np.nanmax(col)
        spread = hi > lo and found.kind == "tabular"  # an input of a fusion model (a text, an image) has no scale
        shades.append(((col - lo) / (hi - lo)).tolist() if spread else [0.5] * len(col))
    swarm = beeswarm([features[c] for c in order], [values[:, c].tolist() for c in order], shades,
                     title="attribution of every row", x_label=f"effect on the {found.output}")  # fmt: skip
    raw = found.extras["raw"]
    falls = []
    for row in range(min(WATERFALLS, len(values))):
        top = np.argsort(-np.abs(values[row]))[:10]
        rest = float(values[row].sum() - values[row][top].sum())
        steps = [(f"{features[c]} = {_short(raw.iloc[row][features[c]])}", float(values[row][c])) for c in top]
        if len(features) > len(top):
            steps.append((f"{len(features) - len(top)} other features", rest))
        title = f"row {found.rows[row]}: predicted {_short(found.predictions[row])}"
        falls.append(waterfall(found.base[row], steps, title=title, start_label="base", end_label="explained output"))
    return [
        ("Global importance", f"<div class='charts'>{importance}</div>"),
        ("Summary plot", swarm),
        ("Single predictions", "<div class='charts'>" + "".join(falls) + "</div>"),
    ]


def _short(value: Any) -> str:
    return fmt(value) if isinstance(value, float) else esc(str(value)[:24])


def _text(found: Explanation) -> list[tuple[str, str]]:
    blocks = []
    for row in range(min(TEXTS, len(found.rows))):
        tokens, values = found.tokens[row], found.attributions[row]  # type: ignore[index]
        top = max((abs(v) for v in values), default=0.0) or 1.0
        spans = "".join(
            f"<span title='{v:+.4f}' style='background:{_tint(v / top)};padding:1px 2px;margin:1px;"
            f"border-radius:3px'>{esc(t)}</span>"
            for t, v in zip(tokens, values, strict=True)
        )
        blocks.append(
            f"<p><b>row {found.rows[row]}</b> · predicted {esc(found.predictions[row])} "
            f"({fmt(found.values[row])})<br>{spans}</p>"
        )
    legend = "<p class='muted'>Red: the token raises the explained output; blue: it lowers it.</p>"
    sections = [("Token attributions", legend + "".join(blocks))]
    for row, layers in enumerate(found.extras.get("attention", [])):
        tokens = found.tokens[row]  # type: ignore[index]
        grid = []
        for layer, heads in enumerate(layers):
            cells = "".join(
                f"<figure style='margin:2px'><img src='{_png(_heat(head), scale=max(2, 160 // len(tokens)))}' "
                f"alt='layer {layer + 1} head {h + 1}'><figcaption class='muted'>L{layer + 1} H{h + 1}</figcaption></figure>"
                for h, head in enumerate(heads)
            )
            grid.append(f"<div class='charts'>{cells}</div>")
        words = " ".join(esc(t) for t in tokens)
        sections.append(
            (f"Attention, row {found.rows[row]}",
             f"<p class='muted'>Rows: the attending token, columns: the attended one, in order: {words}</p>" + "".join(grid))
        )  # fmt: skip
    return sections


def _tint(share: float) -> str:
    share = max(-1.0, min(1.0, share))
    alpha = abs(share) * 0.8
    return f"rgba(214,39,40,{alpha:.2f})" if share >= 0 else f"rgba(31,119,180,{alpha:.2f})"


def _image(found: Explanation) -> list[tuple[str, str]]:
    images = found.extras["images"]
    values = np.asarray(found.attributions)
    figures = []
    for row in range(len(images)):
        picture = _display(images[row])
        saliency = values[row]
        top = np.abs(saliency).max() or 1.0
        overlay = _overlay(picture, saliency / top)
        scale = max(1, 160 // max(picture.shape[:2]))
        figures.append(
            f"<figure><img src='{_png(picture, scale=scale)}' alt='input'><img src='{_png(overlay, scale=scale)}' "
            f"alt='attribution'><figcaption>row {found.rows[row]}: predicted {esc(found.predictions[row])} "
            f"({fmt(found.values[row])})</figcaption></figure>"
        )
    sections = [("Saliency", "<p class='muted'>Left: the input; right: red pixels raise the explained output, blue "
                 "lower it.</p><div class='charts'>" + "".join(figures) + "</div>")]  # fmt: skip
    maps = found.extras.get("feature_maps") or []
    if maps and maps[0]:
        blocks = []
        for k, block in enumerate(maps[0]):
            scale = max(1, 64 // max(block.shape[1:]))
            cells = "".join(f"<img src='{_png(_heat(channel), scale=scale)}' alt='channel'>" for channel in block)
            blocks.append(f"<p>block {k + 1} ({block.shape[1]}×{block.shape[2]})</p><div class='charts'>{cells}</div>")
        sections.append((f"Feature maps, row {found.rows[0]}", "".join(blocks)))
    return sections


def _display(image: np.ndarray) -> np.ndarray:
    """A normalised ``[channels, h, w]`` input as ``[h, w, 3]`` uint8, stretched to its own range."""
    picture = image.transpose(1, 2, 0)
    lo, hi = picture.min(), picture.max()
    picture = (picture - lo) / ((hi - lo) or 1.0)
    if picture.shape[2] == 1:
        picture = np.repeat(picture, 3, axis=2)
    return (picture[:, :, :3] * 255).astype(np.uint8)


def _overlay(picture: np.ndarray, share: np.ndarray) -> np.ndarray:
    gray = picture.mean(axis=2, keepdims=True) * 0.5
    red = np.clip(share, 0, 1)[..., None] * np.array([230.0, 40.0, 40.0])
    blue = np.clip(-share, 0, 1)[..., None] * np.array([40.0, 90.0, 230.0])
    alpha = np.abs(share)[..., None]
    return np.clip(gray * (1 - alpha) + (red + blue), 0, 255).astype(np.uint8)


def _heat(matrix: np.ndarray) -> np.ndarray:
    """A 2-D array as a white-to-dark-blue picture, stretched to its own range."""
    lo, hi = float(matrix.min()), float(matrix.max())
    share = (matrix - lo) / ((hi - lo) or 1.0)
    return np.stack([255 - 200 * share, 255 - 150 * share, 255 - 60 * share], axis=-1).astype(np.uint8)


def _png(picture: np.ndarray, *, scale: int = 1) -> str:
    """A data URI of ``picture`` (``[h, w, 3]`` uint8) as PNG, each pixel ``scale`` pixels wide."""
    from PIL import Image

    image = Image.fromarray(picture)
    if scale > 1:
        image = image.resize((picture.shape[1] * scale, picture.shape[0] * scale), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
