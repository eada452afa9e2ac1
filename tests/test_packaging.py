"""The install is locked and works from source: constraints.txt pins what pyproject.toml asks for (and
constraints-federated.txt what the federated extra's own environment needs), the wheel holds every file seekforge reads at run time, and the Dockerfile seekforge prints copies only what
the source tree has (or, where a Docker engine runs, builds)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from seekforge import __version__
from seekforge.serve import dockerfile
from seekforge.serve._deploy import SOURCE_FILES

ROOT = Path(__file__).resolve().parent.parent


#: the extras the federated environment installs (the federated extra and those it names), locked apart
FEDERATED = ("federated", "text", "train")


def _lock(file: str = "constraints.txt") -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in (ROOT / file).read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, sep, version = line.partition("==")
            assert sep and ";" not in version, f"{file} pins every package exactly: {line!r}"
            pins[canonicalize_name(name)] = Version(version)
    return pins


def _requirements(federated: bool = False) -> list[Requirement]:
    """What the main lock must meet (every extra but federated), or the federated environment's."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    chosen = [e for e in extras if (e in FEDERATED if federated else e != "federated")]
    listed = project["dependencies"] + [r for extra in chosen for r in extras[extra]]
    return [Requirement(r) for r in listed if canonicalize_name(Requirement(r).name) != "seekforge"]


@pytest.mark.parametrize(("file", "federated"), [("constraints.txt", False), ("constraints-federated.txt", True)])
def test_the_lock_pins_everything_pyproject_asks_for(file: str, federated: bool) -> None:
    """Fails when pyproject.toml gains a dependency or a bound that the lock does not meet: run make lock."""
    pins = _lock(file)
    stale = [
        f"{req} (locked: {pins.get(canonicalize_name(req.name), 'missing')})"
        for req in _requirements(federated)
        if canonicalize_name(req.name) not in pins
        or not req.specifier.contains(pins[canonicalize_name(req.name)], prereleases=True)
    ]
    assert not stale, f"{file} is out of date with pyproject.toml; run: make lock ({stale})"
    assert str(pins["torch"]).startswith("2.13.0"), "torch stays at 2.13.0, the CPU build"
    assert "make lock" in (ROOT / file).read_text(encoding="utf-8").splitlines()[1]


def test_this_environment_runs_the_locked_versions() -> None:
    drift = {}
    for name, pinned in _lock().items():
        try:
            installed = Version(metadata.version(name))
        except metadata.PackageNotFoundError:
            continue
        if installed != pinned:
            drift[name] = f"{installed} installed, {pinned} locked"
    assert not drift, f"reinstall with: make install ({drift})"


def test_make_installs_through_the_lock() -> None:
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert '--constraint constraints.txt --editable ".[dev]"' in makefile
    assert re.search(r"^lock:", makefile, re.MULTILINE) and re.search(r"^upgrade-lock:", makefile, re.MULTILINE)


def test_the_wheel_holds_what_seekforge_reads_at_run_time(tmp_path: Path) -> None:
    """What ``make wheel`` and the Dockerfile's first stage run, on a copy of the source files they copy."""
    tree = tmp_path / "tree"
    for name in SOURCE_FILES:
        source = ROOT / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            tree.mkdir(exist_ok=True)
            shutil.copyfile(source, tree / name)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--wheel-dir",
            str(tmp_path / "dist"),
            str(tree),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr
    wheel = tmp_path / "dist" / f"seekforge-{__version__}-py3-none-any.whl"
    names = set(zipfile.ZipFile(wheel).namelist())
    packaged = {str(p.relative_to(ROOT / "src")) for p in (ROOT / "src" / "seekforge").rglob("*") if p.is_file()}
    wanted = {n for n in packaged if "__pycache__" not in n and not n.endswith(".pyc")}
    assert wanted <= names, sorted(wanted - names)  # code, templates, protos and py.typed alike


def _copies(text: str) -> list[tuple[str | None, str]]:
    """``(from, source)`` of each COPY line: from is None for the build context."""
    found = []
    for line in text.splitlines():
        if line.startswith("COPY "):
            words = [w for w in line.split()[1:] if not w.startswith("--chown")]
            origin = next((w.split("=", 1)[1] for w in words if w.startswith("--from=")), None)
            found.extend((origin, w) for w in [w for w in words if not w.startswith("--")][:-1])
    return found


def _build_line(text: str) -> tuple[dict[str, Path], Path]:
    line = next(line for line in text.splitlines() if line.startswith("#   docker build"))
    contexts = dict(part.split("=", 1) for part in re.findall(r"--build-context (\S+)", line))
    return {name: Path(path) for name, path in contexts.items()}, Path(line.split()[-1])


@pytest.mark.parametrize("with_wheel", [False, True])
def test_the_dockerfile_copies_only_what_exists(served_package: Path, tmp_path: Path, with_wheel: bool) -> None:
    from seekforge.core.package import read_manifest

    wheel = tmp_path / f"seekforge-{__version__}-py3-none-any.whl"
    wheel.write_bytes(b"")  # only its name and place matter here
    text = dockerfile(
        served_package,
        read_manifest(served_package),
        backend="auto",
        http_port=8000,
        grpc_port=50051,
        wheel=wheel if with_wheel else None,
    )
    contexts, tree = _build_line(text)
    assert tree == ROOT and contexts["model"] == served_package.resolve()
    stages = set(re.findall(r"^FROM \S+ AS (\S+)$", text, re.MULTILINE))
    for origin, source in _copies(text):
        if origin in stages:
            continue  # from an earlier stage
        base = tree if origin is None else contexts[origin]
        assert (base / source).exists(), f"COPY {source} from {origin or 'the build context'}: not in {base}"
    assert ("wheelhouse" in contexts) is with_wheel
    assert "RUN pip wheel" in text if not with_wheel else "RUN pip wheel" not in text
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    ignored = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert not [name for name in SOURCE_FILES if name.rstrip("/") in ignored]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("docker") is None, reason="needs a Docker engine; the test above checks the steps")
def test_the_dockerfile_builds_an_image_that_serves(served_package: Path, tmp_path: Path) -> None:
    from seekforge.core.package import read_manifest

    if subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode != 0:
        pytest.skip("docker is installed but no engine runs; test_the_dockerfile_copies_only_what_exists checks it")
    text = dockerfile(served_package, read_manifest(served_package), backend="auto", http_port=8000, grpc_port=50051)
    (tmp_path / "Dockerfile").write_text(text)
    contexts, tree = _build_line(text)
    build = ["docker", "build", "-t", "seekforge-test:latest", "-f", str(tmp_path / "Dockerfile")]
    build += [f"--build-context={name}={path}" for name, path in contexts.items()] + [str(tree)]
    done = subprocess.run(build, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stderr[-4000:]
