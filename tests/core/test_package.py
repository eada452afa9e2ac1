from __future__ import annotations

import json
from pathlib import Path

import pytest

from seekforge.core.errors import PackageError
from seekforge.core.package import add_to_package, carried_fields, read_manifest, write_package

FILES = {
    "recipe.yaml": "name: x\n",
    "preprocessor.json": "{}",
    "model.json": "{}",
    "model.safetensors": b"\x00\x01",
}
#: the fields every package.json holds
FIELDS = {
    "name": "demo",
    "task": "binary",
    "inputs": [{"name": "x", "type": "numeric"}],
    "output": {"name": "y", "type": "binary", "classes": ["no", "yes"]},
}


def test_round_trip_records_checksums(tmp_path: Path) -> None:
    pkg = write_package(tmp_path / "pkg", files=FILES, manifest={**FIELDS, "task": "classification"})
    manifest = read_manifest(pkg)
    assert manifest["task"] == "classification"
    assert set(manifest["files"]) == set(FILES)
    assert manifest["format_version"] == 1 and manifest["seekforge_version"]


def test_tampered_file_is_named(tmp_path: Path) -> None:
    pkg = write_package(tmp_path / "pkg", files=FILES, manifest=FIELDS)
    (pkg / "model.safetensors").write_bytes(b"\x00\x02")
    with pytest.raises(PackageError, match=r"model\.safetensors was modified"):
        read_manifest(pkg)


def test_missing_file_and_missing_manifest(tmp_path: Path) -> None:
    pkg = write_package(tmp_path / "pkg", files=FILES, manifest=FIELDS)
    (pkg / "model.json").unlink()
    with pytest.raises(PackageError, match=r"model\.json is missing"):
        read_manifest(pkg)
    (pkg / "package.json").unlink()
    with pytest.raises(PackageError, match=r"no package\.json"):
        read_manifest(pkg)
    with pytest.raises(PackageError, match="not a model package"):
        read_manifest(tmp_path / "nowhere")


def test_future_format_is_refused(tmp_path: Path) -> None:
    pkg = write_package(tmp_path / "pkg", files=FILES, manifest=FIELDS)
    manifest = json.loads((pkg / "package.json").read_text())
    manifest["format_version"] = 99
    (pkg / "package.json").write_text(json.dumps(manifest))
    with pytest.raises(PackageError, match="format 99 is not supported"):
        read_manifest(pkg)


def test_existing_destination_is_not_clobbered(tmp_path: Path) -> None:
    write_package(tmp_path / "pkg", files=FILES, manifest={**FIELDS, "v": 1})
    with pytest.raises(PackageError, match="already exists"):
        write_package(tmp_path / "pkg", files=FILES, manifest={**FIELDS, "v": 2})
    assert read_manifest(tmp_path / "pkg")["v"] == 1


def test_required_files_enforced(tmp_path: Path) -> None:
    with pytest.raises(PackageError, match=r"without model\.safetensors"):
        write_package(
            tmp_path / "pkg", files={k: v for k, v in FILES.items() if k != "model.safetensors"}, manifest=FIELDS
        )
    assert not (tmp_path / "pkg").exists()


def test_a_rewrite_carries_the_fields_and_stamps_its_own(tmp_path: Path) -> None:
    write_package(tmp_path / "p", files=FILES, manifest={**FIELDS, "seekforge_version": "0.0.1"})
    old = read_manifest(tmp_path / "p")
    assert old["seekforge_version"] == "0.0.1"
    assert carried_fields(old, drop=("created",)) == FIELDS
    new = add_to_package(
        tmp_path / "p", files={"extra/x.bin": b"x"}, manifest={"exports": {"x": {"file": "extra/x.bin"}}}
    )
    assert (
        new["task"] == "binary"
        and new["exports"] == {"x": {"file": "extra/x.bin"}}
        and new["created"] == old["created"]
    )
    assert new["seekforge_version"] != "0.0.1"  # the version that wrote the files, not the first one
    assert set(new["files"]) == set(old["files"]) | {"extra/x.bin"}
