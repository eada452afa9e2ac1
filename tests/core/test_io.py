from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from seekforge.core.errors import ConfigError
from seekforge.core.io import (
    atomic_dir,
    sha256_bytes,
    sha256_file,
    stamped_folder,
    work_folder,
    write_json_atomic,
    write_text_atomic,
)


def test_write_text_atomic_replaces_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    write_text_atomic(target, "one")
    write_text_atomic(target, "two")
    assert target.read_text() == "two"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_failed_atomic_dir_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "pkg"
    with pytest.raises(RuntimeError), atomic_dir(target) as tmp:
        (tmp / "half.bin").write_bytes(b"x")
        raise RuntimeError("crash while writing")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_refuses_existing_unless_overwrite(tmp_path: Path) -> None:
    target = tmp_path / "pkg"
    with atomic_dir(target) as tmp:
        (tmp / "v").write_text("1")
    with pytest.raises(FileExistsError), atomic_dir(target):
        pass
    with atomic_dir(target, overwrite=True) as tmp:
        (tmp / "v").write_text("2")
    assert (target / "v").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pkg"]


def test_atomic_writes_go_through_a_symbolic_link(tmp_path: Path) -> None:
    target, link = tmp_path / "runs" / "pkg", tmp_path / "latest"
    with atomic_dir(target) as tmp:
        (tmp / "v").write_text("1")
    link.symlink_to(target, target_is_directory=True)
    with atomic_dir(link, overwrite=True) as tmp:
        (tmp / "v").write_text("2")
    assert link.is_symlink() and (target / "v").read_text() == "2"
    assert sorted(p.name for p in target.parent.iterdir()) == ["pkg"]

    file_link = tmp_path / "notes.json"
    file_link.symlink_to(target / "v")
    write_json_atomic(file_link, {"a": 1})
    assert file_link.is_symlink() and json.loads((target / "v").read_text()) == {"a": 1}


def test_leftovers_of_killed_writers_go_with_the_next_write(tmp_path: Path) -> None:
    """A writer killed mid-write leaves its temporary sibling; the next successful write of the same name
    removes it, and keeps those of live writers and of other hosts."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    killed = [tmp_path / f".package.{host}-{dead.pid}-x1.tmp", tmp_path / f".package.{host}-{dead.pid}-x2.old"]
    kept = [tmp_path / f".package.{host}-{os.getppid()}-x3.tmp", tmp_path / f".package.other-host-{dead.pid}-x4.tmp"]
    for folder in killed + kept:
        (folder / "sub").mkdir(parents=True)
    file_left = tmp_path / f".notes.txt.{host}-{dead.pid}-x5.tmp"
    file_left.write_text("half")
    with atomic_dir(tmp_path / "package") as tmp:
        (tmp / "a").write_text("a")
    write_text_atomic(tmp_path / "notes.txt", "whole")
    assert not any(p.exists() for p in [*killed, file_left]) and all(p.is_dir() for p in kept)
    assert (tmp_path / "package" / "a").read_text() == "a" and (tmp_path / "notes.txt").read_text() == "whole"


def test_hashes_agree(tmp_path: Path) -> None:
    path = write_json_atomic(tmp_path / "x.json", {"a": 1})
    assert sha256_file(path) == sha256_bytes(path.read_bytes())


def test_outputs_get_ordinary_permissions(tmp_path: Path) -> None:
    import os

    mask = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "f.txt", "x")
        with atomic_dir(tmp_path / "d") as tmp:
            (tmp / "inner").write_text("y")
    finally:
        os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o755


def test_work_folder_new_explicit_and_resumed(tmp_path: Path) -> None:
    first = work_folder(tmp_path, "job-", resume=False)
    assert first.is_dir() and first.name.startswith("job-") and first.parent == tmp_path
    explicit = work_folder(tmp_path, "job-", resume=True, explicit=tmp_path / "mine" / "here")
    assert explicit == tmp_path / "mine" / "here" and explicit.is_dir()
    assert work_folder(tmp_path, "job-", resume=True) == first


def test_work_folder_resumes_the_newest_it_accepts(tmp_path: Path) -> None:
    stamp = stamped_folder(tmp_path, "job-").name
    for name in (f"{stamp}-2", f"{stamp}-10", f"{stamp}-3"):
        (tmp_path / name).mkdir()
    (tmp_path / f"{stamp}-3" / "done").touch()
    (tmp_path / "job-file").touch()  # not a folder: never resumed
    newest = work_folder(tmp_path, "job-", resume=True)
    assert newest.name == f"{stamp}-10"  # -10 came after -2, whatever the sort of the names says
    unfinished = work_folder(tmp_path, "job-", resume=True, resumable=lambda d: not (d / "done").exists()
                             and d.name != f"{stamp}-10")  # fmt: skip
    assert unfinished.name == f"{stamp}-2"


def test_work_folder_says_when_nothing_can_be_resumed(tmp_path: Path) -> None:
    (tmp_path / "job-1").mkdir()
    with pytest.raises(ConfigError, match=r"nothing to resume: no unfinished study of 'x' under") as caught:
        work_folder(tmp_path, "job-", resume=True, resumable=lambda d: False, what="study of 'x'")
    assert "without --resume" in (caught.value.hint or "")
