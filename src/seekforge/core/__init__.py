"""Shared building blocks: errors, registries, atomic I/O, progress, the model package."""

from seekforge.core.errors import (
    CheckpointError,
    ConfigError,
    ConfigIssue,
    DataError,
    MissingDependencyError,
    NotFittedError,
    PackageError,
    RegistryError,
    SeekforgeError,
    TrainingInterrupted,
)
from seekforge.core.registry import Registry

__all__ = [
    "CheckpointError",
    "ConfigError",
    "ConfigIssue",
    "DataError",
    "MissingDependencyError",
    "NotFittedError",
    "PackageError",
    "Registry",
    "RegistryError",
    "SeekforgeError",
    "TrainingInterrupted",
]
