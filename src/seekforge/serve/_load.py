"""``seekforge.load``: the full Predictor where torch is installed, the runtime's where it is not."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

from seekforge.core.deps import extra_command
from seekforge.core.errors import MissingDependencyError

if TYPE_CHECKING:
    from seekforge.runtime import RuntimePredictor
    from seekforge.serve._predictor import Predictor


def full_install() -> bool:
    """Whether torch and pandas, which the full Predictor needs, are installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("torch", "pandas"))


def load(
    path: str | Path, *, backend: str = "auto", verify: bool = True, threads: int | None = None
) -> Predictor | RuntimePredictor:
    """Load a model package for prediction.

    With the full install this is :func:`seekforge.serve.Predictor`'s loader: every backend, predictions
    as a DataFrame. With the runtime install alone (no torch) it loads a raw-input ONNX export with
    :func:`seekforge.runtime.load`, whose predictions are a dict of columns.

    Args:
        path: The package directory (``runs/<name>/<stamp>/package``).
        backend: ``torch``; the backend of an export the package holds, passed through its parity gate
            (``onnxruntime``, ``onnxruntime-int8``, ``openvino``, ...: see ``seekforge.export.VARIANTS``); or
            ``auto``: the backend ``seekforge optimize`` chose, else onnxruntime when the package has a
            passing fp32 export and onnxruntime is installed, else torch.
        verify: Check every file's sha256 against ``package.json``.
        threads: Intra-op threads of an exported backend's session; None: the backend's default.

    Raises:
        PackageError: Not a package, a file is missing or was modified, or the backend has no model here.
        MissingDependencyError: The backend needs a library this install lacks.
    """
    if full_install():
        from seekforge.serve._predictor import load as load_full

        return load_full(path, backend=backend, verify=verify, threads=threads)
    if backend.startswith(("torch", "openvino")):
        raise MissingDependencyError(
            f"backend '{backend}' needs the full seekforge install (torch"
            f"{', OpenVINO' if backend.startswith('openvino') else ''}),"
            " and this one has the runtime only",
            hint=f"run: {extra_command('all')}; or use an onnxruntime backend of a raw-input ONNX export",
        )
    from seekforge.runtime import load as load_runtime

    return load_runtime(path, backend=backend, verify=verify, threads=threads)
