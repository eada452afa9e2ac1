"""A torch.export ExportedProgram (``.pt2``) brought to ONNX, so that it imports as an ONNX file does: the
program is loaded with ``torch.export.load`` (a program's graph and weights, not pickled code) and
converted by torch's own ONNX exporter, keeping the axes the program left dynamic."""

from __future__ import annotations

import zipfile
from pathlib import Path

from seekforge.core.deps import quiet
from seekforge.core.errors import DataError, first_line


def pt2_to_onnx(path: Path, out: Path) -> None:
    """Write the ExportedProgram at ``path`` as the ONNX file ``out``.

    Raises:
        DataError: Not an ExportedProgram, or one torch's exporter cannot convert.
    """
    import torch

    if not zipfile.is_zipfile(path):
        raise DataError(f"{path} is not an ExportedProgram (torch.export.save writes a zip archive)",
                        hint="torch.export.save(torch.export.export(model, example_inputs), 'model.pt2')")  # fmt: skip
    try:
        program = torch.export.load(str(path))
    except Exception as exc:  # torch raises many types for a damaged or foreign archive
        raise DataError(f"{path} is not an ExportedProgram torch {torch.__version__.split('+')[0]} can load "
                        f"({type(exc).__name__}: {first_line(exc)})",
                        hint="save it again with torch.export.save from this torch version") from None  # fmt: skip
    example = program.example_inputs[0] if program.example_inputs else None
    try:
        with quiet("torch.onnx", "torch.export", "onnxscript"):
            converted = torch.onnx.export(program, example, dynamo=True, verbose=False, external_data=False)
            converted.save(str(out), external_data=False)
    except Exception as exc:  # the exporter's own error types; what it says is what matters
        raise DataError(f"{path}: torch's ONNX exporter cannot convert this program ({type(exc).__name__}: "
                        f"{first_line(exc)})", hint="run with --debug to see its traceback") from exc  # fmt: skip
