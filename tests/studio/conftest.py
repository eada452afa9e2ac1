"""Every studio here finds its registry in the test's own folder (``$SEEKFORGE_REGISTRY``), never one left
in the working folder's ``runs/``."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def own_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "registry.db"
    monkeypatch.setenv("SEEKFORGE_REGISTRY", str(where))
    return where
