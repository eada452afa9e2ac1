"""An ONNX model made elsewhere, imported as a package: its metrics are the graph's own on the test rows,
the classes keep the model's order, a graph ending in probabilities or giving values is read as such; the
package then predicts on every backend, exports raw-input graphs that pass the parity gate (fp32, INT8)
and runs on the torch-free runtime; what does not fit the declaration is refused in one line, nothing
written; the imported file is never touched."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import seekforge  # noqa: E402
from seekforge.core.errors import ConfigError, DataError, PackageError  # noqa: E402
from seekforge.core.package import read_manifest  # noqa: E402
from seekforge.export import ExportConfig, ExportError, export_package  # noqa: E402
from seekforge.model_import import import_onnx  # noqa: E402
from tests.integration.cli import assert_user_error  # noqa: E402
from tests.integration.cli import seekforge as cli  # noqa: E402

WEIGHTS = np.array([[1.0, -0.5], [2.0, 0.5], [0.0, 1.0]], dtype=np.float32)


def linear_graph(path: Path, *, ending: str = "logits", outputs: int = 2, output: str = "scores",
                 rows: int | str = "n", dtype: int = TensorProto.FLOAT, inner: str = "raw") -> Path:  # fmt: skip
    """``x [n, 3] @ W + b``, then nothing (logits), a softmax (probabilities), or one column (values)."""
    weights = WEIGHTS[:, :outputs]
    cast = [helper.make_node("Cast", ["x"], ["x32"], to=TensorProto.FLOAT)] if dtype != TensorProto.FLOAT else []
    nodes = [*cast, helper.make_node("MatMul", ["x32" if cast else "x", "W"], ["mm"]),
             helper.make_node("Add", ["mm", "B"], [inner])]  # fmt: skip
    last = {"logits": "Identity", "probabilities": "Softmax", "values": "Identity"}[ending]
    nodes.append(helper.make_node(last, [inner], [output]))
    graph = helper.make_graph(
        nodes, "linear", [helper.make_tensor_value_info("x", dtype, [rows, 3])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [rows, outputs])],
        initializer=[numpy_helper.from_array(weights, "W"), numpy_helper.from_array(np.full(outputs, 0.1, np.float32), "B")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], producer_name="hand")
    model.ir_version = 10
    onnx.save(model, path)
    return path


def rows(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    scores = x @ WEIGHTS + 0.1
    return pd.DataFrame(x, columns=["a", "b", "c"]).assign(
        label=np.where(scores[:, 0] > scores[:, 1], "stay", "leave"), amount=scores[:, 0]
    )


def declaration(path: Path, *, output: dict[str, str], **extra: object) -> Path:
    spec = {"features": {"inputs": [{"name": c, "type": "numeric"} for c in "abc"], "output": output}, **extra}
    path.write_text(yaml.safe_dump(spec))
    return path


def direct(model: Path, frame: pd.DataFrame) -> np.ndarray:
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": frame[["a", "b", "c"]].to_numpy(np.float32)})[0]


def test_a_classifier_imports_in_its_own_class_order_and_exports(tmp_path: Path) -> None:
    model = linear_graph(tmp_path / "churn.onnx")
    before = (model.read_bytes(), model.stat().st_mtime_ns)
    test, fresh = rows(300, 0), rows(40, 1)
    test.to_csv(tmp_path / "test.csv", index=False)
    fresh.drop(columns="label").to_csv(tmp_path / "cal.csv", index=False)
    spec = declaration(tmp_path / "spec.yaml", output={"name": "label", "type": "binary"}, classes=["stay", "leave"])
    result = import_onnx(model, spec, tmp_path / "pkg", test=tmp_path / "test.csv", calibration=tmp_path / "cal.csv")
    expected = np.where(direct(model, test).argmax(axis=1) == 0, "stay", "leave")  # column 0 is "stay"
    assert result.metrics["accuracy"] == pytest.approx((expected == test["label"]).mean()) == 1.0
    manifest = read_manifest(result.package)
    assert manifest["model"]["type"] == "onnx" and manifest["output"]["classes"] == ["stay", "leave"]
    assert manifest["lineage"]["imported"]["operators"] == {"Add": 1, "Identity": 1, "MatMul": 1}
    assert manifest["data"]["rows"] == {"test": 300, "calibration": 40}
    assert set(json.loads((result.package / "reference.json").read_text())["features"]) == {"a", "b", "c"}
    logits = direct(model, fresh)
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    for backend in ("torch",):
        shown = seekforge.load(result.package, backend=backend).predict(fresh)
        assert list(shown["prediction"]) == list(np.where(logits.argmax(axis=1) == 0, "stay", "leave"))
        assert np.allclose(shown["proba_stay"], probabilities[:, 0], atol=1e-6)
    fp32 = export_package(result.package)
    assert fp32.parity.passed and fp32.record["inputs"] == "raw" and fp32.parity.max_abs_diff < 1e-5
    assert export_package(result.package, ExportConfig(precision="int8")).parity.passed
    from seekforge.runtime import load as runtime_load

    served = runtime_load(result.package).predict(fresh.to_dict(orient="list"))
    assert list(served["prediction"]) == list(shown["prediction"])  # torch-free, from the raw values
    assert (model.read_bytes(), model.stat().st_mtime_ns) == before


def test_probabilities_and_values_are_read_as_the_graph_gives_them(tmp_path: Path) -> None:
    test = rows(120, 2)
    test.to_csv(tmp_path / "test.csv", index=False)
    softmax = linear_graph(tmp_path / "soft.onnx", ending="probabilities")
    spec = declaration(tmp_path / "soft.yaml", output={"name": "label", "type": "binary"}, classes=["stay", "leave"],
                       graph={"scores": "probabilities"})  # fmt: skip
    package = import_onnx(softmax, spec, tmp_path / "soft", test=tmp_path / "test.csv").package
    shown = seekforge.load(package, backend="torch").predict(test)
    assert np.allclose(shown["proba_leave"], direct(softmax, test)[:, 1], atol=1e-5)
    assert export_package(package).parity.passed
    regressor = linear_graph(tmp_path / "amount.onnx", ending="values", outputs=1)
    spec = declaration(tmp_path / "amount.yaml", output={"name": "amount", "type": "numeric"})
    result = import_onnx(regressor, spec, tmp_path / "amount", test=tmp_path / "test.csv")
    assert result.metrics["r2"] == pytest.approx(1.0) and result.metrics["mae"] < 1e-5  # the values, in their units
    assert np.allclose(seekforge.load(result.package).predict(test)["prediction"], test["amount"], atol=1e-5)
    assert export_package(result.package).parity.passed


def test_what_does_not_fit_the_declaration_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    model = linear_graph(tmp_path / "m.onnx")
    rows(50, 3).to_csv(tmp_path / "test.csv", index=False)
    binary = {"name": "label", "type": "binary"}
    numbers = [{"name": c, "type": "numeric"} for c in "abc"]

    def spec(inputs: list[dict[str, str]], **extra: object) -> dict[str, object]:
        return {"features": {"inputs": inputs, "output": binary}, "classes": ["stay", "leave"], **extra}

    cases = [
        (ConfigError, "an imported graph takes numeric inputs", spec([{"name": "a", "type": "category"}])),
        (ConfigError, "classes: a classifier's classes", {"features": {"inputs": numbers, "output": binary}}),
        (DataError, "takes 3 features, and 2 are declared", spec(numbers[:2])),
        (DataError, "are not among classes", spec(numbers, classes=["yes", "no"])),
        (DataError, "has no output 'probs'", spec(numbers, graph={"output": "probs"})),
    ]
    for kind, message, spec in cases:
        (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
        with pytest.raises(kind, match=message):
            import_onnx(model, tmp_path / "spec.yaml", tmp_path / "pkg", test=tmp_path / "test.csv")
        assert not (tmp_path / "pkg").exists()
    good = declaration(tmp_path / "good.yaml", output=binary, classes=["stay", "leave"])
    stays = rows(50, 3)
    stays[stays["label"] == "stay"].to_csv(tmp_path / "one.csv", index=False)
    with pytest.raises(DataError, match="at least two of its classes"):
        import_onnx(model, good, tmp_path / "pkg", test=tmp_path / "one.csv")
    rows(50, 3).drop(columns="c").to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(DataError, match="lacks the declared column"):
        import_onnx(model, good, tmp_path / "pkg", test=tmp_path / "short.csv")
    (tmp_path / "pkg").mkdir()
    with pytest.raises(PackageError, match="already exists"):
        import_onnx(model, good, tmp_path / "pkg", test=tmp_path / "test.csv")


def test_the_cli_imports_and_the_package_predicts(tmp_path: Path) -> None:
    model = linear_graph(tmp_path / "churn.onnx")
    rows(80, 4).to_csv(tmp_path / "test.csv", index=False)
    declaration(tmp_path / "spec.yaml", output={"name": "label", "type": "binary"}, classes=["stay", "leave"])
    done = cli("import", str(model), "-o", "pkg", "--inputs", "spec.yaml", "--test", "test.csv", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["metrics"]["accuracy"] == 1.0
    predicted = cli("predict", "pkg", "test.csv", "-o", "p.csv", cwd=tmp_path)
    assert predicted.returncode == 0, predicted.stderr
    assert list(pd.read_csv(tmp_path / "p.csv")["prediction"]) == list(pd.read_csv(tmp_path / "test.csv")["label"])
    assert_user_error(cli("import", str(model), "-o", "other", cwd=tmp_path), "--output needs --inputs")


def test_a_recipe_cannot_train_an_imported_model_type(tmp_path: Path) -> None:
    from tests.conftest import make_tabular, tabular_recipe

    make_tabular(60).to_csv(tmp_path / "d.csv", index=False)
    recipe = {**tabular_recipe(str(tmp_path / "d.csv")), "model": {"type": "onnx", "size": 10, "feeds": {"numeric": "x"},
                                                                    "output": "y"}}  # fmt: skip
    with pytest.raises(ConfigError, match="imported with seekforge import; it is not trained"):
        seekforge.run(recipe, runs_dir=tmp_path / "runs")


def brightness_graph(path: Path) -> Path:
    """The mean of an image's pixels (as fed) against 0: ``[n, 3, h, w]`` in, two logits out."""
    nodes = [
        helper.make_node("ReduceMean", ["pixels", "axes"], ["mean"], keepdims=0),
        helper.make_node("Unsqueeze", ["mean", "one"], ["column"]),
        helper.make_node("MatMul", ["column", "W"], ["scores"]),
    ]
    graph = helper.make_graph(
        nodes, "brightness", [helper.make_tensor_value_info("pixels", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", 2])],
        initializer=[numpy_helper.from_array(np.array([1, 2, 3], np.int64), "axes"),
                     numpy_helper.from_array(np.array([1], np.int64), "one"),
                     numpy_helper.from_array(np.array([[-10.0, 10.0]], np.float32), "W")],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 10
    onnx.save(model, path)
    return path


def test_an_image_model_is_fed_as_declared_resized_and_normalised(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    listed = []
    for label, level in (("dark", 60), ("light", 190)):
        for i in range(8):
            pixels = np.clip(rng.normal(level, 15, size=(12, 12, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(pixels).save(tmp_path / f"{label}{i}.png")
            listed.append({"image": str(tmp_path / f"{label}{i}.png"), "label": label})
    pd.DataFrame(listed).to_csv(tmp_path / "test.csv", index=False)
    model = brightness_graph(tmp_path / "bright.onnx")
    image = {"name": "image", "type": "image", "size": [8, 8]}
    spec = {"features": {"inputs": [image], "output": {"name": "label", "type": "category"}},
            "classes": ["dark", "light"], "normalize": {"mean": [0.5], "std": [0.5]}}  # fmt: skip
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump(spec))
    result = import_onnx(model, tmp_path / "spec.yaml", tmp_path / "pkg", test=tmp_path / "test.csv")
    # fed raw [0, 1] pixels the graph would call every image light: the declared normalisation reached it
    assert result.metrics["accuracy"] == 1.0
    manifest = read_manifest(result.package)
    assert manifest["inputs"] == [{"name": "image", "type": "image", "shape": [3, 8, 8]}]
    fp32 = export_package(result.package)
    assert fp32.parity.passed and fp32.record["inputs"] == "encoded"
    (tmp_path / "spec.yaml").write_text(yaml.safe_dump({**spec, "features": {**spec["features"], "inputs": [
        {"name": "image", "type": "image"}]}}))  # fmt: skip
    with pytest.raises(DataError, match="leaves its height and width dynamic"):
        import_onnx(model, tmp_path / "spec.yaml", tmp_path / "other", test=tmp_path / "test.csv")


def test_an_exported_program_imports_through_torchs_onnx_exporter(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    layer = torch.nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(WEIGHTS.T.copy()))
        layer.bias.fill_(0.1)
    example = (torch.zeros(4, 3),)
    program = torch.export.export(layer.eval(), example, dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(program, tmp_path / "churn.pt2")
    test = rows(100, 5)
    test.to_csv(tmp_path / "test.csv", index=False)
    spec = declaration(tmp_path / "spec.yaml", output={"name": "label", "type": "binary"}, classes=["stay", "leave"])
    result = import_onnx(tmp_path / "churn.pt2", spec, tmp_path / "pkg", test=tmp_path / "test.csv")
    assert result.metrics["accuracy"] == 1.0 and result.report.path == str(tmp_path / "churn.pt2")
    imported = read_manifest(result.package)["lineage"]["imported"]
    assert imported["format"] == "pt2" and imported["operators"] == {"Gemm": 1}
    (tmp_path / "broken.pt2").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="is not an ExportedProgram"):
        import_onnx(tmp_path / "broken.pt2", spec, tmp_path / "other", test=tmp_path / "test.csv")


def test_graphs_that_cannot_serve_as_declared_are_refused_in_one_line(tmp_path: Path) -> None:
    test = rows(60, 6)
    test.to_csv(tmp_path / "test.csv", index=False)
    spec = declaration(tmp_path / "spec.yaml", output={"name": "label", "type": "binary"}, classes=["stay", "leave"])
    cases = [
        (linear_graph(tmp_path / "one.onnx", rows=1), "takes exactly 1 row"),
        (linear_graph(tmp_path / "double.onnx", dtype=TensorProto.DOUBLE), "float32 tensor"),
    ]
    for model, message in cases:
        with pytest.raises(DataError, match=message):
            import_onnx(model, spec, tmp_path / "pkg", test=tmp_path / "test.csv")
    two = onnx.load(linear_graph(tmp_path / "two.onnx"))
    two.graph.input.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["n", 3]))
    onnx.save(two, tmp_path / "two.onnx")
    with pytest.raises(DataError, match="has 2 inputs"):
        import_onnx(tmp_path / "two.onnx", spec, tmp_path / "pkg", test=tmp_path / "test.csv")
    bound = declaration(tmp_path / "bound.yaml", output={"name": "label", "type": "binary"}, classes=["stay", "leave"],
                        graph={"input": "x"})  # fmt: skip
    with pytest.raises(DataError, match="'mask' would get nothing"):
        import_onnx(tmp_path / "two.onnx", bound, tmp_path / "pkg", test=tmp_path / "test.csv")
    external = onnx.load(linear_graph(tmp_path / "external.onnx"))
    onnx.save(external, tmp_path / "external.onnx", save_as_external_data=True, size_threshold=0)
    with pytest.raises(DataError, match="weights are in files beside it"):
        import_onnx(tmp_path / "external.onnx", spec, tmp_path / "pkg", test=tmp_path / "test.csv")
    inside = tmp_path / "out"
    inside.mkdir()
    shutil_copy = linear_graph(inside / "m.onnx")
    with pytest.raises(PackageError, match="inside"):
        import_onnx(shutil_copy, spec, inside, test=tmp_path / "test.csv", force=True)
    assert (inside / "m.onnx").is_file() and not (tmp_path / "pkg").exists()


def test_labels_keep_their_values_names_keep_clear_and_stages_that_retrain_refuse(tmp_path: Path) -> None:
    test = rows(80, 7).assign(label=lambda f: (f["label"] == "leave").astype(int))  # 0 stay, 1 leave
    test.to_csv(tmp_path / "test.csv", index=False)
    spec = declaration(tmp_path / "spec.yaml", output={"name": "label", "type": "binary"}, classes=[0, 1])
    named = linear_graph(tmp_path / "named.onnx", output="logits")  # the name the export's own output takes
    result = import_onnx(named, spec, tmp_path / "pkg", test=tmp_path / "test.csv")
    predicted = seekforge.load(result.package, backend="torch").predict(test.head(5))["prediction"]
    assert result.metrics["accuracy"] == 1.0 and all(isinstance(v, int | np.integer) for v in predicted)
    assert read_manifest(result.package)["output"]["classes"] == [0, 1]
    assert export_package(result.package).parity.passed  # its "logits" renamed inside, the new one outside
    clashing = linear_graph(tmp_path / "clash.onnx", inner="logits")  # a tensor "logits" that is not the output
    other = import_onnx(clashing, spec, tmp_path / "clash", test=tmp_path / "test.csv")
    with pytest.raises(ExportError, match="already names a tensor 'logits'"):
        export_package(other.package)
    from seekforge.compress import CompressConfig, compress_package

    with pytest.raises(ConfigError, match="imported ONNX model"):
        compress_package(
            result.package, CompressConfig.model_validate({"prune": {"ratio": 0.3}}), output=tmp_path / "c"
        )
