"""The model registry: versions point at packages by checksum, a version that failed a gate is not
promoted without --force (and the force is recorded), rollback walks back through promotions, references
resolve to checked folders, and an unreachable database is named."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from seekforge.core.errors import ConfigError, PackageError
from seekforge.core.package import add_to_package
from seekforge.registry import Registry, RegistryUnavailable
from tests.integration.cli import seekforge


@pytest.fixture
def packages(served_package: Path, tmp_path: Path) -> list[Path]:
    """Three versions of one model: the served package, a copy with an export added, and a copy whose
    fairness gate failed."""
    copies = []
    for k in range(3):
        copy = tmp_path / f"v{k + 1}"
        shutil.copytree(served_package, copy)
        copies.append(copy)
    add_to_package(copies[1], files={"note.txt": "second"}, manifest={})
    gate = {"passed": False, "reasons": ["selection_rate differs by 0.3 between groups"]}
    add_to_package(copies[2], files={}, manifest={"fairness": {"gate": gate}})
    return copies


def test_register_promote_rollback_and_resolve(packages: list[Path], tmp_path: Path) -> None:
    registry = Registry(tmp_path / "registry.db")
    first, second = registry.register(packages[0]), registry.register(packages[1])
    assert (first, second) == (1, 2) and registry.register(packages[0]) == 1  # the same package: its version
    name = registry.names()[0]
    registry.promote(name, 1)
    registry.promote(name, 2)
    assert registry.resolve(f"{name}@champion") == packages[1].resolve()
    assert registry.resolve(f"{name}@1") == packages[0].resolve() and registry.resolve(name) == packages[1].resolve()
    assert registry.rollback(name) == 1 and registry.resolve(f"{name}@champion") == packages[0].resolve()
    with pytest.raises(ConfigError, match="no earlier version to go back to"):
        registry.rollback(name)
    assert [e["action"] for e in registry.history(name)] == ["register", "register", "promote", "promote", "rollback"]
    assert all(e["by"] and e["at"] for e in registry.history(name))

    third = registry.register(packages[2])
    with pytest.raises(ConfigError, match=r"version 3 failed its gates .*selection_rate differs.*'champion' stays"):
        registry.promote(name, third)
    assert registry.resolve(f"{name}@champion") == packages[0].resolve()
    registry.promote(name, third, force=True, note="accepted by the review board")
    assert registry.history(name)[-1]["detail"] == {
        "previous": 1,
        "forced": True,
        "note": "accepted by the review board",
    }

    (packages[0] / "package.json").write_text(
        (packages[0] / "package.json").read_text().replace('"name"', '"name" ', 1)
    )
    with pytest.raises(PackageError, match="changed since it was registered"):
        registry.resolve(f"{name}@1")
    with pytest.raises(ConfigError, match="has no alias 'staging'"):
        registry.resolve(f"{name}@staging")


def test_an_unreachable_registry_is_named(tmp_path: Path) -> None:
    with pytest.raises(RegistryUnavailable, match="cannot be opened"):
        Registry("postgresql+psycopg://nobody@127.0.0.1:9/none")


def test_the_command_line(packages: list[Path], tmp_path: Path) -> None:
    where = ["--registry", str(tmp_path / "r.db")]
    registry = Registry(tmp_path / "r.db")
    for package in packages[:2]:
        registry.register(package)
    third = json.loads(seekforge("registry", "register", str(packages[2]), *where, "--json", cwd=tmp_path).stdout)
    name = third["name"]
    assert third["version"] == 3 and third["passed"] is False
    refused = seekforge("registry", "promote", name, "3", *where, cwd=tmp_path)
    assert refused.returncode == 2 and "failed its gates" in refused.stderr and "--force" in refused.stderr
    assert seekforge("registry", "promote", name, "2", *where, cwd=tmp_path).returncode == 0
    shown = json.loads(seekforge("registry", "show", name, *where, "--json", cwd=tmp_path).stdout)
    assert [v["aliases"] for v in shown["versions"]] == [[], ["champion"], []]
    resolved = seekforge("registry", "resolve", f"{name}@champion", *where, cwd=tmp_path)
    assert resolved.stdout.strip() == str(packages[1].resolve())
    served = seekforge("serve", f"registry:{name}@champion", *where, "--print-dockerfile", cwd=tmp_path)
    assert served.returncode == 0 and f"registry:{name}@champion -> {packages[1].resolve()}" in served.stderr


def test_a_read_only_registry_never_writes(packages: list[Path], tmp_path: Path) -> None:
    missing = tmp_path / "none" / "registry.db"
    with pytest.raises(RegistryUnavailable, match="cannot be opened"):
        Registry(missing, read_only=True)
    assert not missing.parent.exists()  # nothing made on the way
    odd = tmp_path / "a ?#% folder" / "registry.db"  # characters a SQLite URI would misread unencoded
    Registry(odd).register(packages[0])
    reader = Registry(odd, read_only=True)
    (name,) = reader.names()
    assert [v.version for v in reader.versions_of(name)] == [1]
    with pytest.raises(ConfigError, match="opened read-only"):
        reader.register(packages[1])
    with pytest.raises(ConfigError, match="opened read-only"):
        reader.promote(name, 1)
    assert len(Registry(odd).versions_of(name)) == 1 and not (tmp_path / "a ").exists()
