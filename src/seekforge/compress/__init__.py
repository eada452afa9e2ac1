"""Compression: structured pruning (torch-pruning), distillation and quantization-aware training (torchao)
that compose into one new package, measured against its parent: ``seekforge compress``.

Example:
    >>> from seekforge.compress import CompressConfig, compress_package
    >>> config = CompressConfig(prune={"ratio": 0.5, "finetune_epochs": 5}, distill={})
    >>> result = compress_package("runs/digits/<stamp>/package", config)
    >>> result.package, result.rows[-1].parameters
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from seekforge.compress.config import CompressConfig, DistillConfig, PruneConfig, QuantizeConfig

if TYPE_CHECKING:
    from seekforge.compress._run import CompressResult, VariantRow, compress_package

__all__ = [
    "CompressConfig",
    "CompressResult",
    "DistillConfig",
    "PruneConfig",
    "QuantizeConfig",
    "VariantRow",
    "compress_package",
]


def __getattr__(name: str) -> Any:  # the runner needs the training pipeline: imported on first use
    if name in ("CompressResult", "VariantRow", "compress_package"):
        from seekforge.compress import _run

        return getattr(_run, name)
    raise AttributeError(f"module 'seekforge.compress' has no attribute '{name}'")
