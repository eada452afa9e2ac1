"""The runtime install (``.[runtime,serve]``: numpy, onnxruntime, no torch, pandas or scikit-learn) runs
every command that needs only a package's raw-input ONNX export: predict, evaluate, bench, and load.

Each command runs in a fresh interpreter where importing any library outside that install fails.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import seekforge
from tests.conftest import export_on_this_cpu, make_tabular

#: top-level modules of the full install that the runtime install does not have
ABSENT = ("torch", "pandas", "sklearn", "scipy", "safetensors", "pyarrow", "transformers", "openvino", "optuna")
ROOT = Path(__file__).resolve().parents[2]


def runtime_only(code: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` where the full install's libraries cannot be imported; it ends by checking that none was."""
    prelude = f"import sys\nfor name in {ABSENT!r}:\n    sys.modules[name] = None\n"
    check = (
        "\nloaded = [m for m, mod in list(sys.modules.items()) if mod is not None and m.split('.')[0] in "
        f"{ABSENT!r}]\nassert not loaded, loaded\n"
    )
    return subprocess.run(
        [sys.executable, "-c", prelude + code + check],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={"SEEKFORGE_NO_PROGRESS": "1", "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    code = f"from seekforge.cli import main\ntry:\n    main({list(args)!r})\nexcept SystemExit as exit:\n    code = exit.code\n"
    return runtime_only(code + "print('exit', code, file=sys.stderr)", cwd)


def exit_code(proc: subprocess.CompletedProcess[str]) -> int:
    assert proc.returncode == 0, proc.stderr  # the prelude's own check passed
    return int(proc.stderr.strip().rsplit("exit ", 1)[1])


def test_predict_evaluate_and_bench_need_no_torch(served_package: Path, tmp_path: Path) -> None:
    data = make_tabular(30, seed=3)
    data.loc[2, "x1"] = None  # an empty CSV field is a missing value
    data.to_csv(tmp_path / "data.csv", index=False)
    data.to_json(tmp_path / "data.jsonl", orient="records", lines=True)

    proc = cli("predict", str(served_package), "data.csv", "-o", "p.csv", cwd=tmp_path)
    assert exit_code(proc) == 0 and "wrote 30 predictions to p.csv (onnxruntime)" in proc.stderr
    full = seekforge.load(served_package, backend="torch").predict(data)
    light = pd.read_csv(tmp_path / "p.csv")
    assert list(light["prediction"]) == list(full["prediction"])
    assert (light["proba_buy"] - full["proba_buy"]).abs().max() < 1e-5
    assert list(light.columns[: len(data.columns)]) == list(data.columns)  # the input columns are kept
    assert exit_code(cli("predict", str(served_package), "data.jsonl", "-o", "p.jsonl", cwd=tmp_path)) == 0
    rows = [json.loads(line) for line in (tmp_path / "p.jsonl").read_text().splitlines()]
    assert [r["prediction"] for r in rows] == list(full["prediction"])

    proc = cli("evaluate", str(served_package), "data.csv", "-o", "m.json", cwd=tmp_path)
    assert exit_code(proc) == 0, proc.stderr
    metrics = json.loads((tmp_path / "m.json").read_text())
    expected = seekforge.load(served_package, backend="torch").evaluate(data)
    assert metrics.keys() == expected.keys() and metrics["confusion_matrix"] == expected["confusion_matrix"]
    assert all(metrics[k] == pytest.approx(expected[k], abs=1e-6) for k in ("accuracy", "f1_macro", "roc_auc"))

    proc = cli("bench", str(served_package), "--batch", "1,4", "--seconds", "0.1", "-o", "b.json", cwd=tmp_path)
    assert exit_code(proc) == 0, proc.stderr
    bench = json.loads((tmp_path / "b.json").read_text())
    assert [(r["backend"], r["batch"]) for r in bench["rows"]] == [("onnxruntime", 1), ("onnxruntime", 4)]
    assert bench["hardware"]["isa"] and all(r["p50_ms"] > 0 for r in bench["rows"])


def test_load_gives_the_runtime_predictor(served_package: Path, tmp_path: Path) -> None:
    code = (
        "import seekforge\n"
        f"p = seekforge.load({str(served_package)!r})\n"
        "out = p.predict([{'x1': 1.0, 'x2': 0.5, 'city': 'rome', 'member': 'no'}])\n"
        "print(type(p).__name__, p.backend, out['prediction'][0] in ('buy', 'skip'))\n"
    )
    proc = runtime_only(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["RuntimePredictor", "onnxruntime", "True"]


def test_what_needs_more_says_exactly_what_to_install(served_package: Path, tmp_path: Path) -> None:
    make_tabular(5).to_csv(tmp_path / "data.csv", index=False)
    full = f'pip install --constraint {ROOT / "constraints.txt"} "{ROOT}[all]"'
    cases = [
        (("predict", str(served_package), "data.csv", "-o", "p.csv", "--backend", "torch"), "needs the full"),
        (("bench", str(served_package), "--backend", "torch,onnxruntime"), "not torch"),
        (("predict", str(served_package), "builtin:wine", "-o", "p.csv"), "built-in data sets need the full install"),
    ]
    for args, words in cases:
        proc = cli(*args, cwd=tmp_path)
        assert exit_code(proc) == 2 and words in proc.stderr and full in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr
    bare = tmp_path / "bare"
    shutil.copytree(served_package, bare)
    manifest = json.loads((bare / "package.json").read_text())
    (bare / "package.json").write_text(json.dumps({**manifest, "exports": {}}))
    proc = cli("predict", str(bare), "data.csv", "-o", "p.csv", cwd=tmp_path)
    assert (
        exit_code(proc) == 2
        and "cannot be served by the runtime install alone: it has no fp32 ONNX export" in proc.stderr
    )
    assert f"seekforge export {bare} --format onnx" in proc.stderr and full in proc.stderr
    chained = {**manifest["exports"]["onnx"], "segments": ["onnx/model.onnx"]}
    (bare / "package.json").write_text(json.dumps({**manifest, "exports": {"onnx": chained}}))
    proc = cli("evaluate", str(bare), "data.csv", cwd=tmp_path)
    assert exit_code(proc) == 2 and "alone: its ONNX export is an early-exit chain of graphs" in proc.stderr
    assert "seekforge export" not in proc.stderr and full in proc.stderr  # exporting again cannot help


def test_every_raw_onnx_export_runs_without_torch(served_package: Path, tmp_path: Path) -> None:
    """An int8 export that takes raw values is served and loaded by onnxruntime alone, as the fp32 one."""
    from seekforge.export import ExportConfig
    from seekforge.serve._model import open_predictor

    package = tmp_path / "package"
    shutil.copytree(served_package, package)
    result = export_on_this_cpu(package, ExportConfig(precision="int8"))
    if result is None:  # refused by its gate on this CPU (no VNNI), with its numbers: nothing to serve
        return
    assert result.record["inputs"] == "raw"
    code = (
        "import seekforge\n"
        f"p = seekforge.load({str(package)!r}, backend='onnxruntime-int8')\n"
        "print(p.backend, p.predict([{'x1': 1.0, 'x2': 0.5, 'city': 'rome', 'member': 'no'}])['prediction'][0])\n"
    )
    proc = runtime_only(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[0] == "onnxruntime-int8" and proc.stdout.split()[1] in ("buy", "skip")
    predictor, backend = open_predictor(package, "onnxruntime-int8", threads=1, verify=True)
    assert backend == "onnxruntime-int8" and type(predictor).__name__ == "RuntimePredictor"


def test_text_and_fusion_packages_predict_from_raw_records_without_torch(
    tiny_text_package: Path, fusion_package: Path, tmp_path: Path
) -> None:
    """Texts are tokenized with the package's own tokenizer and images decoded and resized in numpy: the
    runtime's predictions are the full install's."""
    from seekforge.export import export_package
    from seekforge.serve._deploy import _extras

    for package, extras in ((tiny_text_package, "runtime-text"), (fusion_package, "runtime-text,runtime-image")):
        if "onnx" not in json.loads((package / "package.json").read_text()).get("exports", {}):
            assert export_package(package).parity.passed
        manifest = json.loads((package / "package.json").read_text())
        assert _extras(manifest, "auto") == f"runtime,serve,{extras}"  # what its serving container installs
        assert _extras(manifest, "torch") == "all"
    texts = pd.DataFrame({"review": ["tasty fresh lovely", "stale bland", "", "broken tasty zebra"]})
    texts.to_csv(tmp_path / "texts.csv", index=False)
    assert exit_code(cli("predict", str(tiny_text_package), "texts.csv", "-o", "t.csv", cwd=tmp_path)) == 0
    full = seekforge.load(tiny_text_package, backend="torch").predict(texts)
    assert pd.read_csv(tmp_path / "t.csv")["prediction"].tolist() == full["prediction"].tolist()

    frame = pd.read_csv(fusion_package.parents[3] / "fusion.csv").head(40)
    frame.loc[3, "note"] = None  # a missing text reads as the empty text
    frame.to_csv(tmp_path / "fusion.csv", index=False)
    proc = cli("predict", str(fusion_package), "fusion.csv", "-o", "f.csv", cwd=tmp_path)
    assert exit_code(proc) == 0 and "wrote 40 predictions to f.csv (onnxruntime)" in proc.stderr, proc.stderr
    ours = pd.read_csv(tmp_path / "f.csv")
    full = seekforge.load(fusion_package, backend="torch").predict(frame)
    assert ours["prediction"].tolist() == full["prediction"].tolist()
    assert abs(ours["proba_buy"].to_numpy() - full["proba_buy"].to_numpy()).max() < 1e-4
    frame.loc[5, "photo"] = str(tmp_path / "missing.png")
    frame.to_csv(tmp_path / "bad.csv", index=False)
    proc = cli("predict", str(fusion_package), "bad.csv", "-o", "b.csv", cwd=tmp_path)
    assert exit_code(proc) == 2 and "row 5: image file not found" in proc.stderr and not (tmp_path / "b.csv").exists()


def test_a_fusion_package_without_images_is_timed_and_served_without_torch(
    fusion_package: Path, tmp_path: Path
) -> None:
    """Its held-out rows are kept raw (texts, numbers, categories, sequences): bench times its raw graph
    from them; a package with an image input, whose held-out images are kept encoded, is refused."""
    from seekforge.export import export_package
    from tests.conftest import fusion_recipe, make_fusion

    source = make_fusion(tmp_path, rows=120)
    recipe = fusion_recipe(str(source))
    recipe["features"]["inputs"] = [f for f in recipe["features"]["inputs"] if f["type"] != "image"]
    recipe["model"]["encoders"].pop("image")
    recipe["train"]["epochs"] = 2
    package = seekforge.run(recipe, runs_dir=tmp_path / "runs").package
    assert export_package(package).record["inputs"] == "raw"
    proc = cli("bench", str(package), "--batch", "1,8", "--seconds", "0.1", "-o", "b.json", cwd=tmp_path)
    assert exit_code(proc) == 0, proc.stderr
    bench = json.loads((tmp_path / "b.json").read_text())
    assert [(r["backend"], r["batch"]) for r in bench["rows"]] == [("onnxruntime", 1), ("onnxruntime", 8)]
    pd.read_csv(source).head(20).to_csv(tmp_path / "rows.csv", index=False)
    assert exit_code(cli("predict", str(package), "rows.csv", "-o", "p.csv", cwd=tmp_path)) == 0
    full = seekforge.load(package, backend="torch").predict(pd.read_csv(source).head(20))
    assert pd.read_csv(tmp_path / "p.csv")["prediction"].tolist() == full["prediction"].tolist()
    if "onnx" not in json.loads((fusion_package / "package.json").read_text()).get("exports", {}):
        export_package(fusion_package)
    proc = cli("bench", str(fusion_package), "--seconds", "0.1", cwd=tmp_path)
    assert exit_code(proc) == 2 and "its image inputs" in proc.stderr, proc.stderr
