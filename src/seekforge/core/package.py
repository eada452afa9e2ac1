"""The ModelPackage on disk: one directory holding everything needed to predict.

``package.json`` is the manifest: format version, seekforge version, task, input/output schema, test
metrics, lineage, and the sha256 of every file. A package is written into a temporary directory and
renamed into place, so a crash never leaves one that looks valid; loading verifies every checksum.

Packages are files people download and share, so reading one trusts nothing in it: ``package.json`` is
bounded in size and depth and checked against a schema, and every file it names must lie inside the
package folder (no ``..``, no absolute name, no symbolic link that leads out), checked before it is opened.
Writing uses the same rules, so nothing rewritten from a package lands outside its output folder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from seekforge.core.errors import PackageError
from seekforge.core.io import atomic_dir, sha256_file

MANIFEST = "package.json"
FORMAT_VERSION = 1
REQUIRED_FILES = ("recipe.yaml", "preprocessor.json", "model.json", "model.safetensors")
#: ``package.json`` larger than this, or nested deeper, is refused before it is parsed further
MAX_MANIFEST_BYTES = 32 * 1024 * 1024
MAX_MANIFEST_DEPTH = 32
_SHA256 = r"^[0-9a-f]{64}$"
_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"


def file_name_problem(name: object) -> str | None:
    """Why ``name`` cannot name a file in a package (None when it can): a relative POSIX path of plain
    parts, with no ``..``, ``.``, empty part, backslash or control character."""
    if not isinstance(name, str):
        return f"is a {type(name).__name__}, not a text"
    if not name or len(name) > 255:
        return "must be 1 to 255 characters"
    if any(ord(c) < 32 or c in "\\\x7f" for c in name):
        return "holds a backslash or a control character"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "is an absolute path"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "has an empty, '.' or '..' part"
    if name == MANIFEST:
        return "is the manifest itself"
    return None


def package_file(root: Path | str, name: str, *, check_name: bool = True) -> Path:
    """``root / name``, checked to stay inside the package folder ``root`` once every symbolic link on the
    way is followed; checked before anything opens it.

    Raises:
        PackageError: ``name`` is not a plain relative name, or leads outside ``root``.
    """
    root = Path(root)
    problem = file_name_problem(name) if check_name else None
    if problem is not None:
        raise PackageError(
            f"{root / MANIFEST}: the file name {_shown(name)} {problem}",
            hint="the package was altered or built by another tool: do not use it; re-create it with seekforge",
        )
    path = root / name
    if not path.resolve().is_relative_to(root.resolve()):
        raise PackageError(
            f"{path} leads outside the package folder (through a symbolic link)",
            hint="a package holds its files itself: replace the link with the file, or re-create the package",
        )
    return path


def _shown(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Part(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class _Column(_Part):
    name: Annotated[str, Field(min_length=1, max_length=1024)]
    type: Annotated[str, Field(max_length=64)]


class _Export(_Part):
    file: str


class _Manifest(_Part):
    """The fields of ``package.json`` that code reads; more are allowed (metrics, lineage, records)."""

    format_version: int
    seekforge_version: Annotated[str, Field(max_length=64)]
    name: Annotated[str, Field(pattern=_NAME, max_length=100)]
    task: Annotated[str, Field(max_length=64)]
    inputs: Annotated[list[_Column], Field(min_length=1, max_length=100_000)]
    output: _Column
    files: dict[str, Annotated[str, Field(pattern=_SHA256)]]
    lineage: dict[str, Any] = {}
    metrics: dict[str, Any] = {}
    exports: dict[str, _Export] = {}
    serving: dict[str, Any] = {}


def check_manifest(manifest: object, where: Path | str) -> dict[str, Any]:
    """``manifest`` checked against the schema of ``package.json``: the fields code reads have their
    types, every file name is a plain name inside the package, every export's file is a listed file,
    and nothing is nested deeper than :data:`MAX_MANIFEST_DEPTH`.

    Raises:
        PackageError: The first problem, with its field.
    """
    if not isinstance(manifest, dict):
        raise PackageError(f"{where}: the manifest is a {type(manifest).__name__}, not an object")
    if _depth(manifest) > MAX_MANIFEST_DEPTH:
        raise PackageError(f"{where}: nested more than {MAX_MANIFEST_DEPTH} levels deep")
    try:  # a lone surrogate escape (\\ud800) makes text no UTF-8 answer can carry
        json.dumps(manifest, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        bad = exc.object[exc.start : exc.end].encode("unicode_escape").decode()
        raise PackageError(f"{where}: holds {bad}, a lone surrogate escape, which is not Unicode text") from None
    version = manifest.get("format_version")
    if version != FORMAT_VERSION:
        raise PackageError(
            f"{where}: package format {_shown(version)} is not supported (this seekforge reads {FORMAT_VERSION})",
            hint="re-create the package with this seekforge version",
        )
    try:
        _Manifest.model_validate(manifest)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or "<root>"
        value = "" if error["type"] == "missing" else f" (got {_shown(error.get('input'))})"
        raise PackageError(
            f"{where}: {field}: {error['msg'].lower()}{value}",
            hint="the package was altered or built by another tool: re-create it with seekforge",
        ) from None
    for name in manifest["files"]:
        problem = file_name_problem(name)
        if problem is not None:
            raise PackageError(f"{where}: files: the file name {_shown(name)} {problem}")
    for name in REQUIRED_FILES:
        if name not in manifest["files"]:
            raise PackageError(f"{where}: required file {name} is not listed")
    for key, export in manifest.get("exports", {}).items():
        if export["file"] not in manifest["files"]:
            raise PackageError(f"{where}: exports.{key}.file: {_shown(export['file'])} is not a file of the package")
    return manifest


def _depth(value: object) -> int:
    """How deeply ``value`` nests lists and objects, without recursion (1 for a flat object)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_MANIFEST_DEPTH:
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


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
    for name in files:
        if (problem := file_name_problem(name)) is not None:
            raise PackageError(f"cannot write {_shown(name)} into a package: the name {problem}")
    try:
        with atomic_dir(dest, overwrite=overwrite) as tmp:
            digests: dict[str, str] = {}
            for name, content in files.items():
                target = package_file(tmp, name)
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
            check_manifest(full, dest / MANIFEST)
            (tmp / MANIFEST).write_text(json.dumps(full, indent=2) + "\n", encoding="utf-8")
    except FileExistsError:
        raise PackageError(f"{dest} already exists", hint="choose another output or pass overwrite") from None
    return dest


def read_manifest(path: Path | str, *, verify: bool = True) -> dict[str, Any]:
    """Read ``package.json``, check it (:func:`check_manifest`) and that every listed file lies inside the
    package, and, with ``verify``, check every listed file against its sha256.

    Raises:
        PackageError: Not a package, an unsupported format, a manifest that breaks its schema or limits,
            a file name that leads outside the package, a file missing or modified.
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
    package_file(path, MANIFEST, check_name=False)
    size = manifest_path.stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise PackageError(f"{manifest_path}: {size:,} bytes, more than a manifest may hold ({MAX_MANIFEST_BYTES:,})")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PackageError(f"{manifest_path}: not valid JSON ({exc})") from None
    except RecursionError:
        raise PackageError(f"{manifest_path}: nested more than {MAX_MANIFEST_DEPTH} levels deep") from None
    check_manifest(manifest, manifest_path)
    for name in manifest["files"]:
        package_file(path, name)
    if verify:
        verify_files(path, manifest["files"])
    return manifest


def verify_files(root: Path | str, files: Mapping[str, str], *, what: str = "package") -> None:
    """Check that each of ``files`` (name -> sha256) lies inside ``root``, is there, and has its checksum.

    Raises:
        PackageError: The first file outside ``root``, missing or modified.
    """
    for name, expected in files.items():
        file = package_file(root, name)
        if not file.is_file():
            raise PackageError(f"{file} is missing from the {what}", hint=f"restore it or re-create the {what}")
        actual = sha256_file(file)
        if actual != expected:
            raise PackageError(
                f"{file} was modified after the {what} was written (sha256 {actual[:12]}..., expected {expected[:12]}...)",
                hint=f"restore the original file or re-create the {what}",
            )


def read_package_json(root: Path | str, name: str, *, limit: int = 1 << 30) -> Any:
    """The JSON file ``name`` of the package at ``root`` (``model.json``, ``preprocessor.json``, ...), read
    inside the package and within ``limit`` bytes.

    Raises:
        PackageError: The file leads outside the package, is missing, too large, or not valid JSON.
    """
    path = package_file(root, name)
    try:
        if path.stat().st_size > limit:
            raise PackageError(f"{path}: {path.stat().st_size:,} bytes, more than such a file may hold ({limit:,})")
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PackageError(f"{path} is missing from the package", hint="restore it or re-create the package") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PackageError(f"{path}: not valid JSON ({exc})", hint="re-create the package") from None
    except RecursionError:
        raise PackageError(f"{path}: nested too deeply to read", hint="re-create the package") from None


def add_to_package(
    path: Path | str,
    *,
    files: Mapping[str, bytes | str | Path],
    manifest: Mapping[str, Any],
    drop: str | None = None,
) -> dict[str, Any]:
    """Add files (an export, say) and manifest fields to a verified package, atomically; ``drop``: a folder
    of the package (``coreml/``) whose files the new ones replace, so that none of the old ones stays.

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
    kept = {name: path / name for name in current["files"]
            if name not in files and not (drop is not None and name.startswith(drop))}  # fmt: skip
    write_package(path, files={**kept, **files}, manifest={**carried_fields(current), **manifest}, overwrite=True)
    return read_manifest(path)
