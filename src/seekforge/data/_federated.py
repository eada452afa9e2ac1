"""A preprocessor fitted across sites without moving their rows (federated training).

Each site summarises its own training rows (:func:`site_statistics`): per number its count, sum and sum
of squared deviations from its own mean (and its extremes, only where a min-max scaler needs them); per
category its value counts; per binary column its values; per image its sizes and per-channel pixel sums
(at the size every site is asked to resize to: :func:`image_sizes`);
per sequence of numbers the same count and sums over its items, per sequence of tokens the tokens' counts,
and its lists' lengths (how many rows, how many cut, the longest); per time the count and sum of its
seconds and the sums of its elapsed days and years; the label's class counts (or a regression target's
sums). Only these sums and counts leave a site (and, for a text input without a pretrained tokenizer, its
most frequent words and the characters it saw: what a fitted vocabulary is made of), and
:func:`merge_statistics` combines them into the preprocessor a central fit would make: means, variances
(pooled as Chan et al. pool them: no sum of squares that loses precision on large values), vocabularies,
classes and image statistics are exact. What differs: a missing number or time is filled with the pooled
mean, where a central fit takes the median (a median does not pool, and each site's would be one of its
rows' values); a fitted text vocabulary is made of the words some site counts among its ``vocab_size``
most frequent (a central fit ranks every word); a sequence declared ``values: auto`` must read the same
(numbers or tokens) at every site that has items. A text input with a pretrained model takes its
tokenizer.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seekforge.core.errors import DataError
from seekforge.data._images import ImageStats, _read
from seekforge.data._preprocess import FORMAT_VERSION, Preprocessor, _fit_binary, _sort_labels, categories_of
from seekforge.data._sequences import (
    list_lengths,
    present_numbers,
    present_seconds,
    read_lists,
    scaled_parts,
    sequence_kind,
    token_counts,
    vocabulary,
)
from seekforge.data._text import TextEncoder
from seekforge.data._validate import check_table
from seekforge.data.config import FeaturesConfig, SequenceFeature
from seekforge.runtime import canonical, fit_pixels, is_missing


def site_statistics(
    frame: pd.DataFrame,
    features: FeaturesConfig,
    *,
    tokenizers: Mapping[str, str | Path] | None = None,
    image_sizes: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, Any]:
    """The sums and counts of one site's training rows that :func:`merge_statistics` pools (JSON values);
    a text input without a pretrained tokenizer (``tokenizers``) sends its most frequent words; an image
    input's pixels are summed at its declared size, else at ``image_sizes``' (the pooled most common size,
    see :func:`image_sizes`), else at the site's own most common size."""
    checked = check_table(frame, features)
    stats: dict[str, Any] = {"rows": len(checked), "inputs": {}}
    for feature in features.inputs:
        column = checked[feature.name]
        if feature.type == "numeric":
            values = column.to_numpy(dtype=np.float64)
            present = values[~np.isnan(values)]
            summary = _moments(present)
            if feature.scaler == "minmax" and present.size:  # (extremes are rows' values: sent only when needed)
                summary |= {"min": float(present.min()), "max": float(present.max())}
            stats["inputs"][feature.name] = summary
        elif feature.type == "binary":
            stats["inputs"][feature.name] = {"values": sorted({canonical(v).lower() for v in column.dropna()})}
        elif feature.type == "category":
            counts = column.dropna().map(canonical).value_counts()
            stats["inputs"][feature.name] = {"counts": {str(k): int(v) for k, v in counts.items()}}
        elif feature.type == "image":
            size = getattr(feature, "size", None) or (image_sizes or {}).get(feature.name)
            stats["inputs"][feature.name] = _image_sums(column, checked, size, getattr(feature, "channels", None))
        elif feature.type == "text" and feature.name not in (tokenizers or {}):
            # the site's most frequent words and every character it saw: what a fitted vocabulary is made of
            counts = TextEncoder.word_counts(column.fillna("").astype(str).tolist(), lowercase=feature.lowercase)
            top = sorted((w for w in counts if len(w) > 1), key=lambda w: (-counts[w], w))[: feature.vocab_size]
            stats["inputs"][feature.name] = {"words": {w: counts[w] for w in top},
                                             "chars": sorted({c for w in counts for c in w})}  # fmt: skip
        elif feature.type == "sequence":
            stats["inputs"][feature.name] = _sequence_sums(column, checked, feature)  # type: ignore[arg-type]
        elif feature.type == "datetime":
            seconds = present_seconds(column, checked, feature.name)
            stats["inputs"][feature.name] = {"seconds": {"n": int(seconds.size), "sum": float(seconds.sum())},
                                             **{part: _moments(values) for part, values in scaled_parts(seconds).items()}}  # fmt: skip
    target = checked[features.output.name]
    if features.task == "classification":
        counts = Counter(v.item() if isinstance(v, np.generic) else v for v in target)
        stats["classes"] = [[label, int(n)] for label, n in counts.items()]
    else:
        stats["target"] = _moments(target.to_numpy(dtype=np.float64))
    return stats


def _moments(values: np.ndarray) -> dict[str, Any]:
    """Count, sum and the sum of squared deviations from the values' own mean: what pools into a mean and
    variance (see :func:`_pooled`)."""
    mean = float(values.mean()) if values.size else 0.0
    return {"n": int(values.size), "sum": float(values.sum()), "m2": float(np.square(values - mean).sum())}


def _pooled(parts: list[dict[str, Any]]) -> tuple[int, float, float]:
    """The count, mean and (population) variance of every site's values together (Chan et al.'s pairwise
    update: each site's squared deviations moved to the pooled mean)."""
    n = sum(p["n"] for p in parts)
    if n == 0:
        return 0, 0.0, 0.0
    mean = sum(p["sum"] for p in parts) / n
    m2 = sum(p["m2"] + p["n"] * (p["sum"] / p["n"] - mean) ** 2 for p in parts if p["n"])
    return n, mean, m2 / n


def _sequence_sums(column: pd.Series, frame: pd.DataFrame, feature: SequenceFeature) -> dict[str, Any]:
    """A site's lists: how long, what kind (none when it has no items), and their numbers' moments or their
    tokens' counts."""
    lists = read_lists(column, frame, feature.name)
    present = any(not is_missing(item) for items in lists for item in items)
    kind = sequence_kind(lists, feature) if present else None  # (a site of missing items only has no say)
    summary: dict[str, Any] = {"kind": kind, **list_lengths(lists, feature)}
    if kind == "numbers":
        summary |= _moments(present_numbers(lists, frame, feature.name))
    elif kind == "tokens":
        summary["counts"] = dict(token_counts(lists))
    return summary


def _image_sums(column: pd.Series, frame: pd.DataFrame, size: Any, channels: int | None) -> dict[str, Any]:
    arrays = [_read(v, frame, i, str(column.name)) for i, v in enumerate(column)]
    sizes = Counter(f"{a.shape[0]}x{a.shape[1]}" for a in arrays)
    mine = tuple(size) if size is not None else tuple(int(s) for s in sizes.most_common(1)[0][0].split("x"))
    colour = channels or (3 if any(a.shape[2] == 3 for a in arrays) else 1)
    stack = np.stack([fit_pixels(a, mine, colour) for a in arrays]).astype(np.float64)  # type: ignore[arg-type]
    return {"sizes": dict(sizes), "at": list(mine), "channels": colour, "pixels": int(stack[:, 0].size),
            "sum": stack.sum(axis=(0, 2, 3)).tolist(), "sumsq": np.square(stack).sum(axis=(0, 2, 3)).tolist()}  # fmt: skip


def image_sizes(features: FeaturesConfig, sites: list[dict[str, Any]]) -> dict[str, list[int]]:
    """The size each image input is fitted at: its declared one, else the most common across the sites'
    images. A site that summed its pixels at another size (its own most common) is asked again at this one."""
    chosen = {}
    for feature in features.inputs:
        if feature.type == "image":
            declared = getattr(feature, "size", None)
            sizes: Counter[str] = Counter()
            for site in sites:
                sizes.update(site["inputs"][feature.name]["sizes"])
            chosen[feature.name] = (
                list(declared) if declared else [int(s) for s in sizes.most_common(1)[0][0].split("x")]
            )
    return chosen


def merge_statistics(
    features: FeaturesConfig, sites: list[dict[str, Any]], *, tokenizer_paths: Mapping[str, str | Path] | None = None
) -> Preprocessor:
    """The preprocessor a central fit on every site's rows would make, from each site's statistics.

    Raises:
        DataError: No site has a value of some input, or the label has a single class across the sites.
    """
    state: dict[str, Any] = {"format_version": FORMAT_VERSION, "features": features.model_dump(mode="json"),
                             "numeric": {}, "binary": {}, "categories": {}, "text": {}, "images": {},
                             "sequences": {}, "datetimes": {}}  # fmt: skip
    sizes = image_sizes(features, sites)
    for feature in features.inputs:
        parts = [site["inputs"][feature.name] for site in sites]
        if feature.type == "numeric":
            state["numeric"][feature.name] = _numeric(feature.name, parts, feature.scaler)
        elif feature.type == "binary":
            state["binary"][feature.name] = _fit_binary(pd.Series(sorted({v for p in parts for v in p["values"]})))
        elif feature.type == "category":
            counts: Counter[str] = Counter()
            for part in parts:
                counts.update(part["counts"])
            state["categories"][feature.name] = categories_of(pd.Series(counts), feature.min_frequency,
                                                              feature.max_categories)  # fmt: skip
        elif feature.type == "image":
            size = sizes[feature.name]
            if any(p["at"] != size for p in parts):
                raise DataError(f"image column '{feature.name}': the sites summed their pixels at different sizes "
                                f"({sorted({'x'.join(map(str, p['at'])) for p in parts})})",
                                hint=f"ask them again at {size[0]}x{size[1]} (site_statistics(image_sizes=...))")  # fmt: skip
            state["images"][feature.name] = _images(parts, size).to_dict()
        elif feature.type == "text":
            path = (tokenizer_paths or {}).get(feature.name)
            if path is not None:
                encoder = TextEncoder.fit([], max_length=feature.max_length, vocab_size=feature.vocab_size,
                                          lowercase=feature.lowercase, pretrained=path)  # fmt: skip
            else:  # the sites' words pooled; a word no site counts among its most frequent is spelt out
                words: Counter[str] = Counter()
                for part in parts:
                    words.update(part["words"])
                encoder = TextEncoder.from_counts(words, max_length=feature.max_length, vocab_size=feature.vocab_size,
                                                  lowercase=feature.lowercase,
                                                  chars={c for p in parts for c in p["chars"]})  # fmt: skip
            state["text"][feature.name] = encoder.to_dict()
        elif feature.type == "sequence":
            state["sequences"][feature.name] = _sequence(feature, parts)  # type: ignore[arg-type]
        elif feature.type == "datetime":
            n = sum(p["seconds"]["n"] for p in parts)
            if n == 0:
                raise DataError(f"datetime column '{feature.name}' has no values at any site")
            spec: dict[str, Any] = {"parts": list(feature.parts), "fill": sum(p["seconds"]["sum"] for p in parts) / n}
            for part in ("elapsed", "year"):
                _, mean, variance = _pooled([p[part] for p in parts])
                spec[part] = {"mean": mean, "std": float(np.sqrt(variance)) or 1.0}
            state["datetimes"][feature.name] = spec
    if features.task == "classification":
        labels = {canonical(label): label for site in sites for label, _ in site["classes"]}
        classes = _sort_labels(list(labels.values()))
        if len(classes) < 2:
            raise DataError(f"the output '{features.output.name}' has a single value across the sites "
                            f"({classes[0]!r}); a classifier needs at least two classes")  # fmt: skip
        state["classes"] = classes
    else:
        _, mean, variance = _pooled([site["target"] for site in sites])
        state["target"] = {"mean": mean, "std": float(np.sqrt(variance)) or 1.0}
    return Preprocessor.from_dict(state)


def _sequence(feature: SequenceFeature, parts: list[dict[str, Any]]) -> dict[str, Any]:
    kinds = sorted({p["kind"] for p in parts if p["kind"] is not None})
    if not kinds:
        raise DataError(f"sequence column '{feature.name}' has no items at any site")
    if len(kinds) > 1:
        raise DataError(f"sequence column '{feature.name}' holds numbers at some sites and tokens at others",
                        hint=f"declare values: tokens (or numbers) for {feature.name}")  # fmt: skip
    spec: dict[str, Any] = {"kind": kinds[0], "max_length": feature.max_length, "keep": feature.keep,
                            "rows": sum(p["rows"] for p in parts), "truncated": sum(p["truncated"] for p in parts),
                            "longest": max(p["longest"] for p in parts)}  # fmt: skip
    if kinds[0] == "numbers":
        n, mean, variance = _pooled([p for p in parts if p["kind"] == "numbers"])
        spec["mean"], spec["std"] = (mean, float(np.sqrt(variance)) or 1.0) if n else (0.0, 1.0)
    else:
        counts: Counter[str] = Counter()
        for part in parts:
            counts.update(part.get("counts", {}))
        spec["vocab"] = vocabulary(counts, feature)
    return spec


def _numeric(name: str, parts: list[dict[str, Any]], scaler: str) -> dict[str, float]:
    n, mean, variance = _pooled(parts)
    if n == 0:
        raise DataError(f"numeric column '{name}' has no values at any site")
    std = float(np.sqrt(variance))
    center, scale = (mean, std) if scaler == "standard" else (0.0, 1.0)
    if scaler == "minmax":
        low, high = min(p["min"] for p in parts if p["n"]), max(p["max"] for p in parts if p["n"])
        center, scale = low, high - low
    return {"fill": mean, "center": center, "scale": scale if scale > 0 else 1.0}


def _images(parts: list[dict[str, Any]], size: list[int]) -> ImageStats:
    chosen = tuple(size)
    channels = max(p["channels"] for p in parts)
    pixels = sum(p["pixels"] for p in parts)
    # a grey site's images go in repeated into each colour channel: its one channel's sums count for each
    total = np.sum([np.resize(p["sum"], channels) for p in parts], axis=0)
    squares = np.sum([np.resize(p["sumsq"], channels) for p in parts], axis=0)
    mean = total / pixels
    std = np.sqrt(np.maximum((squares - pixels * mean**2) / max(pixels - 1, 1), 0.0))  # unbiased, as a fit's
    return ImageStats(chosen, channels, tuple(float(m) for m in mean), tuple(max(float(s), 1e-6) for s in std))  # type: ignore[arg-type]
