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

from seekforge.core.errors import PackageError
from seekforge.core.package import add_to_package, read_manifest
from seekforge.export._gate import ParityRecord, check_parity
from seekforge.export._onnx import ExportError, OnnxRunner, export_onnx
from seekforge.export.config import ExportConfig, ParityConfig

__all__ = [
    "ExportConfig",
    "ExportError",
    "ExportResult",
    "OnnxRunner",
    "ParityConfig",
    "ParityRecord",
    "check_parity",
    "export_package",
]

ONNX_FILE = "onnx/model.onnx"


@dataclass(frozen=True)
class ExportResult:
    """Where the export went in the package and how it compared with the torch model."""

    package: Path
    path: Path
    parity: ParityRecord
    bytes: int


def export_package(package: str | Path, config: ExportConfig | None = None, *, force: bool = False) -> ExportResult:
    """Export a package's model and add it to the package if it passes the parity gate.

    The torch model and the export both predict the held-out rows the package carries; an export that
    breaks a limit of ``config.parity`` is not written, unless ``force``, which writes it marked failed.

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
    if "samples.safetensors" not in manifest["files"]:
        raise PackageError(
            f"{package} holds no held-out rows (samples.safetensors) to check an export against",
            hint="re-create the package with this seekforge version",
        )
    samples = Tensors.load(package / "samples.safetensors")
    model = build_model(package)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "model.onnx"
        export_onnx(model, {k: v[:8] for k, v in samples.inputs.items()}, path, opset=config.opset)
        reference = infer(model, samples.inputs)
        candidate = OnnxRunner(path)(samples.inputs)
        parity = check_parity(reference, candidate, samples.target, task=manifest["task"], limits=config.parity)
        if not parity.passed and not force:
            raise ExportError(
                f"the ONNX model failed the parity gate on {parity.rows} held-out rows: " + "; ".join(parity.failures),
                hint="nothing was written; --force writes it anyway, marked as failed",
            )
        record: dict[str, Any] = {
            "file": ONNX_FILE,
            "precision": config.precision,
            "opset": config.opset,
            "parity": parity.to_dict(),
            "limits": config.parity.model_dump(),
        }
        exports = {**manifest.get("exports", {}), "onnx": record}
        size = path.stat().st_size
        add_to_package(
            package,
            files={ONNX_FILE: path, "onnx/parity.json": json.dumps(record, indent=2)},
            manifest={"exports": exports},
        )
    return ExportResult(package, package / ONNX_FILE, parity, size)
