"""Export: ONNX and OpenVINO models recorded in the package, each behind a parity gate; benchmarks of
every backend a package holds; ``optimize``, which keeps the fastest variant within an accuracy budget.

The configuration and the table of variants import at once; the rest (torch, onnx) when first used, so
that the runtime install, which has neither, can read the variants.

Example:
    >>> from seekforge.export import export_package
    >>> result = export_package("runs/digits/<stamp>/package")
    >>> result.parity.passed, result.path
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from seekforge.core.variants import BACKENDS, BY_BACKEND, VARIANTS, Variant
from seekforge.export.config import ExportConfig, ParityConfig

if TYPE_CHECKING:
    from seekforge.core.timing import BenchRow
    from seekforge.export._bench import bench_package
    from seekforge.export._convert import TARGETS, ConvertResult, check_target, convert_package
    from seekforge.export._gate import ParityRecord, check_parity
    from seekforge.export._graph import fusions_of, graph_changes, operator_counts
    from seekforge.export._onnx import ExportError, OnnxRunner, export_onnx
    from seekforge.export._optimize import Candidate, OptimizeResult, optimize_package
    from seekforge.export._package import (
        ExportResult,
        check_format,
        export_base,
        export_package,
        open_runner,
        raw_samples_of,
    )

_LAZY = {
    "BenchRow": "seekforge.core.timing",
    "bench_package": "seekforge.export._bench",
    **dict.fromkeys(("TARGETS", "ConvertResult", "check_target", "convert_package"), "seekforge.export._convert"),
    "ParityRecord": "seekforge.export._gate",
    "check_parity": "seekforge.export._gate",
    **dict.fromkeys(("fusions_of", "graph_changes", "operator_counts"), "seekforge.export._graph"),
    "ExportError": "seekforge.export._onnx",
    "OnnxRunner": "seekforge.export._onnx",
    "export_onnx": "seekforge.export._onnx",
    "Candidate": "seekforge.export._optimize",
    "OptimizeResult": "seekforge.export._optimize",
    "optimize_package": "seekforge.export._optimize",
    **dict.fromkeys(
        ("ExportResult", "check_format", "export_base", "export_package", "open_runner", "raw_samples_of"),
        "seekforge.export._package",
    ),
}

__all__ = [
    "BACKENDS",
    "BY_BACKEND",
    "TARGETS",
    "VARIANTS",
    "BenchRow",
    "Candidate",
    "ConvertResult",
    "ExportConfig",
    "ExportError",
    "ExportResult",
    "OnnxRunner",
    "OptimizeResult",
    "ParityConfig",
    "ParityRecord",
    "Variant",
    "bench_package",
    "check_format",
    "check_parity",
    "check_target",
    "convert_package",
    "export_base",
    "export_onnx",
    "export_package",
    "fusions_of",
    "graph_changes",
    "open_runner",
    "operator_counts",
    "optimize_package",
    "raw_samples_of",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'seekforge.export' has no attribute '{name}'")
