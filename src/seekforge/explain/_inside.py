"""One of a package's held-out rows seen from inside its model: a transformer's attention weights per layer
and head over the row's tokens, a CNN's feature maps at the end of each block beside the image it read,
and what the model predicted for the row against its label."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from seekforge.core.errors import ConfigError, PackageError
from seekforge.explain import _image, _text
from seekforge.explain._model import ExplainedModel
from seekforge.train import Tensors

#: at most this many tokens of a text, and this many pixels a side of an image or a feature map, are kept
MAX_TOKENS = 64
MAX_SIDE = 64


@dataclass
class Inside:
    """What :func:`look_inside` found for one row."""

    row: int
    rows: int  # how many held-out rows the package carries
    kind: str  # text | image | tabular | inputs (the last two: prediction only)
    prediction: Any
    label: Any
    scores: list[float]
    tokens: list[str] | None = None
    tokens_total: int | None = None  # the row's tokens, of which the first MAX_TOKENS are shown
    attention: list[np.ndarray] = field(default_factory=list)  # per layer [heads, tokens, tokens]
    image: np.ndarray | None = None  # [height, width, channels], 0..1
    feature_maps: list[np.ndarray] = field(default_factory=list)  # per block [channels, height, width]

    def to_dict(self, digits: int = 4) -> dict[str, Any]:
        def values(array: np.ndarray) -> Any:
            return np.round(array.astype(np.float64), digits).tolist()

        return {
            "row": self.row, "rows": self.rows, "kind": self.kind, "prediction": self.prediction,
            "label": self.label, "scores": [round(s, digits) for s in self.scores], "tokens": self.tokens,
            "tokens_total": self.tokens_total,
            "attention": [values(a) for a in self.attention],
            "image": values(self.image) if self.image is not None else None,
            "feature_maps": [values(m) for m in self.feature_maps],
        }  # fmt: skip


def look_inside(model: ExplainedModel, row: int) -> Inside:
    """Run the package's model on its held-out row ``row`` (``samples.safetensors``) and keep what its
    attention or its convolutions made of it.

    Raises:
        PackageError: The package carries no held-out rows.
        ConfigError: ``row`` is not one of them.
    """
    if "samples.safetensors" not in model.manifest["files"]:
        raise PackageError(f"{model.path} carries no held-out rows (samples.safetensors) to look at",
                           hint="packages made by seekforge run carry them; package it again")  # fmt: skip
    samples = Tensors.load(model.path / "samples.safetensors")
    if not 0 <= row < len(samples):
        raise ConfigError(f"row {row}: {model.path} holds {len(samples)} held-out rows (0 to {len(samples) - 1})")
    batch = {k: v[row : row + 1] for k, v in samples.inputs.items()}
    scores = model.predict_scores(batch)
    target = samples.target[row]
    if model.task == "regression":
        pre = model.preprocessor
        label: Any = float(target.reshape(-1)[0]) * float(pre.target_std_) + float(pre.target_mean_)
    else:
        label = model.classes[int(target.reshape(-1)[0])]
    found = Inside(row, len(samples), model.kind, model.labels(scores)[0], label, scores[0].tolist())
    if model.kind == "text" and hasattr(model.model, "attention_maps"):
        # the whole row, as the prediction read it; the maps and tokens shown are its first MAX_TOKENS
        length = max(int(batch["attention_mask"][0].sum()), 1)
        ids = batch["input_ids"][0, : min(length, MAX_TOKENS)].tolist()
        found.tokens = _text.encoder_of(model).tokens(ids)
        found.tokens_total = length
        found.attention = [layer[:, :MAX_TOKENS, :MAX_TOKENS] for layer in _text.attention(model, batch, 0)]
    elif model.kind == "image":
        image = batch["image"][0].float()
        shown = _fit(image)
        low, high = shown.amin(), shown.amax()
        found.image = ((shown - low) / (high - low if high > low else 1.0)).permute(1, 2, 0).numpy()
        found.feature_maps = [_fit(torch.from_numpy(m)).numpy() for m in _image.feature_maps(model, image)]
    return found


def _fit(maps: torch.Tensor) -> torch.Tensor:
    """``[channels, height, width]`` averaged down to at most :data:`MAX_SIDE` a side."""
    height, width = maps.shape[-2:]
    if max(height, width) <= MAX_SIDE:
        return maps
    scale = MAX_SIDE / max(height, width)
    size = (max(int(height * scale), 1), max(int(width * scale), 1))
    return F.adaptive_avg_pool2d(maps[None].float(), size)[0]
