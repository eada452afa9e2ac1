from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from seekforge.core.errors import DataError, NotFittedError
from seekforge.data import Preprocessor
from seekforge.data.config import FeaturesConfig
from tests.conftest import make_tabular, tabular_recipe

FEATURES = FeaturesConfig.model_validate(tabular_recipe("x")["features"])


def test_tabular_transform_shapes_and_scaling() -> None:
    frame = make_tabular(100)
    pre = Preprocessor(FEATURES).fit(frame)
    batch = pre.transform(frame)
    assert batch["numeric"].shape == (100, 3)  # x1, x2, member
    assert batch["category"].shape == (100, 1)
    assert torch.allclose(batch["numeric"][:, :2].mean(0), torch.zeros(2), atol=1e-5)
    assert set(batch["numeric"][:, 2].tolist()) == {0.0, 1.0}
    assert pre.classes_ == ["buy", "skip"]
    io = pre.model_io()
    assert io.numeric_dim == 3 and io.category_cardinalities == (4,) and io.output_dim == 2


def test_unseen_and_missing_categories_go_to_unknown_bucket() -> None:
    pre = Preprocessor(FEATURES).fit(make_tabular(60))
    new = make_tabular(3).assign(city=["oslo", "tokyo", None])
    codes = pre.transform(new)["category"][:, 0].tolist()
    assert codes[0] > 0 and codes[1:] == [0, 0]


def test_missing_numeric_imputed_with_training_median() -> None:
    train = make_tabular(60)
    pre = Preprocessor(FEATURES).fit(train)
    row = make_tabular(1).assign(x1=[np.nan])
    median = float(np.median(train["x1"]))
    expected = (median - train["x1"].mean()) / train["x1"].std(ddof=0)
    assert pre.transform(row)["numeric"][0, 0].item() == pytest.approx(expected, rel=1e-4)


def test_binary_value_never_seen_is_an_error() -> None:
    pre = Preprocessor(FEATURES).fit(make_tabular(60))
    with pytest.raises(DataError, match="training saw only 'no' and 'yes'"):
        pre.transform(make_tabular(2).assign(member=["yes", "sometimes"]))


def test_unseen_label_is_an_error() -> None:
    pre = Preprocessor(FEATURES).fit(make_tabular(60))
    with pytest.raises(DataError, match=r"label 'maybe' .* never seen in training"):
        pre.transform_target(make_tabular(2).assign(label=["buy", "maybe"]))


def test_not_fitted_raises() -> None:
    with pytest.raises(NotFittedError, match="not fitted"):
        Preprocessor(FEATURES).transform(make_tabular(2))


def test_round_trip_through_json(tmp_path: Path) -> None:
    frame = make_tabular(50)
    pre = Preprocessor(FEATURES).fit(frame)
    pre.save(tmp_path / "p.json")
    again = Preprocessor.load(tmp_path / "p.json")
    for key, value in pre.transform(frame).items():
        assert torch.equal(value, again.transform(frame)[key])
    assert json.loads((tmp_path / "p.json").read_text())["format_version"] == 1


def test_regression_target_round_trip() -> None:
    features = FeaturesConfig.model_validate(
        {"inputs": [{"name": "x1", "type": "numeric"}], "output": {"name": "y", "type": "numeric"}}
    )
    frame = pd.DataFrame({"x1": np.arange(10.0), "y": np.arange(10.0) * 3 + 7})
    pre = Preprocessor(features).fit(frame)
    target = pre.transform_target(frame)
    assert abs(float(target.mean())) < 1e-6
    values, proba = pre.decode(target[:, None])
    assert proba is None and np.allclose(values, frame["y"])


def test_text_tokenizer_is_fitted_deterministically() -> None:
    features = FeaturesConfig.model_validate(
        {
            "inputs": [{"name": "t", "type": "text", "max_length": 12, "vocab_size": 100}],
            "output": {"name": "y", "type": "category"},
        }
    )
    texts = ["the food was great", "terrible coffee, never again", "great tea and great food", ""] * 5
    frame = pd.DataFrame({"t": texts, "y": ["a", "b", "a", "b"] * 5})
    a = Preprocessor(features).fit(frame)
    b = Preprocessor(features).fit(frame)
    assert a.text_["t"].tokenizer_json == b.text_["t"].tokenizer_json
    batch = a.transform(frame)
    assert batch["input_ids"].shape == (20, 12) and batch["attention_mask"].shape == (20, 12)
    assert batch["attention_mask"][3].sum() == 2  # the empty text is [CLS] [SEP]


def _image_features(**options: object) -> FeaturesConfig:
    return FeaturesConfig.model_validate(
        {"inputs": [{"name": "image", "type": "image", **options}], "output": {"name": "label", "type": "category"}}
    )


def test_images_from_files_and_arrays(tmp_path: Path) -> None:
    paths = []
    for i in range(4):
        path = tmp_path / f"{i}.png"
        Image.fromarray(np.full((6, 6, 3), 50 * i, dtype=np.uint8)).save(path)
        paths.append(str(path))
    frame = pd.DataFrame({"image": paths, "label": ["a", "b", "a", "b"]})
    pre = Preprocessor(_image_features(size=(4, 4), channels=1)).fit(frame)
    batch = pre.transform(frame)["image"]
    assert batch.shape == (4, 1, 4, 4)
    assert abs(float(batch.mean())) < 1e-5
    arrays = pd.DataFrame({"image": [np.full((6, 6), 50 * i, dtype=np.uint8) for i in range(4)], "label": list("abab")})
    assert torch.allclose(pre.transform(arrays)["image"], batch, atol=1e-5)


def test_corrupt_image_names_the_file(tmp_path: Path) -> None:
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"\x89PNG not really")
    frame = pd.DataFrame({"image": [str(good), str(bad)], "label": ["a", "b"]})
    with pytest.raises(DataError, match=r"row 2: cannot read image .*bad\.png"):
        Preprocessor(_image_features()).fit(frame)


def test_images_as_nested_lists_are_scaled_like_arrays() -> None:
    arrays = [np.full((6, 6), 30 * i, dtype=np.uint8) for i in range(4)]
    frame = pd.DataFrame({"image": arrays, "label": list("abab")})
    pre = Preprocessor(_image_features()).fit(frame)
    as_lists = pd.DataFrame({"image": [a.tolist() for a in arrays], "label": list("abab")})
    nested = pd.DataFrame({"image": [np.array(list(a), dtype=object) for a in arrays], "label": list("abab")})
    expected = pre.transform(frame)["image"]
    assert torch.allclose(pre.transform(as_lists)["image"], expected)
    assert torch.allclose(pre.transform(nested)["image"], expected)


def test_several_texts_and_images_each_get_their_named_keys_and_an_empty_text_input_is_refused() -> None:
    features = FeaturesConfig.model_validate({
        "inputs": [{"name": "a", "type": "text", "max_length": 6}, {"name": "b", "type": "text", "max_length": 6},
                   {"name": "p", "type": "image", "size": [4, 4]}],
        "output": {"name": "y", "type": "binary"},
    })  # fmt: skip
    pixels = [np.full((4, 4, 3), v, dtype=np.uint8) for v in (0, 90, 180, 250)]
    frame = pd.DataFrame({"a": ["x y", "z", "x", "y z"], "b": ["one", "two", None, "one"], "p": pixels,
                          "y": ["n", "m", "n", "m"]})  # fmt: skip
    pre = Preprocessor(features).fit(frame)
    batch = pre.transform(frame)
    assert sorted(batch) == ["attention_mask.a", "attention_mask.b", "image", "input_ids.a", "input_ids.b"]
    assert [(i["name"], i["type"]) for i in pre.model_io().inputs] == [("a", "text"), ("b", "text"), ("p", "image")]
    assert not torch.equal(batch["input_ids.a"], batch["input_ids.b"])
    frame["b"] = ["", None, " ", ""]
    with pytest.raises(DataError, match="the text input 'b' is empty in every row of the training split"):
        Preprocessor(features).fit(frame)
