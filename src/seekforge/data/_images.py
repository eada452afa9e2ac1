"""Image loading and normalisation: files (PNG, JPEG, ...) or arrays -> ``[N, C, H, W]`` float tensors."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from seekforge.core.errors import DataError
from seekforge.core.images import check_pixels, decode_image
from seekforge.data._validate import row_place


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
    if isinstance(value, str | Path):
        try:
            array = decode_image(value, what=f"{row_place(frame, pos)}: {value}")
        except FileNotFoundError:
            raise DataError(f"{row_place(frame, pos)}: image file not found: {value}") from None
        except (OSError, SyntaxError) as exc:  # Pillow's UnidentifiedImageError too
            raise DataError(
                f"{row_place(frame, pos)}: cannot read image {value}: {exc}",
                hint="remove or replace the corrupt file",
            ) from None
    elif isinstance(value, np.ndarray | list | tuple):
        array = np.asarray(value)
        if array.dtype == object:  # rows held as arrays or lists, e.g. read back from Parquet or JSON
            array = np.array([np.asarray(row).tolist() for row in array])
        if array.ndim >= 2:
            check_pixels(array.shape[1], array.shape[0], row_place(frame, pos))
    else:
        raise DataError(
            f"{row_place(frame, pos)}: column '{name}' must hold an image path or array, got {type(value).__name__}"
        )
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise DataError(f"{row_place(frame, pos)}: image of shape {array.shape} is not HxW, HxWx1/3/4")
    array = array[:, :, :3]
    if np.issubdtype(array.dtype, np.integer):  # integer pixels are 8-bit (16-bit for uint16), like files
        return array.astype(np.float32) / (65535.0 if array.dtype == np.uint16 else 255.0)
    return array.astype(np.float32)


def _to_tensor(array: np.ndarray, size: tuple[int, int], channels: int) -> torch.Tensor:
    tensor = torch.from_numpy(np.ascontiguousarray(array)).permute(2, 0, 1)
    if tensor.shape[0] != channels:
        tensor = tensor.mean(0, keepdim=True) if channels == 1 else tensor.expand(3, -1, -1)
    if tuple(tensor.shape[1:]) != size:
        tensor = F.interpolate(tensor[None], size=size, mode="bilinear", antialias=True, align_corners=False)[0]
    return tensor


def fit_images(
    column: pd.Series, frame: pd.DataFrame, size: tuple[int, int] | None, channels: int | None
) -> ImageStats:
    """Choose size (the most common unless given) and channels, and measure per-channel mean and std."""
    arrays = [_read(v, frame, i, str(column.name)) for i, v in enumerate(column)]
    if size is None:
        size = Counter(a.shape[:2] for a in arrays).most_common(1)[0][0]
    if channels is None:
        channels = 3 if any(a.shape[2] == 3 for a in arrays) else 1
    stack = torch.stack([_to_tensor(a, size, channels) for a in arrays])
    mean = stack.mean(dim=(0, 2, 3)).tolist()
    std = [max(s, 1e-6) for s in stack.std(dim=(0, 2, 3)).tolist()]
    return ImageStats(tuple(size), channels, tuple(mean), tuple(std))  # type: ignore[arg-type]


def load_images(column: pd.Series, frame: pd.DataFrame, stats: ImageStats) -> torch.Tensor:
    """Read, resize and normalise a column of images into ``[N, C, H, W]``."""
    stack = torch.stack(
        [_to_tensor(_read(v, frame, i, str(column.name)), stats.size, stats.channels) for i, v in enumerate(column)]
    )
    mean = torch.tensor(stats.mean).view(1, -1, 1, 1)
    std = torch.tensor(stats.std).view(1, -1, 1, 1)
    return ((stack - mean) / std).contiguous()
