"""Hostile packages and files, built the way an attacker would, and the means to check that reading them
touches nothing outside their place: an audit hook that records every file this process opens, renames,
removes or creates under a watched folder, and a canary file in that folder whose bytes must not change.

The commands themselves run in a subprocess under a memory limit (``RLIMIT_AS``), so a package that makes
seekforge allocate gigabytes fails the test rather than the machine."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from tests.integration.cli import seekforge

#: Audited events whose path arguments are checked against the watched folders
_EVENTS = {"open", "os.rename", "os.replace", "os.remove", "os.rmdir", "os.mkdir", "shutil.copyfile"}
_watched: list[str] = []
touched: list[tuple[str, str]] = []
_inside = [False]


def _hook(event: str, args: tuple[Any, ...]) -> None:
    if event not in _EVENTS or not _watched or _inside[0]:
        return
    _inside[0] = True
    try:
        for arg in args:
            if isinstance(arg, str | bytes | os.PathLike):
                real = os.path.realpath(os.fsdecode(arg))
                if any(real == root or real.startswith(root + os.sep) for root in _watched):
                    touched.append((event, real))
    finally:
        _inside[0] = False


sys.addaudithook(_hook)

SECRET = b"the contents of a file outside the package\n"
SECRET_SHA256 = hashlib.sha256(SECRET).hexdigest()


@contextlib.contextmanager
def watching(folder: Path) -> Iterator[None]:
    """Record what this process touches under ``folder`` (see :data:`touched`) while the block runs."""
    touched.clear()
    _watched.append(os.path.realpath(folder))
    try:
        yield
    finally:
        _watched.clear()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def hostile(
    source: Path,
    dest: Path,
    edit: Callable[[dict[str, Any]], None] | None = None,
    *,
    raw: str | bytes | None = None,
) -> Path:
    """A copy of the package ``source`` at ``dest`` with ``edit`` applied to its manifest (or the manifest
    replaced by ``raw``). Run ``edit`` after changing files: the manifest is written last."""
    shutil.copytree(source, dest, symlinks=True)
    if raw is not None:
        (dest / "package.json").write_bytes(raw if isinstance(raw, bytes) else raw.encode())
        return dest
    manifest = json.loads((dest / "package.json").read_text())
    if edit is not None:
        edit(manifest)
    (dest / "package.json").write_text(json.dumps(manifest))
    return dest


def rehash(package: Path, *names: str) -> None:
    """Record the current sha256 of ``names`` in the manifest, as an attacker who edits a file would."""
    manifest = json.loads((package / "package.json").read_text())
    for name in names:
        manifest["files"][name] = sha256(package / name)
    (package / "package.json").write_text(json.dumps(manifest))


#: Address space for one command: enough for torch and a small model, far below what a hostile file asks
MEMORY_LIMIT = 6 * 1024**3


def seekforge_limited(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``seekforge ARGS`` in a subprocess whose address space is capped at :data:`MEMORY_LIMIT`."""
    return seekforge(*args, cwd=cwd, timeout=timeout, memory=MEMORY_LIMIT)


def refused(proc: subprocess.CompletedProcess[str], *pattern: str) -> str:
    """Assert the command exited 2 with one error line (and its hint), no traceback; return the message."""
    assert proc.returncode == 2, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = proc.stderr.splitlines()
    errors = [i for i, line in enumerate(lines) if line.startswith("error:")]
    assert len(errors) == 1 and lines[errors[0] + 1 :] in ([], lines[-1:]), proc.stderr
    assert lines[errors[0] + 1 :] == [] or lines[-1].startswith("  hint: "), proc.stderr
    errors = [lines[errors[0]]]
    for part in pattern:
        assert part in errors[0], f"{part!r} not in {errors[0]!r}"
    return errors[0]
