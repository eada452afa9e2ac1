"""The keys of a batch: what the preprocessing (torch's and the runtime's) names each input's tensors,
and what a model and its ONNX graph read them by."""

from __future__ import annotations

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
