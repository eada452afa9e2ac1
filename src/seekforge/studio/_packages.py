"""The model packages under a folder (a run's ``package/``, a compression's and an optimisation's outputs),
read from their ``package.json`` only: what each is, where it came from (the chain of parents its lineage
names), its exports with their parity records, and its model card."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from seekforge.studio._files import mapping, read_json

#: how deep under the folder a package.json is looked for (runs/<name>/<work>/<...>/package/package.json)
DEPTH = 5


@dataclass(frozen=True)
class PackageSummary:
    """One package as the packages table shows it."""

    id: str  # its folder, relative to the studio's folder
    name: str
    task: str | None
    created: str | None
    model: str | None
    test: dict[str, float] = field(default_factory=dict)
    exports: dict[str, bool] = field(default_factory=dict)  # variant -> passed its parity gate
    parent: str | None = None  # the package it was made from (compress, optimize), as its lineage says

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class PackageIndex:
    """The packages under ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def folders(self) -> list[Path]:
        found: list[Path] = []
        if not self.root.is_dir():
            return found
        for top, dirs, files in os.walk(self.root):
            here = Path(top)
            depth = len(here.relative_to(self.root).parts)
            if "package.json" in files and depth >= 1:
                found.append(here)
                dirs.clear()  # a package's own folders hold no packages
            elif depth >= DEPTH:
                dirs.clear()
            dirs[:] = [d for d in dirs if not d.startswith(".") and d not in ("checkpoints", "prepared", "trials")]
        return sorted(found)

    def find(self, package_id: str) -> Path | None:
        parts = Path(package_id).parts
        if not parts or any(p in ("..", ".") or p.startswith(".") for p in parts) or Path(package_id).is_absolute():
            return None
        folder = self.root / package_id
        return folder if (folder / "package.json").is_file() else None

    def id_of(self, folder: Path) -> str | None:
        """The id of the package at ``folder`` when it is one under the root."""
        inside = _inside(folder, self.root)
        return inside if inside is not None and self.find(inside) is not None else None

    def summaries(self) -> list[PackageSummary]:
        return [s for s in (self.summary(f) for f in self.folders()) if s is not None]

    def summary(self, folder: Path) -> PackageSummary | None:
        manifest = manifest_of(folder)
        if manifest is None:
            return None
        metrics = mapping(mapping(manifest.get("metrics")).get("test"))
        headline = next((k for k, v in metrics.items() if k != "rows" and isinstance(v, int | float)), None)
        model = manifest.get("model")
        exports = {name: bool(mapping(mapping(r).get("parity")).get("passed"))
                   for name, r in mapping(manifest.get("exports")).items()}  # fmt: skip
        parent = mapping(manifest.get("lineage")).get("parent")
        return PackageSummary(
            id=folder.relative_to(self.root).as_posix(),
            name=str(manifest.get("name", folder.name)),
            task=manifest.get("task"),
            created=manifest.get("created"),
            model=model.get("type") if isinstance(model, dict) else model if isinstance(model, str) else None,
            test={headline: float(metrics[headline])} if headline else {},
            exports=exports,
            parent=parent if isinstance(parent, str) else None,
        )

    def lineage(self, folder: Path) -> list[dict[str, Any]]:
        """The package and its ancestors, newest first: each one's place (its id when under the folder),
        name, creation and test metric; a parent that is gone is listed by its path, marked missing."""
        chain: list[dict[str, Any]] = []
        seen: set[Path] = set()
        current: Path | None = folder
        while current is not None and current not in seen and len(chain) < 20:
            seen.add(current)
            manifest = manifest_of(current)
            inside = _inside(current, self.root)
            entry: dict[str, Any] = {"path": str(current), "id": inside, "missing": manifest is None}
            if manifest is not None:
                lineage = mapping(manifest.get("lineage"))
                made = next((step for step in ("compress", "optimize") if step in manifest), None)
                entry.update(name=manifest.get("name"), created=manifest.get("created"), made=made,
                             test=mapping(mapping(manifest.get("metrics")).get("test")), data_hash=lineage.get("data_hash"),
                             recipe_hash=lineage.get("recipe_hash"))  # fmt: skip
                parent = lineage.get("parent")  # a path as the command that made the package was given it
                current = Path(parent).resolve() if isinstance(parent, str) else None
            else:
                current = None
            chain.append(entry)
        return chain


def manifest_of(folder: Path) -> dict[str, Any] | None:
    """The package's ``package.json``; None when it cannot be read."""
    return read_json(folder / "package.json")


def _inside(folder: Path, root: Path) -> str | None:
    try:
        return folder.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return None
