"""Atomic file and directory writes, hashing.

A crash never leaves a half-written file or directory under its final name: everything is written to a
temporary sibling first, flushed to disk, and then renamed, which is atomic on one file system. The
sibling's name holds the host and process that write it, and the next successful write of the same name
removes what killed writers left.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from seekforge.core.errors import ConfigError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync(path: Path) -> None:
    """Flush a file's or folder's contents to disk, so a rename never publishes data still in memory."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _through_link(dest: Path | str) -> Path:
    """``dest``, or where it points when it is a symbolic link: renaming onto a link would replace the
    link itself (or, for a folder, fail), not what a user who names it means."""
    dest = Path(dest)
    return dest.resolve() if dest.is_symlink() else dest


def _temporary_prefix(dest: Path) -> str:
    """The start of a temporary sibling's name: the final name, this host and this process, so a later
    write can tell the leftovers of a killed writer from the work of one still running."""
    return f".{dest.name}.{socket.gethostname()}-{os.getpid()}-"


def _remove_leftovers(dest: Path) -> None:
    """Remove temporary siblings of ``dest`` left by writers on this host that were killed (their process
    is gone); those of live writers, or of other hosts sharing the folder, stay."""
    host = f".{dest.name}.{socket.gethostname()}-"
    for sibling in dest.parent.glob(glob.escape(host) + "*"):
        pid = sibling.name[len(host) :].split("-", 1)[0]
        if not sibling.name.endswith((".tmp", ".old")) or not pid.isdigit() or _alive(int(pid)):
            continue
        if sibling.is_dir() and not sibling.is_symlink():
            shutil.rmtree(sibling, ignore_errors=True)
        else:
            sibling.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


@contextlib.contextmanager
def atomic_path(dest: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success rename it onto ``dest``.

    On error the temporary file is removed and ``dest`` is left as it was. A ``dest`` that is a symbolic
    link is written through: the file it points to is replaced, and the link stays.
    """
    dest = _through_link(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temporary_prefix(dest), suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():  # mkstemp makes 0600 files; give the result ordinary permissions
            os.chmod(tmp_path, 0o666 & ~_umask())
            _fsync(tmp_path)
        os.replace(tmp_path, dest)
        _fsync(dest.parent)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise
    _remove_leftovers(dest)


def write_text_atomic(dest: Path | str, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``dest`` atomically."""
    with atomic_path(dest) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(dest)


def write_json_atomic(dest: Path | str, data: Any) -> Path:
    """Write ``data`` as indented JSON to ``dest`` atomically."""
    return write_text_atomic(dest, json.dumps(data, indent=2, sort_keys=False) + "\n")


@contextlib.contextmanager
def atomic_dir(dest: Path | str, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield an empty temporary directory beside ``dest``; on success rename it onto ``dest``.

    Args:
        dest: Final directory.
        overwrite: Replace an existing ``dest``; otherwise an existing one raises ``FileExistsError``. A
            ``dest`` that is a symbolic link has the folder it points to replaced, and the link stays.
    """
    dest = _through_link(dest)
    if dest.exists() and not overwrite:
        raise FileExistsError(f"{dest} already exists")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=_temporary_prefix(dest), suffix=".tmp", dir=dest.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes 0700 folders
        for path in sorted(tmp.rglob("*"), reverse=True):
            _fsync(path)
        _fsync(tmp)
        if dest.exists():
            # Two renames: a reader may find no folder for an instant, never a mix of old and new files.
            old = Path(tempfile.mkdtemp(prefix=_temporary_prefix(dest), suffix=".old", dir=dest.parent))
            os.replace(dest, old)  # onto the empty folder mkdtemp made, so the name is unique
            os.replace(tmp, dest)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, dest)
        _fsync(dest.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _remove_leftovers(dest)


def stamped_folder(parent: Path, prefix: str = "") -> Path:
    """A new folder ``<parent>/<prefix><YYYYmmdd-HHMMSS>`` (``-2``, ``-3``, ... when taken), created."""
    from datetime import datetime

    stamp = f"{prefix}{datetime.now().strftime('%Y%m%d-%H%M%S')}"
    folder, suffix = parent / stamp, 1
    while folder.exists():
        suffix += 1
        folder = parent / f"{stamp}-{suffix}"
    folder.mkdir(parents=True)
    return folder


def work_folder(
    parent: Path,
    prefix: str = "",
    *,
    resume: bool,
    explicit: Path | None = None,
    resumable: Callable[[Path], bool] = Path.is_dir,
    what: str = "run",
) -> Path:
    """Where a resumable piece of work goes: ``explicit`` (created), with ``resume`` the newest
    ``<parent>/<prefix>*`` folder that ``resumable`` accepts, else a new :func:`stamped_folder`.

    Raises:
        ConfigError: ``resume`` and no folder to resume.
    """
    if explicit is not None:
        explicit.mkdir(parents=True, exist_ok=True)
        return explicit
    if not resume:
        return stamped_folder(parent, prefix)
    found = [d for d in parent.glob(f"{prefix}*") if d.is_dir() and resumable(d)]
    if not found:
        raise ConfigError(f"nothing to resume: no unfinished {what} under {parent}",
                          hint="run without --resume to start a new one")  # fmt: skip
    return max(found, key=_stamp_order)


def _stamp_order(folder: Path) -> tuple[str, int]:
    """Stamped folders in the order they were made: ``20260101-120000-10`` after ``...-2``."""
    stamp, _, suffix = folder.name.rpartition("-")
    if suffix.isdigit() and len(suffix) < 6:  # a -N suffix, not the HHMMSS of the stamp itself
        return stamp, int(suffix)
    return folder.name, 1
