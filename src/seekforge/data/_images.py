"""Image loading and normalisation: files (PNG, JPEG, ...) or arrays -> ``[N, C, H, W]`` float tensors."""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from seekforge.data._validate import row_place
from seekforge.runtime import encode_images, fit_pixels, read_pixels


@dataclass(frozen=True)
class ImageStats:
    """Fitted image transform: target size, channel count, per-channel mean and std (of [0, 1] pixels)."""

    size: tuple[int, int]
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.channels, self.size[0], self.size[1])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImageStats:
        return cls(tuple(data["size"]), data["channels"], tuple(data["mean"]), tuple(data["std"]))  # type: ignore[arg-type]


def _read(value: Any, frame: pd.DataFrame, pos: int, name: str) -> np.ndarray:
    """One image as float32 ``[H, W, C]`` in [0, 1]."""
    return read_pixels(value, row_place(frame, pos), name)


def fit_images(
    column: pd.Series, frame: pd.DataFrame, size: tuple[int, int] | None, channels: int | None
) -> ImageStats:
    """Choose size (the most common unless given) and channels, and measure per-channel mean and std."""
    arrays = [_read(v, frame, i, str(column.name)) for i, v in enumerate(column)]
    if size is None:
        size = Counter(a.shape[:2] for a in arrays).most_common(1)[0][0]
    if channels is None:
        channels = 3 if any(a.shape[2] == 3 for a in arrays) else 1
    stack = torch.from_numpy(np.stack([fit_pixels(a, size, channels) for a in arrays]))
    mean = stack.mean(dim=(0, 2, 3)).tolist()
    std = [max(s, 1e-6) for s in stack.std(dim=(0, 2, 3)).tolist()]
    return ImageStats(tuple(size), channels, tuple(mean), tuple(std))  # type: ignore[arg-type]


def load_images(column: pd.Series, frame: pd.DataFrame, stats: ImageStats) -> torch.Tensor:
    """Read, resize and normalise a column of images into ``[N, C, H, W]`` (the runtime's own code)."""
    place = functools.partial(row_place, frame)
    return torch.from_numpy(encode_images(list(column), stats.to_dict(), place=place, name=str(column.name)))
