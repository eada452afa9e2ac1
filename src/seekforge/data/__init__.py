"""Data: sources, built-in data sets, checks against the declared features, seeded splits, Preprocessor.

Names are imported on first use, so ``seekforge data`` commands never load torch (which the Preprocessor
needs).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from seekforge.data._federated import image_sizes, merge_statistics, site_statistics
    from seekforge.data._history import derive_history
    from seekforge.data._images import ImageStats, load_images
    from seekforge.data._preprocess import Preprocessor
    from seekforge.data._profile import id_like, infer_task, infer_type
    from seekforge.data._sources import SOURCES, DataSource, read_source
    from seekforge.data._split import Splits, frame_fingerprint, load_splits
    from seekforge.data._text import TextEncoder
    from seekforge.data._validate import check_table, row_place
    from seekforge.data._values import as_text, nested_positions
    from seekforge.data.config import DataConfig, FeaturesConfig, SplitConfig

_HOME = {
    "Preprocessor": "_preprocess",
    "merge_statistics": "_federated",
    "image_sizes": "_federated",
    "site_statistics": "_federated",
    "SOURCES": "_sources",
    "DataSource": "_sources",
    "read_source": "_sources",
    "Splits": "_split",
    "frame_fingerprint": "_split",
    "load_splits": "_split",
    "check_table": "_validate",
    "derive_history": "_history",
    "row_place": "_validate",
    "require_values": "_validate",
    "TextEncoder": "_text",
    "ImageStats": "_images",
    "load_images": "_images",
    "id_like": "_profile",
    "infer_task": "_profile",
    "infer_type": "_profile",
    "as_text": "_values",
    "nested_positions": "_values",
    "DataConfig": "config",
    "FeaturesConfig": "config",
    "SplitConfig": "config",
}

__all__ = [
    "SOURCES",
    "DataConfig",
    "DataSource",
    "FeaturesConfig",
    "ImageStats",
    "Preprocessor",
    "SplitConfig",
    "Splits",
    "TextEncoder",
    "as_text",
    "check_table",
    "derive_history",
    "frame_fingerprint",
    "id_like",
    "image_sizes",
    "infer_task",
    "infer_type",
    "load_images",
    "load_splits",
    "merge_statistics",
    "nested_positions",
    "read_source",
    "require_values",
    "row_place",
    "site_statistics",
]


def __getattr__(name: str) -> Any:
    if name not in _HOME:
        raise AttributeError(f"module 'seekforge.data' has no attribute '{name}'")
    value = getattr(importlib.import_module(f"seekforge.data.{_HOME[name]}"), name)
    globals()[name] = value
    return value
