"""Bounds on what a file may make this process do: how large a model a package may describe, how large
one row's activations may grow, how many pixels an image may decode to.

A package, a data file or a request is checked against these before the work they would cause starts,
so a hostile or damaged one fails with a clear error rather than taking the machine's memory. The CLI's
``--max-model-parameters``, ``--max-activation-mib`` and ``--max-image-pixels`` raise them for one run.
"""

from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass(frozen=True)
class Limits:
    """Attributes:
    model_parameters: Most parameters a package's ``model.json`` may describe.
    activation_bytes: Most bytes one module's output may take for one row.
    image_pixels: Most pixels (width x height) an image may decode to, in every stage.
    """

    model_parameters: int = 2_000_000_000
    activation_bytes: int = 256 * 1024 * 1024
    image_pixels: int = 4096 * 4096


_current = Limits()


def limits() -> Limits:
    """The limits in force."""
    return _current


def set_limits(**changes: int) -> Limits:
    """Change some limits for this process (``set_limits(image_pixels=8192 * 8192)``); returns the old ones,
    for a caller that puts them back."""
    global _current
    old = _current
    _current = replace(_current, **changes)
    return old
