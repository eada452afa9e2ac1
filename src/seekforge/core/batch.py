"""The keys of a batch: what the preprocessing (torch's and the runtime's) names each input's tensors,
and what a model and its ONNX graph read them by."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

Batch = TypeVar("Batch", bound=Mapping[str, Any])

#: Keys of the token tensors ``[rows, tokens]`` (a sequence input's items too), whose second axis varies
#: from batch to batch.
TOKEN_KEYS = ("input_ids", "attention_mask", "hidden", "sequence", "sequence_mask")


def text_keys(name: str | None) -> tuple[str, str]:
    """Batch keys of a text input's token ids and attention mask: ``input_ids`` and ``attention_mask`` for a
    model's only text input (``name`` None), ``input_ids.NAME`` and ``attention_mask.NAME`` otherwise."""
    return ("input_ids", "attention_mask") if name is None else (f"input_ids.{name}", f"attention_mask.{name}")


def image_key(name: str | None) -> str:
    """Batch key of an image input's pixels: ``image`` for a model's only image, ``image.NAME`` otherwise."""
    return "image" if name is None else f"image.{name}"


def sequence_keys(name: str) -> tuple[str, str]:
    """Batch keys of a sequence input's items and mask: ``sequence.NAME`` and ``sequence_mask.NAME``."""
    return f"sequence.{name}", f"sequence_mask.{name}"


def is_token_key(key: str) -> bool:
    """Whether the batch tensor ``key`` holds tokens (its second axis is the sequence)."""
    return key.split(".", 1)[0] in TOKEN_KEYS


def mask_key(key: str) -> str | None:
    """The mask that goes with the token ids or sequence items ``key`` (None for other keys)."""
    kind, _, name = key.partition(".")
    if kind == "sequence":
        return sequence_keys(name)[1]
    return None if kind != "input_ids" else text_keys(name or None)[1]


def input_keys(inputs: Iterable[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
    """The batch keys of each text, image and sequence input, from the inputs' ``(name, type)`` in the
    recipe's order: a text or image that is the only one of its kind keeps the plain keys, several carry
    their names; a sequence always does. Other inputs share ``numeric`` and ``category``."""
    inputs = list(inputs)
    counts = Counter(kind for _, kind in inputs)
    keys: dict[str, tuple[str, ...]] = {}
    for name, kind in inputs:
        named = name if counts[kind] > 1 else None
        if kind == "text":
            keys[name] = text_keys(named)
        elif kind == "image":
            keys[name] = (image_key(named),)
        elif kind == "sequence":
            keys[name] = sequence_keys(name)
    return keys


def several_kinds(types: Iterable[str]) -> bool:
    """Whether inputs of these types make a model over several kinds of input (a fusion model): tabular
    columns beside a text or an image, more than one text or image, or any sequence."""
    types = list(types)
    tabular = any(t in ("numeric", "binary", "category", "datetime") for t in types)
    return types.count("text") + types.count("image") + tabular > 1 or "sequence" in types


def trim_tokens(batch: Batch) -> Batch:
    """``batch`` (numpy arrays or torch tensors) with each token or sequence input cut to its longest row's
    length (at least 1), as its mask says; the other inputs as they are."""
    out = dict(batch)
    for ids in batch:
        mask = mask_key(ids)
        if mask in batch and len(batch[mask]) and batch[mask].shape[1]:
            length = max(int(batch[mask].sum(1).max()), 1)
            out[ids], out[mask] = batch[ids][:, :length], batch[mask][:, :length]
    return out  # type: ignore[return-value]
