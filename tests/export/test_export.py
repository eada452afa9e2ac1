from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from pydantic import ValidationError

import seekforge
from seekforge.core.errors import ConfigError, PackageError
from seekforge.core.hardware import hardware
from seekforge.core.package import read_manifest
from seekforge.export import ExportConfig, ExportError, ParityConfig, check_parity, export_package, operator_counts
from tests.conftest import (
    EXAMPLES,
    export_on_this_cpu,
    image_folder_recipe,
    make_tabular,
    tabular_recipe,
    text_recipe,
)


@pytest.fixture(scope="module")
def tabular_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export")
    make_tabular(200).to_csv(root / "d.csv", index=False)
    return seekforge.run(tabular_recipe(str(root / "d.csv")), runs_dir=root / "runs").package


@pytest.fixture
def package(tabular_package: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "package"
    shutil.copytree(tabular_package, copy)
    return copy


def test_export_adds_a_checked_onnx_model(package: Path) -> None:
    before = read_manifest(package)["files"]
    result = export_package(package)
    assert result.parity.passed and result.parity.max_abs_diff < 1e-4 and result.parity.agreement == 1.0
    manifest = read_manifest(package)  # every checksum, the new files' too
    assert {"onnx/model.onnx", "onnx/model.parity.json"} <= set(manifest["files"])
    assert all(manifest["files"][name] == digest for name, digest in before.items())  # nothing else changed
    record = manifest["exports"]["onnx"]
    assert record["parity"]["passed"] and record["opset"] == 18 and record["inputs"] == "raw"
    assert json.loads((package / "onnx" / "model.parity.json").read_text()) == record


def test_onnxruntime_backend_predicts_like_torch(package: Path) -> None:
    export_package(package)
    frame = make_tabular(50, seed=4)
    auto = seekforge.load(package)
    torch_backend = seekforge.load(package, backend="torch")
    assert auto.backend == "onnxruntime" and torch_backend.backend == "torch"
    a, b = auto.predict(frame), torch_backend.predict(frame)
    assert (a["prediction"] == b["prediction"]).all()
    assert np.allclose(a["proba_buy"], b["proba_buy"], atol=1e-5)


def test_backend_without_export_is_refused(package: Path) -> None:
    with pytest.raises(PackageError, match="the onnx export that backend 'onnxruntime' runs is missing"):
        seekforge.load(package, backend="onnxruntime")
    with pytest.raises(PackageError, match="--format openvino --precision int8"):
        seekforge.load(package, backend="openvino-int8")


def test_failed_gate_writes_nothing_unless_forced(package: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from seekforge.export import _onnx

    original = _onnx.OnnxRunner.__call__

    def drifting(self: _onnx.OnnxRunner, inputs: dict[str, torch.Tensor], **kwargs: object) -> torch.Tensor:
        return original(self, inputs) + 0.05

    monkeypatch.setattr(_onnx.OnnxRunner, "__call__", drifting)
    before = {p.name for p in package.rglob("*")}
    with pytest.raises(ExportError, match=r"failed the parity gate .* max abs difference 0\.05"):
        export_package(package)
    assert {p.name for p in package.rglob("*")} == before
    result = export_package(package, force=True)
    assert not result.parity.passed
    assert not read_manifest(package)["exports"]["onnx"]["parity"]["passed"]
    monkeypatch.undo()
    with pytest.raises(PackageError, match="runs failed its parity gate"):
        seekforge.load(package, backend="onnxruntime")
    assert seekforge.load(package).backend == "torch"  # auto never picks a failed export


def test_tampered_export_is_refused(package: Path) -> None:
    export_package(package)
    data = bytearray((package / "onnx" / "model.onnx").read_bytes())
    data[-5] ^= 0x01
    (package / "onnx" / "model.onnx").write_bytes(bytes(data))
    with pytest.raises(PackageError, match=r"onnx/model\.onnx was modified"):
        seekforge.load(package)


def test_cnn_and_text_transformer_export(tmp_path: Path) -> None:
    digits = seekforge.run(EXAMPLES / "digits.yaml", overrides=["train.epochs=1"], runs_dir=tmp_path)
    assert export_package(digits.package).parity.passed
    texts = ["great tasty snack", "awful stale tea", "love this coffee", "never again, awful"] * 15
    frame = pd.DataFrame({"review": texts, "score": ["great", "other", "great", "other"] * 15})
    frame.to_csv(tmp_path / "t.csv", index=False)
    recipe = text_recipe(str(tmp_path / "t.csv"), output="category", hidden=16, epochs=1, batch_size=8, lr=1e-3)
    text = seekforge.run(recipe, runs_dir=tmp_path)
    assert export_package(text.package).parity.passed
    predictor = seekforge.load(text.package)
    assert predictor.backend == "onnxruntime"
    assert len(predictor.predict([{"review": "a longer review than any seen before, about stale coffee"}])) == 1


def test_parity_gate_limits() -> None:
    ref = torch.tensor([[2.0, 0.0], [0.0, 2.0], [1.0, 0.9]])
    target = torch.tensor([0, 1, 0])
    ok = check_parity(ref, ref + 1e-5, target, task="classification", limits=ParityConfig())
    assert ok.passed and ok.reference_metric == ok.candidate_metric == 1.0
    flipped = ref.clone()
    flipped[2] = torch.tensor([0.9, 1.0])
    bad = check_parity(ref, flipped, target, task="classification", limits=ParityConfig(max_abs_diff=1.0))
    assert not bad.passed and bad.agreement == pytest.approx(2 / 3)
    assert any("agreement" in f for f in bad.failures) and any("accuracy drops" in f for f in bad.failures)
    nan = check_parity(ref, ref * float("nan"), target, task="classification", limits=ParityConfig())
    assert not nan.passed
    reg = check_parity(
        torch.tensor([[1.0], [2.0]]),
        torch.tensor([[1.0], [2.0]]),
        torch.tensor([1.0, 2.0]),
        task="regression",
        limits=ParityConfig(),
    )
    assert reg.passed and reg.metric == "r2"


def test_export_config_rejects_unsupported_precision() -> None:
    with pytest.raises(ValueError, match="int8"):
        ExportConfig(precision="int4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="bf16 is not available for onnx; choose one of fp32, fp16, int8"):
        ExportConfig(precision="bf16")
    with pytest.raises(ValueError, match="fp16 is not available for openvino"):
        ExportConfig(format="openvino", precision="fp16")
    with pytest.raises(ValueError, match="optimize_graph applies to ONNX fp32"):
        ExportConfig(precision="int8", optimize_graph=True)
    with pytest.raises(ValueError, match="quantization applies to ONNX int8"):
        ExportConfig(format="openvino", precision="int8", quantization="static")


@pytest.mark.parametrize(
    ("config", "backend"),
    [
        (ExportConfig(optimize_graph=True), "onnxruntime-optimized"),
        (ExportConfig(precision="fp16"), "onnxruntime-fp16"),
        (ExportConfig(format="openvino"), "openvino"),
        (ExportConfig(format="openvino", precision="bf16"), "openvino-bf16"),
        (ExportConfig(format="openvino", precision="int8"), "openvino-int8"),
    ],
)
def test_every_variant_passes_its_gate_and_predicts(package: Path, config: ExportConfig, backend: str) -> None:
    result = export_on_this_cpu(package, config)
    if result is None:  # int8 without VNNI, refused by its gate with its numbers; nothing was written
        return
    assert result.parity.passed and result.path.is_file() and result.record["backend"] == backend
    assert result.record["inputs"] == ("raw" if config.format == "onnx" else "encoded")
    manifest = read_manifest(package)
    assert set(manifest["exports"]) == {config.variant.name}
    if config.format == "openvino":
        assert result.path.with_suffix(".bin").is_file() and result.bytes > result.path.stat().st_size
    if backend == "openvino-int8":  # its scales and biases are stored in fp16; the gate above judged them
        assert result.record["fp16_constants"] > 0
    if config.optimize_graph:  # what onnxruntime fused, counted against the graph it started from
        graph = result.record["graph"]
        assert graph["nodes"][1] < graph["nodes"][0] and graph["added"] and graph["removed"]
        assert set(graph["added"]) <= set(operator_counts(result.path))  # the fused kernels are in the file
    frame = make_tabular(40, seed=5)
    predictor = seekforge.load(package, backend=backend)
    reference = seekforge.load(package, backend="torch").predict(frame)
    agree = (predictor.predict(frame)["prediction"] == reference["prediction"]).mean()
    assert agree >= 0.95


def test_raw_graph_preprocesses_like_the_preprocessor(package: Path) -> None:
    """Missing numbers, unseen and missing categories, binary synonyms: the graph agrees with torch."""
    export_package(package)
    records = [
        {"x1": 0.3, "x2": None, "city": "oslo", "member": "yes"},
        {"x1": float("nan"), "x2": 1.0, "city": "lima", "member": None},
        {"x1": "2.5", "x2": -1, "city": None, "member": "NO"},
    ]
    onnx = seekforge.load(package, backend="onnxruntime")
    assert onnx.raw
    torch_proba = seekforge.load(package, backend="torch").predict_proba(records)
    assert np.allclose(onnx.predict_proba(records), torch_proba, atol=1e-5)
    from seekforge.runtime import load as runtime_load

    runtime = runtime_load(package)
    assert np.allclose(runtime.predict_proba(records), torch_proba, atol=1e-5)
    assert runtime.predict(records)["prediction"] == list(onnx.predict(records)["prediction"])
    from seekforge.core.errors import DataError

    with pytest.raises(DataError, match="binary column 'member' holds 'maybe'"):
        runtime.predict([{"x1": 1, "x2": 1, "city": "oslo", "member": "maybe"}])
    with pytest.raises(DataError, match="row 0: numeric column 'x1' holds 'abc'"):
        runtime.predict({"x1": ["abc"], "x2": [1], "city": ["oslo"], "member": ["yes"]})
    with pytest.raises(DataError, match="lack the input column"):
        runtime.predict([{"x1": 1}])
    with pytest.raises(DataError, match="nothing to predict"):
        runtime.predict([])
    # pandas' own missing markers, from a nullable column, are missing values on every path
    nullable = pd.DataFrame(records[:1] * 2).astype({"member": "string"})
    nullable.loc[1, "member"] = pd.NA
    assert np.allclose(onnx.predict_proba(nullable), seekforge.load(package, backend="torch").predict_proba(nullable))
    with pytest.raises(DataError, match="records row 2: binary column 'member' holds 'maybe'"):
        onnx.predict([records[0], {**records[0], "member": "maybe"}])


def test_runtime_never_imports_torch(package: Path) -> None:
    """The runtime path, in a fresh interpreter where importing torch, pandas or sklearn fails."""
    import subprocess
    import sys

    export_package(package)
    code = (
        "import sys\n"
        "for name in ('torch', 'pandas', 'sklearn', 'safetensors'):\n"
        "    sys.modules[name] = None\n"
        "from seekforge.runtime import load\n"
        f"out = load({str(package)!r}).predict([{{'x1': 1.0, 'x2': 0.5, 'city': 'rome', 'member': 'no'}}])\n"
        "assert out['prediction'][0] in ('buy', 'skip'), out\n"
        "heavy = [m for m, mod in sys.modules.items() if mod is not None and m.split('.')[0] in "
        "('torch', 'pandas', 'sklearn')]\n"
        "assert not heavy, heavy\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_runtime_refuses_packages_it_cannot_serve(package: Path) -> None:
    from seekforge.runtime import load as runtime_load

    with pytest.raises(PackageError, match="has no fp32 ONNX export"):
        runtime_load(package)
    export_package(package, ExportConfig(format="openvino"))
    with pytest.raises(PackageError, match="has no fp32 ONNX export"):
        runtime_load(package)


def test_int8_dynamic_for_mlp_and_static_for_cnn(package: Path, tmp_path: Path) -> None:
    result = export_package(package, ExportConfig(precision="int8"))
    assert result.record["quantization"] == "dynamic" and result.parity.passed
    assert result.path.name == "model-int8.onnx"
    int8 = seekforge.load(package, backend="onnxruntime-int8")
    assert int8.backend == "onnxruntime-int8" and len(int8.predict(make_tabular(5))) == 5
    assert seekforge.load(package).backend == "torch"  # auto prefers an exact fp32 export; there is none
    digits = seekforge.run(EXAMPLES / "digits.yaml", overrides=["train.epochs=2"], runs_dir=tmp_path)
    cnn = export_package(digits.package, ExportConfig(precision="int8"))
    assert cnn.record["quantization"] == "static" and cnn.parity.passed
    fp32 = export_package(digits.package)
    assert cnn.bytes < fp32.bytes / 2.5
    assert set(read_manifest(digits.package)["exports"]) == {"onnx", "onnx-int8"}
    # asked for dynamic INT8, a CNN keeps its convolutions in float: never a ConvInteger graph on CPU
    dynamic = export_package(digits.package, ExportConfig(precision="int8", quantization="dynamic"))
    operators = operator_counts(dynamic.path)
    assert dynamic.record["quantization"] == "dynamic" and dynamic.parity.passed
    assert "ConvInteger" not in operators and operators["Conv"] >= 1 and "MatMulInteger" in operators


def test_bench_times_every_backend_the_package_holds(package: Path) -> None:
    from seekforge.export import bench_package

    with pytest.raises(ConfigError, match="has no onnxruntime backend; it has: torch"):
        bench_package(package, backends=["onnxruntime"])
    export_package(package)
    rows = bench_package(package, batches=(1, 4), threads=1, seconds=0.05, warmup=1)
    assert [(r.backend, r.batch) for r in rows] == [("torch", 1), ("torch", 4), ("onnxruntime", 1), ("onnxruntime", 4)]
    for row in rows:
        assert row.runs >= 10 and row.threads == 1
        assert 0 < row.p50_ms <= row.p90_ms <= row.p99_ms and row.rows_per_s > 0


def test_optimize_keeps_the_fastest_variant_within_budget(package: Path, tmp_path: Path) -> None:
    from seekforge.export import optimize_package

    before = sorted(p.name for p in package.rglob("*"))
    result = optimize_package(package, tmp_path / "optimized", seconds=0.1)
    assert sorted(p.name for p in package.rglob("*")) == before  # the source package is left as it was
    manifest = read_manifest(result.package)
    assert manifest["optimize"]["selected"] == result.selected == manifest["serving"]["backend"]
    assert manifest["lineage"]["parent"] == str(package.resolve())
    assert [c.backend for c in result.candidates] == [
        "torch",
        "onnxruntime",
        "onnxruntime-optimized",
        "onnxruntime-int8",
        "openvino",
        "openvino-bf16",
        "openvino-int8",
    ]
    assert seekforge.load(result.package).backend == result.selected
    assert all(c.verdict for c in result.candidates)
    assert manifest["optimize"]["hardware"] == hardware().to_dict()
    for c in result.candidates:  # skipped only where the hardware decides, and it says why with numbers
        if c.metric is None and c.backend == "openvino-bf16":
            assert not hardware().bf16 and c.verdict.startswith("not built: OpenVINO bf16 computes in bfloat16 only")
        elif c.metric is None:
            assert c.backend.endswith("-int8") and not hardware().vnni, c
            assert c.verdict.startswith("not built: ") and "failed the parity gate" in c.verdict


def test_selection_never_keeps_a_slower_or_worse_variant() -> None:
    from seekforge.export import Candidate
    from seekforge.export._optimize import select

    torch_row = Candidate("torch", 0.95, 0.0, 1.0, 10.0, "")
    slower = Candidate("onnxruntime", 0.95, 0.0, 0.5, 11.0, "")  # faster at batch 1, slower at 32
    worse = Candidate("onnxruntime-int8", 0.90, 0.05, 0.2, 2.0, "")
    chosen, judged = select([torch_row, slower, worse], budget=0.01)
    assert chosen == "torch"
    assert "slower than torch" in judged[1].verdict and "accuracy drop" in judged[2].verdict
    good = Candidate("onnxruntime-int8", 0.948, 0.002, 0.2, 2.0, "")
    assert select([torch_row, slower, good], budget=0.01)[0] == "onnxruntime-int8"


def test_a_gpu_target_without_cuda_is_refused(package: Path, tmp_path: Path) -> None:
    """(an edge target builds: see the image model's test below)"""
    from seekforge.export import optimize_package

    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    with pytest.raises(ConfigError, match="CUDA"):
        optimize_package(package, tmp_path / "gpu", target="gpu")
    assert not (tmp_path / "gpu").exists()


def test_a_model_over_images_runs_channels_last_and_an_edge_target_builds_int8(tmp_path: Path) -> None:
    from seekforge.export import bench_package, optimize_package
    from seekforge.export._convert import check_target

    image = seekforge.run(image_folder_recipe(tmp_path, per_class=6, epochs=1), runs_dir=tmp_path / "runs").package
    rows = pd.DataFrame({"image": sorted(str(p) for p in (tmp_path / "img").rglob("*.png"))})
    torch_rows = seekforge.load(image, backend="torch").predict(rows)
    nhwc = seekforge.load(image, backend="torch-channels-last")
    assert nhwc.backend == "torch-channels-last"
    assert np.allclose(nhwc.predict(rows)["proba_light"], torch_rows["proba_light"], atol=1e-5)
    timed = bench_package(image, backends=["torch", "torch-channels-last"], batches=(1,), seconds=0.05, rounds=1)
    assert [r.backend for r in timed] == ["torch", "torch-channels-last"] and all(r.p50_ms > 0 for r in timed)
    result = optimize_package(image, tmp_path / "edge", target="edge", seconds=0.05)
    judged = {c.backend: c for c in result.candidates}
    assert list(judged) == ["torch", "onnxruntime-int8", "openvino-int8", "tflite-int8"]
    assert result.selected in ("torch", "onnxruntime-int8", "openvino-int8")
    try:  # a converter this machine lacks is its verdict, in the words convert would refuse with
        check_target("tflite")
    except ConfigError as exc:
        assert judged["tflite-int8"].verdict == f"not built: {exc.message}"
    assert seekforge.load(result.package).backend == result.selected


def test_channels_last_is_refused_for_a_model_without_images(package: Path) -> None:
    with pytest.raises(PackageError, match="torch-channels-last' runs a model over images"):
        seekforge.load(package, backend="torch-channels-last")


def test_optimize_refuses_an_existing_or_inner_output(package: Path, tmp_path: Path) -> None:
    from seekforge.export import optimize_package

    (tmp_path / "taken").mkdir()
    with pytest.raises(PackageError, match="already exists") as taken:
        optimize_package(package, tmp_path / "taken")
    assert "--force" in str(taken.value.hint)
    for output, overwrite in ((package / "optimized", False), (package, True), (package / "optimized", True)):
        with pytest.raises(PackageError, match="lies inside"):
            optimize_package(package, output, overwrite=overwrite)
    assert not (package / "optimized").exists()


def test_bench_and_export_need_held_out_rows(package: Path) -> None:
    from seekforge.core.package import write_package
    from seekforge.export import bench_package

    manifest = read_manifest(package)
    files = {n: package / n for n in manifest["files"] if n != "samples.safetensors"}
    fields = {k: v for k, v in manifest.items() if k not in ("files", "format_version", "seekforge_version")}
    write_package(package, files=files, manifest=fields, overwrite=True)
    for call in (lambda: bench_package(package), lambda: export_package(package)):
        with pytest.raises(PackageError, match="holds no held-out rows"):
            call()


def test_onnxruntime_errors_become_export_errors(tmp_path: Path) -> None:
    from seekforge.export import OnnxRunner

    (tmp_path / "bad.onnx").write_bytes(b"not a model")
    with pytest.raises(ExportError, match="cannot load"):
        OnnxRunner(tmp_path / "bad.onnx")


def test_qat_quantization_needs_a_package_trained_for_it(package: Path) -> None:
    with pytest.raises(ConfigError, match=r"--quantization qat exports the quantizers .* has none"):
        export_package(package, ExportConfig(precision="int8", quantization="qat"))
    with pytest.raises(ValidationError, match="quantization applies to ONNX int8 exports"):
        ExportConfig(precision="fp32", quantization="qat")


def test_reduce_range_is_for_post_training_int8() -> None:
    assert ExportConfig(precision="int8", reduce_range="on").seven_bit_weights
    assert not ExportConfig(precision="int8", reduce_range="off").seven_bit_weights
    with pytest.raises(ValueError, match="reduce_range applies to post-training int8 exports"):
        ExportConfig(reduce_range="on")
    with pytest.raises(ValueError, match="qat keeps its trained ranges"):
        ExportConfig(precision="int8", quantization="qat", reduce_range="off")


@pytest.mark.parametrize("vnni", [True, False])
def test_int8_weights_are_7_bit_where_the_cpu_has_no_vnni(
    package: Path, monkeypatch: pytest.MonkeyPatch, vnni: bool
) -> None:
    """The settings follow the CPU's facts (forced here both ways); the gate, on this CPU, judges them."""
    import dataclasses

    from seekforge.core import hardware as hw_module

    flags = {"avx2", "avx512f", "avx512bw", "avx512vl"} | ({"avx512_vnni"} if vnni else set())
    facts = dataclasses.replace(hw_module.hardware(), flags=frozenset(flags), isa_cap=None)
    monkeypatch.setattr(hw_module, "hardware", lambda: facts)
    assert ExportConfig(precision="int8").seven_bit_weights is not vnni
    onnx = export_package(package, ExportConfig(precision="int8"), force=True)
    openvino = export_package(package, ExportConfig(format="openvino", precision="int8"), force=True)
    assert onnx.record["reduce_range"] is not vnni and openvino.record["reduce_range"] is not vnni
    assert openvino.record["overflow_fix"] == ("first_layer_only" if vnni else "enable")
    # 7-bit weights pass on any CPU; 8-bit ones where this CPU (the record's) has VNNI too
    if not vnni or openvino.record["hardware"]["vnni"]:
        assert onnx.parity.passed and openvino.parity.passed
    fp32 = export_package(package)
    assert "reduce_range" not in fp32.record and fp32.record["hardware"]["isa"]
