"""Reference sketches: a compact summary of the training data, computed once at packaging time, that
drift monitoring compares live inputs against without rereading the training data."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from seekforge.data import Preprocessor
from seekforge.data._images import load_images

QUANTILES = (0.0, 0.01, 0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 1.0)
HIST_BINS = 20
TOP_CATEGORIES = 50


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
        )
    return sketch


def _frequencies(values: pd.Series) -> dict[str, Any]:
    counts = values.dropna().map(str).value_counts()
    top = counts.iloc[:TOP_CATEGORIES]
    return {
        "count": len(values),
        "missing": int(values.isna().sum()),
        "distinct": int(counts.size),
        "frequencies": {str(k): int(v) for k, v in top.items()},
        "other": int(counts.iloc[TOP_CATEGORIES:].sum()),
    }


def build_reference(frame: pd.DataFrame, preprocessor: Preprocessor) -> dict[str, Any]:
    """Per-feature sketches of ``frame`` (the training split): quantiles and histograms for numbers,
    frequencies for categories, token-length sketches for text, pixel-intensity sketches for images,
    and the output's distribution."""
    features: dict[str, Any] = {}
    for feature in preprocessor.features.inputs:
        column = frame[feature.name]
        if feature.type == "numeric":
            sketch = _numeric_sketch(pd.to_numeric(column, errors="coerce").to_numpy(dtype=float))
        elif feature.type in ("category", "binary"):
            sketch = _frequencies(column)
        elif feature.type == "text":
            texts = column.fillna("").astype(str).tolist()
            tokens = preprocessor.text_[feature.name].lengths(texts)
            sketch = {
                "tokens": _numeric_sketch(np.asarray(tokens, dtype=float)),
                "empty": int(sum(not t.strip() for t in texts)),
            }
        else:
            pixels = load_images(column, frame, preprocessor.images_[feature.name])
            sketch = {"mean_intensity": _numeric_sketch(pixels.mean(dim=(1, 2, 3)).numpy().astype(float))}
        features[feature.name] = {"type": feature.type, **sketch}
    output = preprocessor.features.output
    target = frame[output.name]
    out_sketch = (
        _numeric_sketch(pd.to_numeric(target, errors="coerce").to_numpy(dtype=float))
        if output.type == "numeric"
        else _frequencies(target)
    )
    return {"rows": len(frame), "features": features, "output": {"name": output.name, **out_sketch}}
