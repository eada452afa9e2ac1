"""Hostile packages: every file a package names stays inside its folder, package.json keeps to its schema
and limits, model.json and the weights are checked against each other and the limits before anything
is allocated, and rewriting a package (export) writes nothing outside its output."""

from __future__ import annotations

import json
import os
import struct
from pathlib import Path
from typing import Any

import pytest

import seekforge
from seekforge.core.errors import PackageError, SeekforgeError
from seekforge.core.package import read_manifest
from seekforge.export import ExportConfig, export_package
from tests.security.hostile import SECRET_SHA256, hostile, refused, rehash, seekforge_limited

BACKENDS = ("torch", "onnxruntime")


def _open(package: Path, backend: str) -> Any:
    return seekforge.load(package, backend=backend)


def _list(manifest: dict[str, Any], name: str, digest: str) -> None:
    manifest["files"][name] = digest


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_listed_name_with_dotdot_or_an_absolute_path_is_refused_unread(
    served_package: Path, tmp_path: Path, outside: Path, backend: str
) -> None:
    secret = outside / "secret.txt"
    for name, case in (("../outside/secret.txt", "dotdot"), (str(secret), "absolute")):
        package = hostile(served_package, tmp_path / case, lambda m, n=name: _list(m, n, SECRET_SHA256))
        problem = "'.' or '..' part" if case == "dotdot" else "is an absolute path"
        with pytest.raises(PackageError, match=f"the file name .* {problem}"):
            _open(package, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_symbolic_link_leading_out_of_the_package_is_refused_unread(
    served_package: Path, tmp_path: Path, outside: Path, backend: str
) -> None:
    secret = outside / "secret.txt"
    files = hostile(served_package, tmp_path / "file", lambda m: _list(m, "notes.txt", SECRET_SHA256))
    (files / "notes.txt").symlink_to(secret)
    folders = hostile(served_package, tmp_path / "folder", lambda m: _list(m, "extra/secret.txt", SECRET_SHA256))
    (folders / "extra").symlink_to(outside, target_is_directory=True)
    weights = hostile(served_package, tmp_path / "weights")  # the real weights, kept beside the package
    (tmp_path / "elsewhere").mkdir()
    os.replace(weights / "model.safetensors", tmp_path / "elsewhere" / "model.safetensors")
    (weights / "model.safetensors").symlink_to(tmp_path / "elsewhere" / "model.safetensors")
    for package in (files, folders, weights):
        with pytest.raises(PackageError, match="leads outside the package folder"):
            _open(package, backend)


def test_a_manifest_that_is_a_link_out_of_the_package_is_refused(
    served_package: Path, tmp_path: Path, outside: Path
) -> None:
    package = hostile(served_package, tmp_path / "p")
    (package / "package.json").unlink()
    (package / "package.json").symlink_to(outside / "secret.txt")
    with pytest.raises(PackageError, match=r"package\.json leads outside the package folder"):
        read_manifest(package)


def test_an_export_of_a_hostile_package_writes_nothing_outside(
    served_package: Path, tmp_path: Path, outside: Path
) -> None:
    """The first finding: an entry reached through a link inside the package, followed by ``..``, made
    export write a file of the package's choosing."""
    target = "inside/" + "../" * 8 + str(outside / "written.txt").lstrip("/")
    package = hostile(served_package, tmp_path / "p", lambda m: _list(m, target, "0" * 64))
    (package / "inside").symlink_to(outside, target_is_directory=True)
    with pytest.raises(PackageError, match=r"'\.' or '\.\.' part"):
        export_package(package, ExportConfig(format="onnx", precision="fp16"))


def test_an_export_file_that_is_not_a_file_of_the_package_is_refused(
    served_package: Path, tmp_path: Path, outside: Path
) -> None:
    package = hostile(
        served_package, tmp_path / "p", lambda m: m["exports"]["onnx"].update(file="../outside/secret.txt")
    )
    with pytest.raises(PackageError, match=r"exports\.onnx\.file: '\.\./outside/secret\.txt' is not a file"):
        _open(package, "onnxruntime")


def _deep(levels: int) -> str:
    return '{"a": ' * levels + "1" + "}" * levels


MANIFESTS = {
    "nested 100,000 deep": (_deep(100_000), "nested more than 32 levels deep"),
    "a list": ("[1, 2]", "the manifest is a list, not an object"),
    "not JSON": ('{"files": ', "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(MANIFESTS))
def test_a_manifest_that_is_not_a_manifest_is_one_clear_error(served_package: Path, tmp_path: Path, case: str) -> None:
    raw, message = MANIFESTS[case]
    with pytest.raises(PackageError, match=message):
        read_manifest(hostile(served_package, tmp_path / "p", raw=raw))


EDITS = {
    "files are numbers": (
        lambda m: m["files"].update({"model.json": 7}),
        r"files\.model\.json: input should be a valid string",
    ),
    "a digest that is no sha256": (lambda m: m["files"].update({"model.json": "abc"}), "should match pattern"),
    "no name": (lambda m: m.pop("name"), "name: field required"),
    "a name that is a path": (lambda m: m.update(name="../../elsewhere"), "name: string should match pattern"),
    "inputs of the wrong type": (lambda m: m.update(inputs={"a": 1}), "inputs: input should be a valid list"),
    "a feature name that is a number": (lambda m: m["inputs"][0].update(name=3), r"inputs\.0\.name"),
    "a lone surrogate": (lambda m: m["inputs"][0].update(name="\ud800"), r"holds \\ud800, a lone surrogate escape"),
    "a field nested 900 deep": (lambda m: m.update(notes=json.loads(_deep(900))), "nested more than 32 levels"),
    "a format that is no number": (
        lambda m: m.update(format_version=True),
        "format_version: input should be a valid integer",
    ),
}


@pytest.mark.parametrize("case", sorted(EDITS))
def test_a_manifest_outside_its_schema_is_one_clear_error(served_package: Path, tmp_path: Path, case: str) -> None:
    edit, message = EDITS[case]
    with pytest.raises(PackageError, match=message):
        read_manifest(hostile(served_package, tmp_path / "p", edit))


def _model_json(package: Path, edit: Any) -> None:
    spec = json.loads((package / "model.json").read_text())
    edit(spec)
    (package / "model.json").write_text(json.dumps(spec))
    rehash(package, "model.json")


def test_a_model_beyond_the_parameter_limit_is_refused_before_it_is_built(served_package: Path, tmp_path: Path) -> None:
    package = hostile(served_package, tmp_path / "p")
    _model_json(package, lambda s: s["config"].update(hidden=[1_000_000_000]))
    with pytest.raises(PackageError, match=r"a model of [\d,]+ parameters, more than the limit of 2,000,000,000"):
        _open(package, "torch")


def test_an_image_model_whose_activations_exceed_the_limit_is_refused(served_package: Path, tmp_path: Path) -> None:
    package = hostile(served_package, tmp_path / "p")
    _model_json(
        package,
        lambda s: (
            s["config"].clear(),
            s["config"].update(type="cnn"),
            s["io"].update(image_shape=[3, 50_000, 50_000], numeric_dim=0),
        ),
    )
    with pytest.raises(PackageError, match=r"MiB of activations for one row, more than the limit of 256 MiB"):
        _open(package, "torch")


def test_io_sizes_that_are_not_counts_are_refused(served_package: Path, tmp_path: Path) -> None:
    package = hostile(served_package, tmp_path / "p")
    _model_json(package, lambda s: s["io"].update(numeric_dim=-4))
    with pytest.raises(
        PackageError, match=r"model\.json: not a model description \(its io sizes must be non-negative whole numbers\)"
    ):
        _open(package, "torch")


def _header(tensors: dict[str, Any]) -> bytes:
    header = json.dumps(tensors).encode()
    return struct.pack("<Q", len(header)) + header


WEIGHTS = {
    "cut short": (b"\x01\x02", "shorter than its 8-byte header length"),
    "a header longer than the file": (struct.pack("<Q", 10**12) + b"{}", "its header claims 1,000,000,000,000 bytes"),
    "a header that is not JSON": (struct.pack("<Q", 4) + b"{{{{", "its header is not JSON"),
    "a 4 TB tensor": (
        _header({"body.0.weight": {"dtype": "F32", "shape": [1 << 20, 1 << 20], "data_offsets": [0, 4 << 40]}}),
        "tensor 'body.0.weight' has a malformed entry or its bytes lie outside the file",
    ),
    "bytes that do not match the shape": (
        _header({"body.0.weight": {"dtype": "F32", "shape": [4, 4], "data_offsets": [0, 8]}}) + b"\x00" * 8,
        r"tensor 'body.0.weight' of shape \[4, 4\] does not match its 8 bytes",
    ),
}


@pytest.mark.parametrize("case", sorted(WEIGHTS))
def test_damaged_weights_are_one_clear_error(served_package: Path, tmp_path: Path, case: str) -> None:
    data, message = WEIGHTS[case]
    package = hostile(served_package, tmp_path / "p")
    (package / "model.safetensors").write_bytes(data)
    rehash(package, "model.safetensors")
    with pytest.raises(PackageError, match=message):
        _open(package, "torch")


def test_a_preprocessor_nested_too_deeply_is_one_clear_error(served_package: Path, tmp_path: Path) -> None:
    package = hostile(served_package, tmp_path / "p")
    (package / "preprocessor.json").write_text(_deep(100_000))
    rehash(package, "preprocessor.json")
    for backend in BACKENDS:
        with pytest.raises(PackageError, match=r"preprocessor\.json: nested too deeply to read"):
            _open(package, backend)


def test_the_cli_refuses_hostile_packages_with_one_line_exit_2_and_bounded_memory(
    served_package: Path, tmp_path: Path
) -> None:
    """Through the real command, under a memory cap far below what these packages ask for."""
    huge = hostile(served_package, tmp_path / "huge")
    _model_json(huge, lambda s: s["config"].update(hidden=[1_000_000_000]))
    claim = hostile(served_package, tmp_path / "claim")
    (claim / "model.safetensors").write_bytes(WEIGHTS["a 4 TB tensor"][0])
    rehash(claim, "model.safetensors")
    deep = hostile(served_package, tmp_path / "deep", raw=_deep(100_000))
    rows = tmp_path / "rows.csv"
    rows.write_text("x\n1\n")
    refused(seekforge_limited("predict", str(huge), str(rows), "-o", "out.csv", "--backend", "torch", cwd=tmp_path),
            "more than the limit of 2,000,000,000")  # fmt: skip
    refused(seekforge_limited("export", str(claim), cwd=tmp_path), "is not a valid safetensors file")
    refused(seekforge_limited("serve", str(deep), cwd=tmp_path), "nested more than 32 levels deep")
    refused(
        seekforge_limited("--max-model-parameters", "10", "predict", str(served_package), str(rows), "-o", "o.csv",
                          "--backend", "torch", cwd=tmp_path),
        "more than the limit of 10",
    )  # fmt: skip
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "o.csv").exists()


def test_an_onnx_export_whose_weights_lie_outside_the_package_is_refused(
    served_package: Path, tmp_path: Path, outside: Path
) -> None:
    """An initializer stored as external data at ``../outside/secret.txt``: onnxruntime refuses a path
    that leaves the model's folder, and the refusal is one PackageError."""
    import onnx

    package = hostile(served_package, tmp_path / "p")
    graph = onnx.load(str(package / "onnx" / "model.onnx"))
    weight = next(t for t in graph.graph.initializer if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) == 2)
    weight.ClearField("raw_data")
    weight.ClearField("float_data")
    weight.data_location = onnx.TensorProto.EXTERNAL
    for key, value in {"location": "../../outside/secret.txt", "offset": "0", "length": "8"}.items():
        weight.external_data.add(key=key, value=value)
    (package / "onnx" / "model.onnx").write_bytes(graph.SerializeToString())
    rehash(package, "onnx/model.onnx")
    with pytest.raises(SeekforgeError, match=r"cannot load .*External data path escapes model directory") as refused:
        _open(package, "onnxruntime")
    assert "names weights outside its folder" in str(refused.value.hint)
