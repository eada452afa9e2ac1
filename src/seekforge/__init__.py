"""seekforge: raw data to a deployed, monitored model in one tool.

The top-level names are imported lazily so that ``import seekforge`` stays light::

    import seekforge
    result = seekforge.run("examples/digits.yaml")
    predictor = seekforge.load(result.package)
    predictor.predict([{"image": "some.png"}])
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "run": "seekforge.pipeline",
    "RunResult": "seekforge.pipeline",
    "load": "seekforge.serve",
    "Predictor": "seekforge.serve",
    "Recipe": "seekforge.recipe",
    "load_recipe": "seekforge.recipe",
    "Preprocessor": "seekforge.data",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'seekforge' has no attribute '{name}'")
