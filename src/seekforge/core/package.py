"""The ModelPackage on disk: one directory holding everything needed to predict.

``package.json`` is the manifest: format version, seekforge version, task, input/output schema, test
metrics, lineage, and the sha256 of every file. A package is written into a temporary directory and
renamed into place, so a crash never leaves one that looks valid; loading verifies every checksum.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from seekforge.core.errors import PackageError
from seekforge.core.io import atomic_dir, sha256_file

MANIFEST = "package.json"
FORMAT_VERSION = 1
REQUIRED_FILES = ("recipe.yaml", "preprocessor.json", "model.json", "model.safetensors")


def seekforge_version() -> str:
    from seekforge import __version__

    return __version__


def carried_fields(manifest: Mapping[str, Any], *, drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of ``manifest`` that a rewritten package carries over: all but those
    :func:`write_package` fills in afresh (``files``, ``format_version``, ``seekforge_version``) and ``drop``."""
    return {k: v for k, v in manifest.items() if k not in ("files", "format_version", "seekforge_version", *drop)}


def write_package(
    dest: Path | str,
    *,
    files: Mapping[str, bytes | str | Path],
    manifest: Mapping[str, Any],
    overwrite: bool = False,
) -> Path:
    """Write a package atomically.

    Args:
        dest: The package directory to create.
        files: Relative file name -> content (bytes, text, or a file to copy).
        manifest: Fields of ``package.json`` (``files``, ``format_version``, ``seekforge_version`` and
            ``created`` are filled in here unless given).
        overwrite: Replace an existing package at ``dest``.

    Raises:
        PackageError: ``dest`` exists and ``overwrite`` is false, or a required file is missing.
    """
    dest = Path(dest)
    missing = [name for name in REQUIRED_FILES if name not in files]
    if missing:
        raise PackageError(f"cannot write a package without {', '.join(missing)}")
    try:
        with atomic_dir(dest, overwrite=overwrite) as tmp:
            digests: dict[str, str] = {}
            for name, content in files.items():
                target = tmp / name
                target.parent.mkdir(parents=True, exist_ok=True)
                if isinstance(content, Path):
                    target.write_bytes(content.read_bytes())
                elif isinstance(content, str):
                    target.write_text(content, encoding="utf-8")
                else:
                    target.write_bytes(content)
                digests[name] = sha256_file(target)
            full = {
                "format_version": FORMAT_VERSION,
                "seekforge_version": seekforge_version(),
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                **manifest,
                "files": dict(sorted(digests.items())),
            }
            (tmp / MANIFEST).write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
    except FileExistsError:
        raise PackageError(f"{dest} already exists", hint="choose another output or pass overwrite") from None
    return dest


def read_manifest(path: Path | str, *, verify: bool = True) -> dict[str, Any]:
    """Read ``package.json`` and, with ``verify``, check every listed file against its sha256.

    Raises:
        PackageError: Not a package, unsupported format, a file missing or modified.
    """
    path = Path(path)
    manifest_path = path / MANIFEST
    if not path.is_dir():
        raise PackageError(f"{path} is not a model package directory", hint="pass a folder holding package.json")
    if not manifest_path.is_file():
        raise PackageError(
            f"{path} has no {MANIFEST}; it is not a model package (or was written only half-way)",
            hint="point at runs/<name>/<stamp>/package",
        )
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PackageError(f"{manifest_path}: not valid JSON ({exc})") from None
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise PackageError(
            f"{manifest_path}: package format {version!r} is not supported (this seekforge reads {FORMAT_VERSION})",
            hint="re-create the package with this seekforge version",
        )
    files = manifest.get("files")
    if not isinstance(files, dict):
        raise PackageError(f"{manifest_path}: no 'files' table")
    for name in REQUIRED_FILES:
        if name not in files:
            raise PackageError(f"{manifest_path}: required file {name} is not listed")
    if verify:
        for name, expected in files.items():
            file = path / name
            if not file.is_file():
                raise PackageError(f"{file} is missing from the package", hint="restore it or re-create the package")
            actual = sha256_file(file)
            if actual != expected:
                raise PackageError(
                    f"{file} was modified after the package was written "
                    f"(sha256 {actual[:12]}..., expected {expected[:12]}...)",
                    hint="restore the original file or re-create the package",
                )
    return manifest


def add_to_package(
    path: Path | str,
    *,
    files: Mapping[str, bytes | str | Path],
    manifest: Mapping[str, Any],
) -> dict[str, Any]:
    """Add files (an export, say) and manifest fields to a verified package, atomically.

    The package is rebuilt beside itself with the new files and swapped in, so readers see the old
    package or the new one, never a mix (for an instant, during the swap, no package).

    Returns:
        The new manifest.

    Raises:
        PackageError: The package does not verify, or a new file would replace a required one.
    """
    path = Path(path)
    current = read_manifest(path)
    clash = [name for name in files if name in REQUIRED_FILES or name == MANIFEST]
    if clash:
        raise PackageError(f"cannot replace {', '.join(clash)} in {path}")
    kept = {name: path / name for name in current["files"] if name not in files}
    write_package(path, files={**kept, **files}, manifest={**carried_fields(current), **manifest}, overwrite=True)
    return read_manifest(path)
