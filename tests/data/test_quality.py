from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seekforge.core.errors import ConfigError, DataError
from seekforge.data._clean import clean_frame
from seekforge.data._profile import infer_type, leakage, profile_frame
from seekforge.data._quality import quality_score
from seekforge.data._schema import build_schema, validate_frame
from seekforge.data.quality import clean, load_quality_config, profile, validate
from seekforge.data.quality_config import DataQualityConfig
from seekforge.datasets import load_builtin


def messy(rows: int = 300, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    frame = pd.DataFrame(
        {
            "id": np.arange(rows),
            "x": x.round(6),
            "const": 7,
            "city": rng.choice(["oslo", "rome", "lima"], size=rows),
            "note": [f"customer wrote a fairly long note number {i}" for i in range(rows)],
            "y": np.where(x + rng.normal(scale=0.5, size=rows) > 0, "pos", "neg"),
        }
    )
    frame["leak"] = frame["y"].map({"pos": 1.5, "neg": -2.0})
    return frame


def test_types_are_inferred_from_values() -> None:
    assert infer_type(pd.Series(["1", "2.5", None, "3"])) == "numeric"
    assert infer_type(pd.Series(["yes", "no", "yes"])) == "binary"
    assert infer_type(pd.Series(["2024-01-02", "2024-02-03", "2024-03-04"])) == "datetime"
    assert infer_type(pd.Series(["a", "b", "c", "a"])) == "category"
    assert infer_type(pd.Series(["a.png", "b.jpg"] * 3)) == "binary"  # two values: binary before image
    assert infer_type(pd.Series(["a.png", "b.jpg", "c.png"])) == "image"
    assert infer_type(pd.Series(["1", "2"]), "category") == "category"


def test_profile_finds_what_costs_models_accuracy() -> None:
    frame = pd.concat([messy(), messy().iloc[:4]], ignore_index=True)
    frame.loc[300, "x"] += 1e-9  # a near duplicate of row 0
    result = profile_frame(frame, label="y")
    cols = result["columns"]
    assert cols["id"]["id_like"] == "a monotonic counter" != None or cols["id"]["id_like"] is None
    assert cols["const"]["constant"] and cols["note"]["type"] == "text"
    assert cols["leak"]["leakage"] >= 0.99 and cols["city"]["leakage"] < 0.8
    assert result["duplicates"] == {"exact": 3, "near": 1}
    assert cols["note"]["scripts"] == {"Latin": 1.0}
    warnings = "\n".join(result["warnings"])
    assert "'leak' alone predicts the label" in warnings and "'const' is constant" in warnings
    with pytest.raises(DataError, match="the label column 'nope' does not exist"):
        profile_frame(frame, label="nope")


def test_permutation_importance_separates_signal_from_noise() -> None:
    frame = load_builtin("builtin:wine")
    frame["noise"] = np.random.default_rng(0).normal(size=len(frame))
    cols = profile_frame(frame, label="cultivar")["columns"]
    assert cols["proline"]["importance"] > 0.05 and abs(cols["noise"]["importance"]) < 0.01
    assert "importance" not in cols["cultivar"]


def test_profile_counts_unreadable_images(tmp_path: Path) -> None:
    from PIL import Image

    for name in ("a", "b"):
        Image.new("RGB", (8, 6)).save(tmp_path / f"{name}.png")
    (tmp_path / "broken.png").write_bytes(b"not an image")
    frame = pd.DataFrame({"image": ["a.png", "b.png", "broken.png"], "label": [0, 1, 0]})
    col = profile_frame(frame, base=tmp_path)["columns"]["image"]
    assert col["type"] == "image" and col["sizes"] == {"8x6": 2} and col["unreadable_files"] == ["broken.png"]


def test_clean_accounts_for_every_row() -> None:
    frame = pd.concat([messy(), messy().iloc[:5]], ignore_index=True)
    frame["x"] = frame["x"].astype(object)
    frame.loc[10, "x"] = "n/a?"
    frame.loc[20, "x"] = None
    frame.loc[30, "x"] = 50.0  # an outlier
    frame.attrs["first_line"] = 2
    config = DataQualityConfig.model_validate(
        {"label": "y", "clean": {"missing": {"strategy": "drop"}, "outliers": {"method": "zscore", "action": "drop"}}}
    )
    original = frame.copy()
    result = clean_frame(frame, config)
    pd.testing.assert_frame_equal(frame, original)  # the input is not modified
    acc = result.accounting
    assert acc["rows_in"] == acc["rows_out"] + acc["rows_dropped"] + acc["rows_rejected"] == 305
    assert result.rejected[["row", "line", "column"]].values.tolist() == [[10, 12, "x"]]
    assert "'n/a?' is not a number" in result.rejected["reason"].iloc[0]
    reasons = dict(zip(result.removed["row"], result.removed["reason"], strict=True))
    assert reasons[300] == "exact duplicate of row 0" and reasons[20] == "'x' is missing"
    assert reasons[30] == "'x' = 50 (|z| > 4)"
    assert {"id", "const"} <= set(next(s for s in result.steps if s["step"] == "drop columns")["columns"])
    assert "leak" in result.frame.columns  # leaking columns are reported, not silently dropped


def test_imputation_and_rare_categories() -> None:
    frame = messy()
    frame["x"] = frame["x"].astype(float)
    frame.loc[[3, 4], "x"] = np.nan
    frame.loc[[5], "city"] = "tiny"
    config = DataQualityConfig.model_validate(
        {"clean": {"missing": {"strategy": "constant", "fill_value": -1}, "columns": {"rare_share": 0.01}}}
    )
    result = clean_frame(frame, config)
    assert (result.frame.loc[[3, 4], "x"] == -1).all()
    assert result.frame.loc[5, "city"] == "__rare__" and len(result.frame) == 300
    median = clean_frame(frame, DataQualityConfig())
    assert median.frame.loc[3, "x"] == pytest.approx(frame["x"].median())


def test_label_issues_find_injected_flips() -> None:
    frame = load_builtin("builtin:breast_cancer")
    rng = np.random.default_rng(1)
    flipped = rng.random(len(frame)) < 0.1
    frame.loc[flipped, "diagnosis"] = frame.loc[flipped, "diagnosis"].map(
        {"benign": "malignant", "malignant": "benign"}
    )
    config = DataQualityConfig.model_validate({"label": "diagnosis", "clean": {"label_issues": {"action": "flag"}}})
    result = clean_frame(frame, config)
    found = result.frame["label_issue"].to_numpy()
    assert (found & flipped).sum() / found.sum() > 0.6  # precision
    assert (found & flipped).sum() / flipped.sum() > 0.6  # recall
    relabel = DataQualityConfig.model_validate(
        {"label": "diagnosis", "clean": {"label_issues": {"action": "relabel", "threshold": 0.9}}}
    )
    fixed = clean_frame(frame, relabel)
    truth = load_builtin("builtin:breast_cancer")["diagnosis"]
    assert (fixed.frame["diagnosis"] != truth.loc[fixed.frame.index]).sum() < flipped.sum() / 2


def test_schema_and_validation() -> None:
    frame = messy().drop(columns=["id", "const"])
    schema = build_schema(frame, {"x": "numeric", "city": "category", "note": "text", "y": "binary", "leak": "numeric"})
    assert validate_frame(frame, schema) == []
    new = frame.head(5).drop(columns=["note"]).copy()
    new["x"] = new["x"].astype(object)
    new.loc[0, "x"] = 1e6
    new.loc[1, "x"] = "abc"
    new.loc[2, "city"] = "paris"
    new.attrs["first_line"] = 2
    problems = {(v.column, v.problem): v for v in validate_frame(new, schema)}
    assert ("note", "column is missing") in problems
    assert problems[("x", "values that are not numbers")].example == "line 3: 'abc'"
    assert problems[("city", "values never seen in clean data")].example == "line 4: 'paris'"
    assert any(p.startswith("values outside") for c, p in problems if c == "x")
    with pytest.raises(DataError, match="not a seekforge schema"):
        validate_frame(frame, {"columns": {}})


def test_quality_score_explains_itself() -> None:
    good = quality_score(profile_frame(messy().drop(columns=["id", "const", "leak"]), label="y"))
    bad_frame = pd.concat([messy()] * 2, ignore_index=True)
    bad_frame.loc[::3, "x"] = np.nan
    bad = quality_score(profile_frame(bad_frame, label="y"))
    assert 0 <= bad["score"] < good["score"] <= 100
    names = [c["name"] for c in bad["components"]]
    assert names == ["completeness", "validity", "uniqueness", "informative columns", "balance"]
    assert "50.0% of rows" in bad["components"][2]["explanation"]


def test_clean_writes_a_complete_folder_atomically(tmp_path: Path) -> None:
    raw = tmp_path / "raw.csv"
    pd.concat([messy(), messy().iloc[:3]]).to_csv(raw, index=False)
    digest = hashlib.sha256(raw.read_bytes()).hexdigest()
    config = tmp_path / "dq.yaml"
    config.write_text("label: y\nclean:\n  outliers: {method: iqr, action: flag}\n")
    result = clean(raw, tmp_path / "cleaned", config)
    assert hashlib.sha256(raw.read_bytes()).hexdigest() == digest
    files = {p.name for p in result.output.iterdir()}
    assert files == {"data.csv", "schema.json", "rejected.csv", "removed.csv", "report.json", "report.html"}
    report = json.loads((result.output / "report.json").read_text())
    assert report["accounting"]["rows_in"] == 303 and report["accounting"]["rows_dropped"] == 3
    assert report["quality"]["after"]["score"] >= report["quality"]["before"]["score"]
    assert validate(result.data, result.output / "schema.json") == []
    with pytest.raises(ConfigError, match="already exists"):
        clean(raw, tmp_path / "cleaned", config)
    assert not list(tmp_path.glob(".*tmp*"))  # no half-written folder left behind
    assert profile(result.output, label="y")["rows"] == 300  # a clean folder reads as its data


def test_quality_config_reports_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "dq.yaml"
    path.write_text("label: y\nclean:\n  outliers: {method: lof}\n  missing: {strategy: constant}\n  dedup: {}\n")
    with pytest.raises(ConfigError) as info:
        load_quality_config(path)
    text = str(info.value)
    assert "clean.outliers.method (" in text and "dq.yaml:3)" in text
    assert "strategy constant needs fill_value" in text
    assert "unknown key 'dedup'" in text
    assert [i.suggestion for i in info.value.issues if i.path == "clean.dedup"] == ["deduplicate"]


def test_the_example_configuration_cleans_a_builtin_data_set(tmp_path: Path) -> None:
    from tests.conftest import EXAMPLES

    result = clean("builtin:breast_cancer", tmp_path / "out", EXAMPLES / "data" / "data_quality.yaml")
    assert result.data.name == "data.parquet" and result.report["accounting"]["rows_in"] == 569
    assert "label_issue" in pd.read_parquet(result.data).columns


def test_a_recipe_cleans_its_training_rows_only(tmp_path: Path) -> None:
    from seekforge.data import load_splits
    from seekforge.recipe import load_recipe
    from tests.conftest import make_tabular, tabular_recipe

    frame = make_tabular(300)
    frame = pd.concat([frame, frame.iloc[:30]], ignore_index=True)  # duplicates
    frame["x1"] = frame["x1"].astype(object)
    frame.loc[7, "x1"] = "oops"  # set aside before the split
    frame.to_csv(tmp_path / "d.csv", index=False)
    plain = tabular_recipe(str(tmp_path / "d.csv"))
    cleaning = {**plain, "data": {**plain["data"], "clean": {"outliers": {"method": "zscore", "action": "drop"}}}}
    with pytest.raises(DataError, match="declared numeric but holds 'oops'"):
        load_splits(load_recipe(plain).data, load_recipe(plain).features, 0)
    recipe = load_recipe(cleaning)
    splits = load_splits(recipe.data, recipe.features, 0)
    assert splits.cleaning["rejected_before_split"] == 1
    acc = splits.cleaning["accounting"]
    assert acc["rows_in"] == acc["rows_out"] + acc["rows_dropped"] and acc["rows_dropped"] >= 8
    assert len(splits.train) == acc["rows_out"] and not splits.train.duplicated().any()
    # validation and test rows are drawn as without cleaning, from the rows that parse
    frame.drop(index=7).to_csv(tmp_path / "parsed.csv", index=False)
    parsed = load_recipe({**plain, "data": {**plain["data"], "source": str(tmp_path / "parsed.csv")}})
    reference = load_splits(parsed.data, parsed.features, 0)
    for name in ("validation", "test"):
        got, want = getattr(splits, name), getattr(reference, name)
        assert got["x2"].tolist() == want["x2"].tolist() and got["label"].tolist() == want["label"].tolist()
    import seekforge

    result = seekforge.run(cleaning, runs_dir=tmp_path / "runs")
    manifest = json.loads((result.package / "package.json").read_text())
    assert manifest["data"]["clean"]["accounting"] == acc


def test_duplicates_are_found_by_hash_and_confirmed_cell_by_cell() -> None:
    from seekforge.data._duplicates import first_of_hash, repeats, row_hashes

    frame = messy(200)
    frame = pd.concat([frame, frame.iloc[[3, 7, 7]]], ignore_index=True)
    frame.loc[5, "x"] = np.nan
    frame = pd.concat([frame, frame.iloc[[5]]], ignore_index=True)  # missing cells repeat too
    found = repeats(first_of_hash(row_hashes(frame)), frame)
    np.testing.assert_array_equal(found, frame.duplicated().to_numpy())
    first = first_of_hash(row_hashes(frame))
    assert first[200] == 3 and first[201] == first[202] == 7 and first[203] == 5
    collided = np.zeros(len(frame), dtype=np.uint64)  # every row one hash: none equals row 0 cell by cell
    assert not repeats(first_of_hash(collided), frame).any()
    near = frame.assign(note=frame["note"].str.upper() + " !", x=frame["x"] + 1e-9)
    assert repeats(first_of_hash(row_hashes(near, {"note": "text", "x": "numeric"}, 4))).sum() == 4


def test_numbers_parse_text_like_pandas() -> None:
    from seekforge.data._values import numbers

    values = ["1.5", " 2 ", "3e2", "-4", "+5", ".5", "6.", "inf", "nan", "?", "1,000", "", None, "0x10", "7E-3"]
    for column in (pd.Series(values, dtype="str"), pd.Series(values, dtype=object)):
        got = numbers(column)
        want = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").to_numpy(dtype=np.float64)
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(numbers(pd.Series([1, 2], dtype="Int64")), [1.0, 2.0])


def test_clean_can_consume_its_input_to_save_memory() -> None:
    from seekforge.data._clean import keep_rows

    frame = pd.concat([messy(), messy().iloc[:5]], ignore_index=True)
    config = DataQualityConfig.model_validate({"label": "y"})
    kept = clean_frame(frame.copy(), config).frame
    consumed = frame.copy()
    result = clean_frame(consumed, config, consume=True)
    pd.testing.assert_frame_equal(result.frame, kept)
    assert consumed.columns.empty  # its columns moved into the result
    frame.attrs["source"] = "x.csv"
    mask = np.arange(len(frame)) % 3 > 0
    expected = frame[mask]
    moved = keep_rows(frame, mask)
    pd.testing.assert_frame_equal(moved, expected)
    assert moved.attrs["source"] == "x.csv" and frame.columns.empty


def test_data_modules_do_not_load_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys; import seekforge.data.quality, seekforge.data._clean, seekforge.data._balance;"
        "from seekforge.data.quality import load_quality_config; load_quality_config({'label': 'y'});"
        "assert 'torch' not in sys.modules, 'torch was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_leakage_scores_are_those_of_sklearn_cross_validation(task: str) -> None:
    from sklearn.model_selection import cross_val_score
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    rng = np.random.default_rng(1)
    frame = pd.DataFrame({"a": rng.normal(size=90), "b": rng.choice(["p", "q", "r"], size=90)})
    frame["y"] = (frame["a"] > 0).astype(str) if task == "classification" else frame["a"] * 2 + rng.normal(size=90)
    kinds = {"a": "numeric", "b": "category", "y": "category" if task == "classification" else "numeric"}
    scores = leakage(frame, "y", kinds, task, seed=3)
    tree = DecisionTreeClassifier if task == "classification" else DecisionTreeRegressor
    target = frame["y"] if task == "classification" else frame["y"].to_numpy()
    codes = frame["b"].astype("category").cat.codes.to_numpy().reshape(-1, 1)
    for name, x in (("a", frame[["a"]].to_numpy()), ("b", codes)):
        expected = cross_val_score(tree(max_depth=4, random_state=3), x, target, cv=3,
                                   scoring="accuracy" if task == "classification" else "r2")  # fmt: skip
        assert scores[name] == pytest.approx(float(np.mean(expected)), abs=1e-12)


def test_importance_of_a_wide_table_is_measured_on_a_seeded_sample_of_columns() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(120, 520)), columns=[f"c{i}" for i in range(520)])
    frame["y"] = np.where(frame["c0"] > 0, "up", "down")
    found = profile_frame(frame, label="y", seed=5)
    assert found["importance_sample"] == {"columns": 500, "of": 520}
    measured = [n for n, c in found["columns"].items() if "importance" in c]
    assert len(measured) == 500 and measured == [
        n for n, c in profile_frame(frame, label="y", seed=5)["columns"].items() if "importance" in c
    ]
    assert any("seeded sample of 500 of the 520 columns" in w for w in found["warnings"])
