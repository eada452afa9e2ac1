"""Explanations: SHAP values equal the Shapley values computed by hand, every method's attributions add up
where they should, removing what they point at moves the prediction more than removing random inputs,
text and image models get tokens, attention and feature maps, and bad requests are refused clearly."""

from __future__ import annotations

import itertools
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import seekforge
from seekforge.core.errors import ConfigError
from seekforge.explain import explain, look_inside, write_explanation
from seekforge.explain._model import load_model
from seekforge.explain._tabular import as_batch, encoded
from tests.conftest import image_folder_recipe, make_tabular, tabular_recipe, text_recipe
from tests.integration.cli import seekforge as cli
from tests.monitor.test_run import reviews

BACKGROUND = 40


@pytest.fixture(scope="module")
def tabular(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    root = tmp_path_factory.mktemp("explain-tabular")
    frame = make_tabular(400)
    frame.to_csv(root / "d.csv", index=False)
    package = seekforge.run(tabular_recipe(str(root / "d.csv"), epochs=25), runs_dir=root / "runs").package
    return package, frame


def _shapley_by_hand(package: Path, row: pd.DataFrame, background: pd.DataFrame, target: int) -> np.ndarray:
    """Shapley values of one row with the features unknown to a coalition taken from each background row
    (the interventional value function), by enumerating every coalition."""
    model = load_model(package)
    x = encoded(model, model.preprocessor.transform(row))[0]
    rest = encoded(model, model.preprocessor.transform(background))
    n = len(x)

    def value(coalition: tuple[int, ...]) -> float:
        mixed = rest.copy()
        mixed[:, list(coalition)] = x[list(coalition)]
        return float(model.predict_scores(as_batch(model, mixed))[:, target].double().mean())

    phi = np.zeros(n)
    for feature in range(n):
        others = [f for f in range(n) if f != feature]
        for size in range(n):
            weight = math.factorial(size) * math.factorial(n - size - 1) / math.factorial(n)
            for coalition in itertools.combinations(others, size):
                phi[feature] += weight * (value((*coalition, feature)) - value(coalition))
    return phi


def test_tabular_shap_values_are_the_shapley_values(tabular: tuple[Path, pd.DataFrame]) -> None:
    package, frame = tabular
    found = explain(package, frame, rows=30, background=BACKGROUND, seed=3)
    assert found.kind == "tabular" and found.method == "shap-exact"
    assert found.features == ["x1", "x2", "member", "city"]  # numeric, binary, then category columns
    assert found.output == "probability of skip" and set(found.targets) == {1}
    values = np.asarray(found.attributions)
    assert values.shape == (30, 4)
    background = frame.sample(BACKGROUND, random_state=3)
    for row in (0, 7):
        by_hand = _shapley_by_hand(package, frame.iloc[[row]], background, target=1)
        np.testing.assert_allclose(values[row], by_hand, atol=1e-5)
    assert found.completeness["checked"] and found.completeness["passed"]
    np.testing.assert_allclose(np.asarray(found.base) + values.sum(axis=1), found.values, atol=1e-6)
    ranked = [name for name, _ in found.importance()]
    assert ranked.index("x1") < ranked.index("member")  # the label leans on x1 three times as hard
    assert found.faithfulness["area_ratio"] > 1.2, found.faithfulness
    again = explain(package, frame, rows=30, background=BACKGROUND, seed=3)
    np.testing.assert_array_equal(np.asarray(again.attributions), values)


def test_permutation_and_occlusion_for_wider_tables(tabular: tuple[Path, pd.DataFrame]) -> None:
    package, frame = tabular
    from seekforge.explain import _tabular

    exact = explain(package, frame, rows=10, background=BACKGROUND, faithfulness=False)
    limit = _tabular.EXACT_FEATURES
    try:
        _tabular.EXACT_FEATURES = 2  # these four features now take the permutation explainer
        permuted = explain(package, frame, rows=10, background=BACKGROUND, faithfulness=False)
    finally:
        _tabular.EXACT_FEATURES = limit
    assert permuted.method == "shap-permutation" and permuted.completeness["passed"]
    # with four features, ten permutations of each row are close to the exact values
    assert np.abs(np.asarray(permuted.attributions) - np.asarray(exact.attributions)).max() < 0.05
    occluded = explain(package, frame, rows=10, method="occlusion", background=BACKGROUND)
    assert occluded.method == "occlusion" and occluded.completeness["passed"] is None
    assert np.asarray(occluded.attributions).shape == (10, 4)


def test_a_regressor_is_explained_in_its_output_units(tmp_path: Path) -> None:
    frame = make_tabular(300)
    frame["spend"] = 40 + 25 * frame["x1"] - 10 * (frame["city"] == "oslo")
    frame.to_csv(tmp_path / "d.csv", index=False)
    recipe = tabular_recipe(str(tmp_path / "d.csv"), epochs=30)
    recipe["features"]["output"] = {"name": "spend", "type": "numeric"}  # type: ignore[index]
    package = seekforge.run(recipe, runs_dir=tmp_path / "runs").package
    found = explain(package, frame, rows=20, background=BACKGROUND)
    assert found.output == "predicted spend" and found.completeness["passed"]
    predicted = seekforge.load(package).predict(frame.iloc[:20])["prediction"].to_numpy()
    np.testing.assert_allclose(found.values, predicted, rtol=1e-5, atol=1e-4)  # the value, not a scaled one
    assert found.importance()[0][0] == "x1"
    assert found.faithfulness["area_ratio"] > 1.2, found.faithfulness  # rows below the base count the right way


def test_a_multiclass_model_explains_each_rows_predicted_class(tmp_path: Path) -> None:
    frame = make_tabular(300)
    frame["band"] = pd.cut(1.5 * frame["x1"] - frame["x2"], [-np.inf, -1.0, 1.0, np.inf], labels=["lo", "mid", "hi"])
    frame.to_csv(tmp_path / "d.csv", index=False)
    recipe = tabular_recipe(str(tmp_path / "d.csv"), epochs=30)
    recipe["features"]["output"] = {"name": "band", "type": "category"}  # type: ignore[index]
    package = seekforge.run(recipe, runs_dir=tmp_path / "runs").package
    found = explain(package, frame, rows=20, background=BACKGROUND)
    classes = ["hi", "lo", "mid"]
    assert found.output == "probability of the predicted class"
    assert [classes[t] for t in found.targets] == found.predictions and found.completeness["passed"]
    assert found.faithfulness["area_ratio"] > 1.2, found.faithfulness


def test_refusals(tabular: tuple[Path, pd.DataFrame]) -> None:
    package, frame = tabular
    with pytest.raises(ConfigError, match=r"category feature.*'city'.*no path to integrate"):
        explain(package, frame, method="ig")
    with pytest.raises(ConfigError, match="more than the 1,000 rows"):
        explain(package, frame, rows=5000)
    with pytest.raises(ConfigError, match="'lime' is not a method"):
        explain(package, frame, method="lime")


@pytest.fixture(scope="module")
def text_package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("explain-text")
    reviews(240, seed=0).to_json(root / "t.jsonl", orient="records", lines=True)
    return seekforge.run(text_recipe(str(root / "t.jsonl"), epochs=6), runs_dir=root / "runs").package


#: Tokens of both classes' reviews, or of none: they tell the classes apart no better than chance.
SHARED = {"and", "coffee", ",", "[CLS]", "[SEP]", "[UNK]"}


def test_text_tokens_add_up_and_point_at_the_words_of_one_class(text_package: Path, tmp_path: Path) -> None:
    frame = reviews(24, seed=5)
    found = explain(text_package, frame, rows=24)
    assert found.kind == "text" and found.method == "integrated-gradients"
    assert found.completeness["passed"], found.completeness
    for tokens, values in zip(found.tokens or [], found.attributions, strict=True):
        assert len(tokens) == len(values) and tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    words = []
    for tokens, values, row in zip(found.tokens or [], found.attributions, found.rows, strict=True):
        sign = 1 if found.predictions[row] == "other" else -1  # "other" is the explained (second) class
        words.append(tokens[int(np.argmax(sign * np.asarray(values)))].lstrip("#"))
    assert sum(w not in SHARED for w in words) >= 0.9 * len(words), words
    assert found.faithfulness["area_ratio"] > 1.2, found.faithfulness
    (layers,) = found.extras["attention"]
    heads = layers[0]
    assert heads.shape == (2, len(found.tokens[0]), len(found.tokens[0]))  # type: ignore[index]
    np.testing.assert_allclose(heads.sum(axis=-1), 1.0, atol=1e-5)
    occluded = explain(text_package, frame, rows=4, method="occlusion", faithfulness=False)
    assert [len(v) for v in occluded.attributions] == [len(t) for t in (occluded.tokens or [])]
    folder = write_explanation(found, tmp_path / "out")
    table = pd.read_csv(folder / "attributions.csv")
    assert list(table.columns) == ["row", "position", "token", "attribution"]
    assert len(table) == sum(len(t) for t in found.tokens or [])
    assert "Attention, row 0" in (folder / "report.html").read_text()


def test_a_held_out_row_seen_inside_a_transformer(text_package: Path) -> None:
    model = load_model(text_package)
    served = seekforge.load(text_package, backend="torch")
    for row in (0, 3):
        found = look_inside(model, row)
        assert found.kind == "text" and found.rows > 3
        assert found.tokens is not None and found.tokens[0] == "[CLS]" and found.tokens[-1] == "[SEP]"
        (layer,) = found.attention  # one layer of two heads over the row's own tokens
        assert layer.shape == (2, len(found.tokens), len(found.tokens))
        np.testing.assert_allclose(layer.sum(axis=-1), 1.0, atol=1e-5)
        text = " ".join(t for t in found.tokens[1:-1]).replace(" ##", "")  # the row's text, from its tokens
        predicted = served.predict(pd.DataFrame({"review": [text]}))
        assert found.prediction == predicted["prediction"].iloc[0]  # as the served model predicts that text
        assert found.label in model.classes and sum(found.scores) == pytest.approx(1.0)
    with pytest.raises(ConfigError, match=r"row 999: .* holds \d+ held-out rows \(0 to \d+\)"):
        look_inside(model, 999)


def test_image_saliency_feature_maps_and_shap_replaced(tmp_path: Path) -> None:
    recipe = image_folder_recipe(tmp_path, per_class=16, epochs=6)
    package = seekforge.run(recipe, runs_dir=tmp_path / "runs").package
    images = sorted((tmp_path / "img").rglob("*.png"))
    frame = pd.DataFrame({"image": [str(p) for p in images]})
    with pytest.warns(UserWarning, match="SHAP over 192 pixel values would take hours; integrated gradients"):
        found = explain(package, frame, rows=12, method="shap")
    assert found.method == "integrated-gradients" and found.completeness["passed"], found.completeness
    assert np.asarray(found.attributions).shape == (12, 8, 8)
    maps = found.extras["feature_maps"][0]
    assert len(maps) == 2 and maps[0].shape == (4, 8, 8) and maps[1].shape == (4, 4, 4)
    occluded = explain(package, frame, rows=3, method="occlusion", faithfulness=False)
    assert occluded.method == "occlusion" and np.asarray(occluded.attributions).shape == (3, 8, 8)
    folder = write_explanation(found, tmp_path / "out")
    assert np.load(folder / "attributions.npz")["attributions"].shape == (12, 8, 8)
    assert "Feature maps" in (folder / "report.html").read_text()
    inside = look_inside(load_model(package), 1)
    assert inside.kind == "image" and inside.image is not None and inside.image.shape == (8, 8, 3)
    assert inside.image.min() == 0.0 and inside.image.max() == 1.0  # the row's image, scaled for showing
    assert [m.shape for m in inside.feature_maps] == [(4, 8, 8), (4, 4, 4)] and not inside.attention


def test_cli_writes_the_folder_and_refuses_clearly(tabular: tuple[Path, pd.DataFrame], tmp_path: Path) -> None:
    package, frame = tabular
    frame.to_csv(tmp_path / "d.csv", index=False)
    args = ("explain", str(package), str(tmp_path / "d.csv"), "-o", str(tmp_path / "ex"), "--rows", "12")
    done = cli(*args, "--background", "30", "--json", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["method"] == "shap-exact" and summary["completeness"]["passed"] and len(summary["rows"]) == 12
    table = pd.read_csv(tmp_path / "ex" / "attributions.csv")
    assert list(table.columns) == ["row", "prediction", "value", "base", "x1", "x2", "member", "city"]
    report = (tmp_path / "ex" / "report.html").read_text()
    assert "Global importance" in report and "Summary plot" in report and "row 0: predicted" in report
    again = cli(*args, cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr and "--force" in again.stderr
    assert "Traceback" not in again.stderr and (tmp_path / "ex" / "attributions.csv").exists()


def test_an_early_exit_model_is_explained_through_all_its_layers(exit_text_package: Path) -> None:
    from tests.conftest import exit_texts

    model = load_model(exit_text_package)
    assert model.model.policy.threshold is None  # a copy without the threshold
    assert seekforge.load(exit_text_package, backend="torch").manifest["model"]["early_exit"]["threshold"] is not None
    found = explain(exit_text_package, exit_texts(8, seed=6).drop(columns="score"), rows=8, faithfulness=False)
    assert found.completeness["passed"], found.completeness


def test_a_fusion_model_is_explained_input_by_input_with_exact_shapley_values(fusion_package: Path) -> None:
    from seekforge.explain._inputs import InputPool

    frame = pd.read_csv(fusion_package.parents[3] / "fusion.csv")
    found = explain(fusion_package, frame, rows=4, background=10, seed=0)
    assert found.kind == "inputs" and found.method == "shap-exact" and found.completeness["passed"]
    # row 0's values by the definition: each coalition of inputs takes the row's own values, the others each
    # background row's in turn, and the output is averaged over the background
    model = load_model(fusion_package)
    pre = model.preprocessor
    background = frame.sample(10, random_state=0)
    pool = InputPool(pre, pre.transform(frame.iloc[:1]), pre.transform(background))
    n, target = len(pool.players), found.targets[0]

    def value(coalition: tuple[int, ...]) -> float:
        matrix = np.array([[0 if p in coalition else 1 + b for p in range(n)] for b in range(10)], dtype=float)
        return float(model.predict_scores(pool.batch(matrix))[:, target].mean())

    values = {c: value(c) for k in range(n + 1) for c in itertools.combinations(range(n), k)}
    for p in range(n):
        by_hand = sum(
            math.factorial(len(c)) * math.factorial(n - len(c) - 1) / math.factorial(n)
            * (values[tuple(sorted((*c, p)))] - values[c])
            for c in values if p not in c
        )  # fmt: skip
        assert found.attributions[0][p] == pytest.approx(by_hand, abs=1e-5), found.features[p]
    assert found.features == ["title", "note", "x1", "city", "photo", "recent", "clicks"]
    importance = dict(found.importance())
    assert max(importance, key=importance.get) in ("title", "x1")  # the label is made of these two
    assert found.faithfulness["area_ratio"] is None or found.faithfulness["area_ratio"] > 1.0
    with pytest.raises(ConfigError, match="explained whole, by SHAP"):
        explain(fusion_package, frame, rows=2, method="ig")
