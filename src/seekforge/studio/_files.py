"""Reading what runs, studies and packages wrote, as the studio reads everything: a file that is missing,
half-written or damaged reads as nothing, never as an error."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import yaml


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when it cannot be read or is not an object."""
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return value if isinstance(value, dict) else None


def read_yaml(path: Path) -> Any:
    """The YAML document in ``path``; None when it cannot be read."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError, UnicodeDecodeError):
        return None


def mapping(value: Any) -> dict[str, Any]:
    """``value`` when it is a mapping, else an empty one (a damaged file's field)."""
    return value if isinstance(value, dict) else {}


def finite(value: Any) -> float | None:
    """``value`` as a float when it is a finite number (not a bool), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
