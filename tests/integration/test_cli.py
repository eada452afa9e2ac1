"""The CLI end to end on tiny real data: every command, and every kind of bad input."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from seekforge.core.hardware import hardware
from tests.conftest import exit_texts, fusion_recipe, make_fusion, make_tabular, tabular_recipe
from tests.integration.cli import assert_user_error, seekforge


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    make_tabular().to_csv(root / "data.csv", index=False)
    (root / "recipe.yaml").write_text(yaml.safe_dump(tabular_recipe("data.csv"), sort_keys=False))
    return root


@pytest.fixture(scope="module")
def package(workdir: Path) -> Path:
    proc = seekforge("run", "recipe.yaml", "--set", "train.epochs=6", cwd=workdir, check=True)
    assert "test metrics" in proc.stdout and "accuracy" in proc.stdout
    (package,) = (workdir / "runs" / "tiny").glob("*/package")
    return package


def test_init_validate_run_quick_start(tmp_path: Path) -> None:
    proc = seekforge("init", "--template", "tabular", cwd=tmp_path, check=True)
    (tmp_path / "recipe.yaml").write_text(proc.stdout)
    assert "ok recipe.yaml" in seekforge("validate", "recipe.yaml", cwd=tmp_path, check=True).stdout
    proc = seekforge("train", "recipe.yaml", "--set", "train.epochs=2", "--json", cwd=tmp_path, check=True)
    result = json.loads(proc.stdout)
    assert (tmp_path / result["package"] / "package.json").is_file() and 0 <= result["metrics"]["accuracy"] <= 1
    assert list((tmp_path / "runs" / "my-tabular-model").glob("*/package/package.json"))


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    (tmp_path / "r.yaml").write_text("keep me")
    assert_user_error(seekforge("init", "--output", "r.yaml", cwd=tmp_path), "already exists")
    assert (tmp_path / "r.yaml").read_text() == "keep me"


def test_evaluate_and_predict(workdir: Path, package: Path) -> None:
    make_tabular(30, seed=7).to_csv(workdir / "new.csv", index=False)
    before = (workdir / "new.csv").read_bytes()
    proc = seekforge("evaluate", str(package), "new.csv", "--output", "m.json", cwd=workdir, check=True)
    assert "accuracy" in proc.stdout
    metrics = json.loads((workdir / "m.json").read_text())
    assert metrics["rows"] == 30 and len(metrics["confusion_matrix"]) == 2
    seekforge("predict", str(package), "new.csv", "--output", "preds.csv", cwd=workdir, check=True)
    preds = pd.read_csv(workdir / "preds.csv")
    assert len(preds) == 30
    assert {"x1", "label", "prediction", "proba_buy", "proba_skip"} <= set(preds.columns)
    assert (preds["prediction"] == preds["label"]).mean() > 0.7
    assert (workdir / "new.csv").read_bytes() == before  # inputs are never modified


def test_datasets_list(tmp_path: Path) -> None:
    out = seekforge("datasets", "list", cwd=tmp_path, check=True).stdout
    for name in ("digits", "breast_cancer", "wine", "diabetes", "reviews"):
        assert f"builtin:{name}" in out


def test_invalid_recipe_reports_everything(tmp_path: Path) -> None:
    data = tabular_recipe("data.csv")
    data["train"] = {"lr": 0, "epoch": 2}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    proc = seekforge("validate", "bad.yaml", cwd=tmp_path)
    assert_user_error(proc, "2 problems", "train.lr", "greater than 0", "did you mean 'epochs'")


def test_debug_shows_traceback(tmp_path: Path) -> None:
    proc = seekforge("--debug", "validate", "missing.yaml", cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" in proc.stderr


@pytest.mark.parametrize(
    ("setup", "fragments"),
    [
        ("missing", ["data file not found", "data.csv"]),
        ("empty", ["is empty"]),
        ("header_only", ["has a header but no rows"]),
        ("missing_column", ["declared column 'city'", "not found"]),
        ("text_in_numeric", ["line 4", "column 'x2' is declared numeric", "'n/a?'"]),
    ],
)
def test_bad_data_exits_2_and_writes_nothing(tmp_path: Path, setup: str, fragments: list[str]) -> None:
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(tabular_recipe("data.csv"), sort_keys=False))
    frame = make_tabular(40)
    if setup == "empty":
        (tmp_path / "data.csv").write_text("")
    elif setup == "header_only":
        (tmp_path / "data.csv").write_text("x1,x2,city,member,label\n")
    elif setup == "missing_column":
        frame.drop(columns=["city"]).to_csv(tmp_path / "data.csv", index=False)
    elif setup == "text_in_numeric":
        frame["x2"] = frame["x2"].astype(object)
        frame.loc[2, "x2"] = "n/a?"
        frame.to_csv(tmp_path / "data.csv", index=False)
    for command in ("validate", "run"):
        assert_user_error(seekforge(command, "recipe.yaml", cwd=tmp_path), *fragments)
    assert not list((tmp_path / "runs").glob("*/*/package")) if (tmp_path / "runs").exists() else True


def test_corrupt_image_exits_2(tmp_path: Path) -> None:
    from PIL import Image

    for label in ("a", "b"):
        (tmp_path / "img" / label).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((4, 4), 30 * i, dtype=np.uint8)).save(tmp_path / "img" / label / f"{i}.png")
    (tmp_path / "img" / "b" / "9.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    recipe = {
        "name": "img",
        "data": {"source": "img", "split": {"train": 0.6, "validation": 0.2, "test": 0.2}, "read": {}},
        "features": {"inputs": [{"name": "image", "type": "image"}], "output": {"name": "label", "type": "category"}},
        "model": "cnn",
    }
    recipe["data"]["split"]["stratify"] = False
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    assert_user_error(seekforge("run", "recipe.yaml", cwd=tmp_path), "cannot read image", "9.png")


def test_tampered_package_exits_2(workdir: Path, package: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "pkg"
    shutil.copytree(package, copy)
    (copy / "preprocessor.json").write_text((copy / "preprocessor.json").read_text().replace("buy", "BUY"))
    proc = seekforge("predict", str(copy), str(workdir / "data.csv"), "--output", "p.csv", cwd=tmp_path)
    assert_user_error(proc, "preprocessor.json was modified")
    assert not (tmp_path / "p.csv").exists()


def test_bad_output_format_exits_2(workdir: Path, package: Path, tmp_path: Path) -> None:
    proc = seekforge("predict", str(package), str(workdir / "data.csv"), "--output", "p.xlsx", cwd=tmp_path)
    assert_user_error(proc, "unknown format '.xlsx'")


def test_unknown_command_is_a_usage_error(tmp_path: Path) -> None:
    proc = seekforge("trian", cwd=tmp_path)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr


def test_messages_with_brackets_print_as_they_are(tmp_path: Path) -> None:
    folder = tmp_path / "[old]"
    folder.mkdir()
    (folder / "recipe.yaml").write_text(yaml.safe_dump(tabular_recipe("data.csv"), sort_keys=False))
    proc = seekforge("validate", "[old]/recipe.yaml", cwd=tmp_path)
    assert_user_error(proc, "[old]/data.csv")


def test_predict_reads_other_encodings(workdir: Path, package: Path, tmp_path: Path) -> None:
    frame = make_tabular(10).assign(city=["oslo"] * 10)
    frame.to_csv(tmp_path / "latin.csv", index=False, sep=";", encoding="latin-1")
    seekforge(
        "predict", str(package), "latin.csv", "-o", "p.csv", "--encoding", "latin-1", "--delimiter", ";",
        cwd=tmp_path, check=True,
    )  # fmt: skip
    assert len(pd.read_csv(tmp_path / "p.csv")) == 10
    proc = seekforge("predict", str(package), "latin.csv", "-o", "p.csv", "--encoding", "utf8x", cwd=tmp_path)
    assert_user_error(proc, "--encoding: unknown text encoding 'utf8x'")


def test_export_then_predict_with_onnxruntime(workdir: Path, package: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "pkg"
    shutil.copytree(package, copy)
    proc = seekforge("export", str(copy), "--format", "onnx", cwd=tmp_path, check=True)
    assert "parity passed" in proc.stdout and "max abs difference" in proc.stdout
    proc = seekforge("predict", str(copy), str(workdir / "data.csv"), "-o", "p.csv", "--backend", "onnxruntime",
                     cwd=tmp_path, check=True)  # fmt: skip
    assert "(onnxruntime)" in proc.stderr
    torch_preds = seekforge("predict", str(copy), str(workdir / "data.csv"), "-o", "t.csv", "--backend", "torch",
                            cwd=tmp_path, check=True)  # fmt: skip
    assert "(torch)" in torch_preds.stderr
    a, b = pd.read_csv(tmp_path / "p.csv"), pd.read_csv(tmp_path / "t.csv")
    assert (a["prediction"] == b["prediction"]).all()
    assert_user_error(seekforge("export", str(copy), "--precision", "int4", cwd=tmp_path), "--precision")
    proc = seekforge("export", str(copy), "--format", "tensorrt", cwd=tmp_path)
    assert_user_error(proc, "tensorrt is not an export format: seekforge convert makes it")
    proc = seekforge("export", str(copy), "--format", "openvino", "--precision", "fp16", cwd=tmp_path)
    assert_user_error(proc, "fp16 is not available for openvino")
    proc = seekforge("export", str(copy), "--format", "openvino", "--precision", "bf16", "--json", cwd=tmp_path)
    if not hardware().bf16:  # the hardware decides: refused, with why and what to do instead
        assert_user_error(proc, "computes in bfloat16 only on a CPU with AVX-512 BF16 or AMX")
        proc = seekforge("export", str(copy), "--format", "openvino", "--json", cwd=tmp_path, check=True)
        exported = json.loads(proc.stdout)  # --json: the record and its parity, nothing else on stdout
        assert exported["path"].endswith("openvino/model.xml") and exported["parity"]["passed"] is True
        assert "openvino" in seekforge("bench", str(copy), "--batch", "1", "--seconds", "0.1", cwd=tmp_path).stdout
        return
    assert proc.returncode == 0, proc.stderr
    exported = json.loads(proc.stdout)  # --json: the record and its parity, nothing else on stdout
    assert exported["path"].endswith("openvino/model-bf16.xml") and exported["parity"]["passed"] is True
    proc = seekforge("bench", str(copy), "--batch", "1", "--seconds", "0.1", cwd=tmp_path, check=True)
    assert "openvino-bf16" in proc.stdout


def test_a_light_install_names_the_extra_a_command_needs(tmp_path: Path) -> None:
    """With torch absent (as under seekforge[runtime]), a training command says what to install."""
    import subprocess
    import sys

    (tmp_path / "r.yaml").write_text("name: x\n")
    code = "import sys; sys.modules['torch'] = None; from seekforge.cli import main; main(['run', 'r.yaml'])"
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    root = Path(__file__).resolve().parents[2]  # seekforge is on no index: the hint installs from its tree
    assert "needs 'torch'" in proc.stderr and f'--constraint {root / "constraints.txt"} "{root}[train]"' in proc.stderr
    assert "Traceback" not in proc.stderr


def test_piped_tables_at_80_columns_keep_every_value_whole(served_package: Path, tmp_path: Path) -> None:
    """``| cat`` with COLUMNS=80: no value ends in "…", and a row is one line."""
    env = {"COLUMNS": "80"}
    bench = seekforge("bench", str(served_package), "--seconds", "0.1", cwd=tmp_path, env=env, check=True).stdout
    listed = seekforge("datasets", "list", cwd=tmp_path, env=env, check=True).stdout
    machine = seekforge("env", cwd=tmp_path, env=env, check=True).stdout
    for printed in (bench, listed, machine):
        assert "…" not in printed, printed
    rows = [line for line in bench.splitlines() if line.startswith("│ onnxruntime ")]
    assert rows and all(line.split("│")[-2].strip().replace(",", "").isdigit() for line in rows), bench
    assert any("load_breast_cancer)" in line and "builtin:breast_cancer" in line for line in listed.splitlines())


def test_a_narrow_terminal_folds_cells_rather_than_cutting_them() -> None:
    from rich.table import Table

    from seekforge.cli._common import _Console

    table = Table("backend", "rows/s")
    table.add_row("onnxruntime-int8", "1,234,567,890")
    console = _Console(width=20, force_terminal=True, record=True, file=io.StringIO())
    console.print(table)
    text = console.export_text()
    assert "…" not in text and "1,234" in text


def test_predict_and_export_an_early_exit_package(exit_text_package: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "pkg"
    shutil.copytree(exit_text_package, copy)
    proc = seekforge("export", str(copy), "--format", "onnx", cwd=tmp_path, check=True)
    assert "exit layer agreement" in proc.stdout and "3 graphs chained between exits" in proc.stdout
    exit_texts(30, seed=5).to_csv(tmp_path / "new.csv", index=False)
    seekforge("predict", str(copy), "new.csv", "-o", "p.csv", cwd=tmp_path, check=True)  # onnxruntime: auto
    layers = pd.read_csv(tmp_path / "p.csv")["exit_layer"]
    assert len(layers) == 30 and set(layers) <= {1, 2, 3}


def test_a_fusion_recipe_runs_evaluates_and_predicts_from_texts_numbers_and_images(tmp_path: Path) -> None:
    source = make_fusion(tmp_path, rows=100)
    recipe = fusion_recipe(source.name)
    recipe["train"]["epochs"] = 3
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    done = seekforge("run", "recipe.yaml", "--json", cwd=tmp_path, check=True)
    package = tmp_path / json.loads(done.stdout)["package"]
    spec = json.loads((package / "model.json").read_text())
    assert [(i["name"], i.get("ids") or i.get("items") or i["key"]) for i in spec["io"]["inputs"]] == [
        ("title", "input_ids.title"), ("note", "input_ids.note"), ("photo", "image"), ("recent", "sequence.recent"),
        ("clicks", "sequence.clicks")
    ]  # fmt: skip
    seekforge("predict", str(package), source.name, "--output", "out.csv", cwd=tmp_path, check=True)
    out = pd.read_csv(tmp_path / "out.csv")
    assert len(out) == 100 and set(out["prediction"]) <= {"buy", "skip"}
    seekforge("explain", str(package), source.name, "--rows", "3", "--background", "8", "-o", "why", cwd=tmp_path,
              check=True)  # fmt: skip
    found = json.loads((tmp_path / "why" / "explanation.json").read_text())
    assert found["kind"] == "inputs" and found["features"] == [
        "title",
        "note",
        "x1",
        "city",
        "photo",
        "recent",
        "clicks",
    ]
    assert found["completeness"]["passed"] and found["method"] == "shap-exact"

    frame = pd.read_csv(source)
    frame.loc[2, "recent"] = "12 then 40"
    frame.to_csv(tmp_path / "bad.csv", index=False)
    (tmp_path / "bad-data.yaml").write_text(yaml.safe_dump({**recipe, "data": {**recipe["data"], "source": "bad.csv"}}))
    assert_user_error(seekforge("run", "bad-data.yaml", cwd=tmp_path),
                      "bad.csv line 4: sequence column 'recent' holds '12 then 40', which is not a list")  # fmt: skip

    recipe["model"]["encoders"] = {"image": {"type": "bag"}}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    assert_user_error(seekforge("validate", "bad.yaml", cwd=tmp_path), "encoders.image: an image input takes "
                      "a cnn encoder, not bag")  # fmt: skip
