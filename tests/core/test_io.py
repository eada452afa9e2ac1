from __future__ import annotations

import json
from pathlib import Path

import pytest

from seekforge.core.io import atomic_dir, sha256_bytes, sha256_file, write_json_atomic, write_text_atomic


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
