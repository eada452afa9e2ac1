"""Configuration of data profiling, cleaning and balancing (``data_quality.yaml``; ``data.clean`` and
``data.balance`` in a recipe)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from seekforge.core.config import BaseConfig
from seekforge.data.clean_config import (
    BalanceConfig,
    BinConfig,
    CleanConfig,
    ColumnsConfig,
    DeduplicateConfig,
    FeatureEngineeringConfig,
    LabelIssuesConfig,
    MissingConfig,
    OutlierConfig,
    StlConfig,
)
from seekforge.data.config import ReadConfig

ColumnType = Literal["numeric", "category", "binary", "text", "datetime", "image"]

__all__ = [
    "BalanceConfig",
    "BinConfig",
    "CleanConfig",
    "ColumnType",
    "ColumnsConfig",
    "DataQualityConfig",
    "DeduplicateConfig",
    "FeatureEngineeringConfig",
    "LabelIssuesConfig",
    "MissingConfig",
    "OutlierConfig",
    "StlConfig",
]


class DataQualityConfig(BaseConfig):
    """``data_quality.yaml``: what the data is, and how to clean it.

    Attributes:
        label: The label column; needed for label issues, leakage checks, balance and importance.
        task: classification or regression; ``auto`` infers it from the label.
        types: Column types that override the inferred ones.
        read: How to read delimited text files.
        seed: Seed of every random choice (folds, IsolationForest, sampling).
        clean: The cleaning steps.
        balance: How ``seekforge data balance`` evens out the label's classes.
        features: The columns ``seekforge data features`` derives (bins, seasonal decompositions).
    """

    label: str | None = None
    task: Literal["auto", "classification", "regression"] = "auto"
    types: dict[str, ColumnType] = {}
    read: ReadConfig = ReadConfig()
    seed: Annotated[int, Field(ge=0, lt=2**31)] = 0
    clean: CleanConfig = CleanConfig()
    balance: BalanceConfig = BalanceConfig()
    features: FeatureEngineeringConfig = FeatureEngineeringConfig()
