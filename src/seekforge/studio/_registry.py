"""The model registry as the studio shows it, opened read-only (a SQLite file in read-only mode: a promotion
running beside the studio never waits on it): each model's versions with their aliases, metrics and gates,
who did what when, and which registered versions a package folder is."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from seekforge.core.prediction_log import json_safe

#: how long one reading of the registry serves the pages before it is read again (one that failed: longer,
#: so that a database server that is down does not hold every page up for its connection timeout)
FRESH_SECONDS = 2.0
FAILED_SECONDS = 15.0


class RegistryView:
    """The registry at ``where`` (a path or an SQLAlchemy URL), read when asked; one that cannot be opened
    (not made yet, a server down) is a ``problem`` to show, and is tried again at the next reading."""

    def __init__(self, where: str | Path) -> None:
        self.where = where
        self._registry: Any = None
        self._read: tuple[float, dict[str, Any]] | None = None
        self._lock = threading.Lock()

    def read(self) -> dict[str, Any]:
        """``{"where", "models": [{name, versions, history}], "problem"}`` (at most :data:`FRESH_SECONDS` old)."""
        with self._lock:
            if self._read is not None:
                fresh = FAILED_SECONDS if self._read[1]["problem"] else FRESH_SECONDS
                if time.monotonic() - self._read[0] < fresh:
                    return self._read[1]
            found = json_safe(self._fresh())  # a metric stored as NaN reads as null
            self._read = (time.monotonic(), found)
            return found

    def _fresh(self) -> dict[str, Any]:
        from seekforge.registry import Registry

        answer: dict[str, Any] = {"where": str(self.where), "models": [], "problem": None}
        local = "://" not in str(self.where)
        if local and not Path(self.where).is_file():
            answer["problem"] = f"no registry at {self.where} yet (seekforge registry register PACKAGE makes it)"
            return answer
        try:
            if self._registry is None:
                self._registry = Registry(self.where, read_only=True)
            for name in self._registry.names():
                versions = [v.to_dict() for v in self._registry.versions_of(name)]
                answer["models"].append({"name": name, "versions": versions, "history": self._registry.history(name)})
        except Exception as exc:  # a damaged file or row, a server gone: shown on the page, never raised
            self._registry = None
            answer["models"] = []
            answer["problem"] = (
                getattr(exc, "message", None) or f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"
            )
        return answer

    def by_package(self) -> dict[str, list[dict[str, Any]]]:
        """The registered versions of each package folder (resolved path): name, version, aliases."""
        marks: dict[str, list[dict[str, Any]]] = {}
        for model in self.read()["models"]:
            for v in model["versions"]:
                marks.setdefault(os.path.realpath(v["package"]), []).append(
                    {"name": v["name"], "version": v["version"], "aliases": v["aliases"]}
                )
        return marks


def label(mark: dict[str, Any]) -> str:
    """``credit v3 (champion)``."""
    aliases = f" ({', '.join(mark['aliases'])})" if mark["aliases"] else ""
    return f"{mark['name']} v{mark['version']}{aliases}"
