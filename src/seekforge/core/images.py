"""Decoding an image file or bytes within the pixel limit (:func:`seekforge.core.limits.limits`), the
same in every stage: data loading, profiling, training, monitoring and serving. The size is read from the
header and checked before any pixel is decoded, so a small file that decompresses to gigabytes is
refused at the cost of its header."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from seekforge.core.deps import require
from seekforge.core.errors import DataError
from seekforge.core.limits import limits

#: Pillow modes kept as one channel; every other mode becomes RGB
_GREY = ("L", "1", "I", "I;16", "F")


@contextlib.contextmanager
def _quiet(image: Any) -> Iterator[None]:
    """Without Pillow's own warning for images over its bound (ours, checked next, says what to do), and
    with its bound raised to ours where ours was raised above it."""
    if image.MAX_IMAGE_PIXELS is not None and limits().image_pixels > image.MAX_IMAGE_PIXELS:
        image.MAX_IMAGE_PIXELS = limits().image_pixels
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", image.DecompressionBombWarning)
        yield


def check_pixels(width: int, height: int, what: object) -> None:
    """Refuse an image of more pixels than the limit.

    Raises:
        DataError: Naming ``what``, its size and the flag that raises the limit.
    """
    bound = limits().image_pixels
    if width * height > bound:
        raise DataError(
            f"{what}: the image is {width:,} x {height:,} ({width * height:,} pixels), more than the limit of "
            f"{bound:,} pixels",
            hint="shrink the image, or if it is trusted raise the limit: seekforge --max-image-pixels N ...",
        )


def decode_image(source: str | Path | IO[bytes], *, what: object, formats: list[str] | None = None) -> np.ndarray:
    """The image in ``source`` (a file name or a binary stream) as an ``H x W`` (grey) or ``H x W x 3`` array.

    Raises:
        DataError: Larger than the pixel limit.
        FileNotFoundError: No such file.
        OSError: Not an image Pillow can read (``UnidentifiedImageError`` is an ``OSError``).
    """
    require("PIL", purpose="Image features")
    from PIL import Image

    try:
        with _quiet(Image), Image.open(source, formats=formats) as img:
            check_pixels(*img.size, what)
            img.load()
            return np.asarray(img.convert("L" if img.mode in _GREY else "RGB"))
    except Image.DecompressionBombError as exc:  # beyond Pillow's own bound, when ours was raised above it
        raise DataError(f"{what}: {exc}", hint="shrink the image") from None


def image_size(source: str | Path, *, what: object) -> tuple[int, int]:
    """``(width, height)`` from the header, the file checked as far as Pillow can without decoding it.

    Raises:
        DataError: Larger than the pixel limit.
        OSError: Not a readable image.
    """
    require("PIL", purpose="Image features")
    from PIL import Image

    try:
        with _quiet(Image), Image.open(source) as img:
            check_pixels(*img.size, what)
            img.verify()
            return img.size
    except Image.DecompressionBombError as exc:
        raise DataError(f"{what}: {exc}", hint="shrink the image") from None
