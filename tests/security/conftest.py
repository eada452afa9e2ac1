"""The ``outside`` folder: a canary beside each hostile package (see :mod:`tests.security.hostile`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.security.hostile import SECRET, touched, watching


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Path]:
    """A folder beside the package holding ``secret.txt``; the test fails if anything in this process
    opens, writes, renames or removes anything in it, or if its contents change."""
    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "secret.txt").write_bytes(SECRET)
    before = sorted(p.name for p in folder.iterdir())
    with watching(folder):
        yield folder
    assert touched == [], f"touched outside the package: {touched}"
    assert sorted(p.name for p in folder.iterdir()) == before, "a file was written outside the package"
    assert (folder / "secret.txt").read_bytes() == SECRET
