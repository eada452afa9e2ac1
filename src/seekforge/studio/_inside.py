"""A package's model run on one of its held-out rows for the package page (attention heat maps, feature
maps; see :func:`seekforge.explain.look_inside`), and the explanations ``seekforge explain`` wrote for it.

Models are loaded when first asked for and the last few kept (a package changed since is loaded again);
one row is looked at a time, the forward hooks being the model's own state."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from seekforge.studio._files import mapping, read_json

#: loaded models kept at once
KEEP = 2


class Insides:
    """Loaded packages' models, the :data:`KEEP` last used."""

    def __init__(self) -> None:
        self._models: OrderedDict[Path, tuple[float, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def look(self, folder: Path, row: int) -> dict[str, Any]:
        """The package's model on its held-out row ``row``.

        Raises:
            SeekforgeError: The package cannot be rebuilt, carries no held-out rows, or has no row ``row``.
        """
        from seekforge.explain import load_model, look_inside

        with self._lock:
            stamp = (folder / "package.json").stat().st_mtime
            kept = self._models.pop(folder, None)
            model = kept[1] if kept is not None and kept[0] == stamp else load_model(folder)
            self._models[folder] = (stamp, model)
            while len(self._models) > KEEP:
                self._models.popitem(last=False)
            return look_inside(model, row).to_dict()


def looks_inside(manifest: dict[str, Any]) -> bool:
    """Whether the package's model has something to show inside: one text or one image input, and
    held-out rows."""
    inputs, files = manifest.get("inputs"), manifest.get("files")
    kinds = [mapping(f).get("type") for f in inputs] if isinstance(inputs, list) else []
    return kinds in (["text"], ["image"]) and isinstance(files, dict) and "samples.safetensors" in files


def explanation_of(folder: Path) -> tuple[Path, dict[str, Any]] | None:
    """The explanation ``seekforge explain`` wrote for the package in ``folder`` (its default place, the
    ``explain/`` folder beside the package), when it names this package."""
    where = folder.parent / "explain"
    found = read_json(where / "explanation.json")
    if not found or not isinstance(found.get("package"), str):
        return None
    named = Path(found["package"])  # as the command was given it: absolute, or relative to where it ran
    same = os.path.realpath(named) == os.path.realpath(folder) if named.is_absolute() else (
        named.parts[-2:] == folder.parts[-2:])  # fmt: skip
    return (where, found) if same else None
