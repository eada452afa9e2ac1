"""Data: sources, built-in data sets, checks against the declared features, seeded splits, Preprocessor."""

from seekforge.data._preprocess import Preprocessor
from seekforge.data._sources import SOURCES, DataSource, read_source
from seekforge.data._split import Splits, frame_fingerprint, load_splits
from seekforge.data._validate import check_table
from seekforge.data.config import DataConfig, FeaturesConfig, SplitConfig

__all__ = [
    "SOURCES",
    "DataConfig",
    "DataSource",
    "FeaturesConfig",
    "Preprocessor",
    "SplitConfig",
    "Splits",
    "check_table",
    "frame_fingerprint",
    "load_splits",
    "read_source",
]
