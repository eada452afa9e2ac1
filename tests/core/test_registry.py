from __future__ import annotations

from importlib.metadata import EntryPoint

import pytest

from seekforge.core.errors import RegistryError
from seekforge.core.registry import Registry


def test_register_get_and_names() -> None:
    reg: Registry[int] = Registry("thing", "seekforge.test-none")
    reg.register("one", 1)

    @reg.register("two")
    def two() -> int:
        return 2

    assert reg.get("one") == 1
    assert reg.get("two") is two
    assert reg.names() == ["one", "two"]
    assert "one" in reg and "three" not in reg


def test_duplicate_name_raises() -> None:
    reg: Registry[int] = Registry("thing", "seekforge.test-none")
    reg.register("one", 1)
    with pytest.raises(RegistryError, match="already registered"):
        reg.register("one", 2)


def test_unknown_name_lists_available_and_suggests() -> None:
    reg: Registry[int] = Registry("model", "seekforge.test-none")
    reg.register("transformer", 1)
    reg.register("mlp", 2)
    with pytest.raises(RegistryError) as info:
        reg.get("transfomer")
    assert "available: mlp, transformer" in info.value.message
    assert info.value.hint == "did you mean 'transformer'?"


def test_entry_point_plugins_load_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []

    def fake_entry_points(group: str) -> list[EntryPoint]:
        calls.append(group)
        return [EntryPoint("plug", "json:dumps", group)]

    monkeypatch.setattr("seekforge.core.registry.entry_points", fake_entry_points)
    reg: Registry[object] = Registry("thing", "seekforge.things")
    reg.register("builtin", 1)
    assert reg.get("builtin") == 1 and calls == []  # built-ins need no plugin scan
    import json

    assert reg.get("plug") is json.dumps
    assert calls == ["seekforge.things"]


def test_broken_plugin_reports_its_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        "seekforge.core.registry.entry_points",
        lambda group: [EntryPoint("bad", "no_such_module_xyz:thing", group)],
    )
    reg: Registry[object] = Registry("thing", "seekforge.things")
    with pytest.raises(RegistryError, match="plugin 'bad'"):
        reg.get("bad")
