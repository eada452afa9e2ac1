"""Export: ONNX models recorded in the package, each behind a parity gate.

Example:
    >>> from seekforge.export import export_package
    >>> result = export_package("runs/digits/<stamp>/package")
    >>> result.parity.passed, result.path
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seekforge.core.package import add_to_package, read_manifest
from seekforge.export._bench import BenchRow, available_backends, bench_package
from seekforge.export._gate import ParityRecord, check_parity
from seekforge.export._onnx import ExportError, OnnxRunner, export_onnx, load_samples
from seekforge.export._optimize import Candidate, OptimizeResult, optimize_package
from seekforge.export._quantize import quantize_int8
from seekforge.export.config import ExportConfig, ParityConfig

__all__ = [
    "BenchRow",
    "Candidate",
    "ExportConfig",
    "ExportError",
    "ExportResult",
    "OnnxRunner",
    "OptimizeResult",
    "ParityConfig",
    "ParityRecord",
    "available_backends",
    "bench_package",
    "check_parity",
    "export_package",
    "optimize_package",
]


@dataclass(frozen=True)
class ExportResult:
    """Where the export went in the package and how it compared with the torch model."""

    package: Path
    path: Path
    parity: ParityRecord
    bytes: int
    record: dict[str, Any]


def export_package(package: str | Path, config: ExportConfig | None = None, *, force: bool = False) -> ExportResult:
    """Export a package's model and add it to the package if it passes the parity gate.

    The torch model and the export both predict the held-out rows the package carries; an export that
    breaks a limit of ``config.limits`` is not written, unless ``force``, which writes it marked failed.
    An fp32 export is ``onnx/model.onnx``, an INT8 one ``onnx/model-int8.onnx``; each has its record under
    ``exports`` in package.json and beside it in ``<file>.parity.json``.

    Raises:
        PackageError: Not a valid package, or one without held-out rows.
        ExportError: The export failed, or failed the gate (the message says by how much).
    """
    from seekforge.models import infer
    from seekforge.serve import build_model
    from seekforge.train import Tensors

    config = config or ExportConfig()
    package = Path(package)
    manifest = read_manifest(package)
    samples = load_samples(package, manifest)
    model = build_model(package)
    stem = "model" if config.precision == "fp32" else f"model-{config.precision}"
    record: dict[str, Any] = {"file": f"onnx/{stem}.onnx", "precision": config.precision, "opset": config.opset}
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "model.onnx"
        export_onnx(model, {k: v[:8] for k, v in samples.inputs.items()}, path, opset=config.opset)
        if config.precision == "int8":
            calibration = (
                Tensors.load(package / "calibration.safetensors")
                if "calibration.safetensors" in manifest["files"]
                else None
            )
            path, fp32 = Path(scratch) / f"{stem}.onnx", path
            record["quantization"] = quantize_int8(fp32, path, method=config.quantization, calibration=calibration)
        reference = infer(model, samples.inputs)
        candidate = OnnxRunner(path)(samples.inputs)
        parity = check_parity(reference, candidate, samples.target, task=manifest["task"], limits=config.limits)
        if not parity.passed and not force:
            raise ExportError(
                f"the {config.variant} model failed the parity gate on {parity.rows} held-out rows: "
                + "; ".join(parity.failures),
                hint="nothing was written; --force writes it anyway, marked as failed",
            )
        record.update(parity=parity.to_dict(), limits=config.limits.model_dump(), bytes=path.stat().st_size)
        add_to_package(
            package,
            files={record["file"]: path, f"onnx/{stem}.parity.json": json.dumps(record, indent=2)},
            manifest={"exports": {**manifest.get("exports", {}), config.variant: record}},
        )
    return ExportResult(package, package / record["file"], parity, record["bytes"], record)
