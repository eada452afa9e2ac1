"""Reference sketches: a compact summary of the training data, computed once at packaging time, that
drift monitoring compares live inputs against without rereading the training data.

Layout of ``reference.json`` (``version`` 2; sketches written before it have no ``version`` key and lack
the keys marked *v2*, which :func:`seekforge.monitor.drift_report` copes with)::

    {"version": 2, "rows": N,
     "features": {NAME: {"type": "numeric", <numeric sketch>}
                        | {"type": "category" | "binary", <frequencies>}
                        | {"type": "text", "tokens": <numeric sketch>, "words": <numeric sketch> (v2),
                           "empty": int, "embedding": <the model's embeddings> (text models' packages)}
                        | {"type": "image", "mean_intensity": <numeric sketch>, "image": <ImageStats> (v2)}
                        | {"type": "datetime", <numeric sketch of the hour of the week, 0 to 168>}
                        | {"type": "sequence", "kind": "numbers" | "tokens", "items": <numeric sketch of the
                           items' values, or their frequencies>, "lengths": <numeric sketch>}},
     "output": {"name": ..., "type": ... (v2), <numeric sketch or frequencies>}}

    numeric sketch: count, missing, mean, std, quantiles {"0.0": .., "0.5": .., "1.0": ..},
                    bin_edges / bin_counts (20 quantile bins, np.histogram semantics),
                    cdf (v2): {"x": sorted points, "p": share of values <= each point,
                               "area": integral of that CDF between consecutive points, "discrete": bool}
    frequencies:    count, missing, distinct, frequencies {value: count} (top 50), other (the rest's count)
    embeddings:     see :mod:`seekforge.monitor._embedding`; added when the package is written, from the
                    trained model (the rest is computed before training, from the data alone)
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from seekforge.runtime import canonical, hours_of_week, read_sequence

if TYPE_CHECKING:  # these need torch, which reading a sketch does not
    import torch
    from torch import nn

    from seekforge.data import Preprocessor, TextEncoder

VERSION = 2
QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
HIST_BINS = 20
TOP_CATEGORIES = 50
#: Points of the cumulative sketch: every distinct value when there are at most this many, else the percentiles.
CDF_POINTS = 100


def _cdf(present: np.ndarray) -> dict[str, Any]:
    """The empirical CDF ``F`` at up to 101 points, exact at each: every distinct value of a column with at
    most ``CDF_POINTS`` of them (``discrete``), else its percentiles 0, 1, ..., 100; and ``area``, the exact
    integral of ``F`` between consecutive points (for the Wasserstein distance)."""
    ordered = np.sort(present)
    distinct = int(np.count_nonzero(np.diff(ordered))) + 1
    discrete = distinct <= CDF_POINTS
    points = np.unique(ordered) if discrete else np.unique(np.quantile(ordered, np.linspace(0, 1, CDF_POINTS + 1)))
    at_most = np.searchsorted(ordered, points, side="right")
    # integral of F over [x_j, x_j+1] = F(x_j) * width + sum over values v in (x_j, x_j+1] of (x_j+1 - v) / n,
    # with values taken from the smallest, so large offsets cost no precision
    totals = np.concatenate([[0.0], np.cumsum(ordered - points[0])])[at_most]
    inside = np.diff(at_most) * (points[1:] - points[0]) - np.diff(totals)
    area = (at_most[:-1] * np.diff(points) + inside) / ordered.size
    return {"x": points.tolist(), "p": (at_most / ordered.size).tolist(), "area": area.tolist(), "discrete": discrete}


def _numeric_sketch(values: np.ndarray) -> dict[str, Any]:
    present = values[~np.isnan(values)]
    sketch: dict[str, Any] = {"count": int(values.size), "missing": int(values.size - present.size)}
    if present.size:
        edges = np.unique(np.quantile(present, np.linspace(0, 1, HIST_BINS + 1)))
        counts = np.histogram(present, bins=edges)[0] if edges.size > 1 else np.array([present.size])
        sketch.update(
            mean=float(present.mean()),
            std=float(present.std()),
            quantiles=dict(zip(map(str, QUANTILES), np.quantile(present, QUANTILES).tolist(), strict=True)),
            bin_edges=edges.tolist(),
            bin_counts=counts.tolist(),
            cdf=_cdf(present),
        )
    return sketch


def _frequencies(values: pd.Series) -> dict[str, Any]:
    # canonical strings, as the Preprocessor's vocabularies: 3, 3.0 and "3" are one category
    counts = values.dropna().map(canonical).value_counts()
    top = counts.iloc[:TOP_CATEGORIES]
    return {
        "count": len(values),
        "missing": int(values.isna().sum()),
        "distinct": int(counts.size),
        "frequencies": {str(k): int(v) for k, v in top.items()},
        "other": int(counts.iloc[TOP_CATEGORIES:].sum()),
    }


def word_counts(texts: list[str]) -> np.ndarray:
    """Whitespace-separated words per text: a text length that needs no tokenizer."""
    return np.fromiter((len(t.split()) for t in texts), dtype=float, count=len(texts))


def sequence_lists(column: pd.Series, name: str) -> list[list[Any]]:
    """Each cell of a sequence column as its list (a cell that is no list is refused)."""
    return [read_sequence(value, f"row {pos}", name) for pos, value in enumerate(column)]


def sequence_items(lists: list[list[Any]]) -> pd.Series:
    """Every item of every list, in order."""
    return pd.Series([item for items in lists for item in items], dtype=object)


def token_counts(encoder: TextEncoder, texts: list[str]) -> np.ndarray:
    """Tokens per text with the encoder's tokenizer, special tokens included, before truncation and padding."""
    return np.asarray(encoder.lengths(texts), dtype=float)


def build_reference(frame: pd.DataFrame, preprocessor: Preprocessor) -> dict[str, Any]:
    """Per-feature sketches of ``frame`` (the training split): quantiles, histograms and a cumulative
    sketch for numbers, frequencies for categories, token- and word-count sketches and the count of empty
    texts for text, mean-intensity sketches for images, and the output's distribution (see the module's
    docstring)."""
    from seekforge.data import load_images

    features: dict[str, Any] = {}
    for feature in preprocessor.features.inputs:
        column = frame[feature.name]
        if feature.type == "numeric":
            sketch = _numeric_sketch(pd.to_numeric(column, errors="coerce").to_numpy(dtype=float))
        elif feature.type in ("category", "binary"):
            sketch = _frequencies(column)
        elif feature.type == "text":
            texts = column.fillna("").astype(str).tolist()
            sketch = {
                "tokens": _numeric_sketch(token_counts(preprocessor.text_[feature.name], texts)),
                "words": _numeric_sketch(word_counts(texts)),
                "empty": int(sum(not t.strip() for t in texts)),
            }
        elif feature.type == "datetime":  # when in the week, not since when: live times always come later
            sketch = _numeric_sketch(hours_of_week(list(column), feature.name))
        elif feature.type == "sequence":
            spec = preprocessor.sequences_[feature.name]
            lists = sequence_lists(column, feature.name)
            items = sequence_items(lists)
            lengths = [len(values) for values in lists]
            numbers = pd.to_numeric(items, errors="coerce").to_numpy(dtype=float)
            sketch = {
                "kind": spec["kind"],
                "items": _numeric_sketch(numbers) if spec["kind"] == "numbers" else _frequencies(items),
                "lengths": _numeric_sketch(np.asarray(lengths, dtype=float)),
            }
        else:
            stats = preprocessor.images_[feature.name]
            pixels = load_images(column, frame, stats)
            sketch = {
                "mean_intensity": _numeric_sketch(pixels.mean(dim=(1, 2, 3)).numpy().astype(float)),
                "image": stats.to_dict(),
            }
        features[feature.name] = {"type": feature.type, **sketch}
    output = preprocessor.features.output
    target = frame[output.name]
    out_sketch = (
        _numeric_sketch(pd.to_numeric(target, errors="coerce").to_numpy(dtype=float))
        if output.type == "numeric"
        else _frequencies(target)
    )
    return {
        "version": VERSION,
        "rows": len(frame),
        "features": features,
        "output": {"name": output.name, "type": output.type, **out_sketch},
    }


def with_embeddings(
    reference: dict[str, Any], model: nn.Module, inputs: dict[str, torch.Tensor], seed: int
) -> dict[str, Any]:
    """``reference`` with the embedding sketch of its text feature, made by the trained ``model`` from the
    encoded training rows ``inputs``; unchanged for models without a single text input or an ``embed_text``."""
    from seekforge.core.progress import console
    from seekforge.monitor._embedding import SAMPLE_ROWS, embedding_sketch

    texts = [name for name, sketch in reference["features"].items() if sketch["type"] == "text"]
    if len(texts) != 1 or not callable(getattr(model, "embed_text", None)):
        return reference
    with console.status(f"embedding up to {SAMPLE_ROWS:,} training texts for drift monitoring"):
        sketch = embedding_sketch(model, inputs, seed)
    features = {**reference["features"], texts[0]: {**reference["features"][texts[0]], "embedding": sketch}}
    return {**reference, "features": features}
