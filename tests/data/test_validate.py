from __future__ import annotations

from pathlib import Path

import pytest

from seekforge.core.errors import DataError
from seekforge.data import check_table, read_source
from seekforge.data.config import FeaturesConfig, ReadConfig
from tests.conftest import make_tabular, tabular_recipe

FEATURES = FeaturesConfig.model_validate(tabular_recipe("x")["features"])


def test_missing_column_suggests_close_name(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    make_tabular(10).rename(columns={"city": "cty"}).to_csv(path, index=False)
    with pytest.raises(DataError) as info:
        check_table(read_source(str(path)), FEATURES)
    assert "'city' (did you mean 'cty'?) not found" in info.value.message
    assert str(path) in info.value.message


def test_wrong_delimiter_hint(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    make_tabular(10).to_csv(path, sep=";", index=False)
    frame = read_source(str(path), ReadConfig(delimiter=","))
    with pytest.raises(DataError) as info:
        check_table(frame, FEATURES)
    assert "delimiter" in (info.value.hint or "")


def test_text_in_numeric_column_names_line_and_value(tmp_path: Path) -> None:
    frame = make_tabular(10)
    frame["x1"] = frame["x1"].astype(object)
    frame.loc[3, "x1"] = "12,5"
    path = tmp_path / "d.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DataError) as info:
        check_table(read_source(str(path)), FEATURES)
    assert f"{path} line 5" in info.value.message  # header is line 1, row 3 is line 5
    assert "'12,5'" in info.value.message and "declared numeric" in info.value.message


def test_binary_with_three_values() -> None:
    frame = make_tabular(12)
    frame.loc[0, "member"] = "maybe"
    with pytest.raises(DataError, match="binary column 'member' has 3 distinct values"):
        check_table(frame, FEATURES)


def test_missing_labels_are_refused() -> None:
    frame = make_tabular(12)
    frame.loc[[2, 5], "label"] = None
    with pytest.raises(DataError, match="empty in 2 rows"):
        check_table(frame, FEATURES)


def test_output_not_needed_for_prediction() -> None:
    frame = make_tabular(5).drop(columns=["label"])
    checked = check_table(frame, FEATURES, with_output=False)
    assert list(checked.columns) == ["x1", "x2", "city", "member"]


def test_a_jsonl_line_without_its_text_is_named_when_text_is_required(tmp_path: Path) -> None:
    path = tmp_path / "corpus.jsonl"
    path.write_text('{"t": "good", "y": "a"}\n{"t": "bad", "y": "b"}\n{"y": "a"}\n', encoding="utf-8")
    features = {"inputs": [{"name": "t", "type": "text"}], "output": {"name": "y", "type": "category"}}
    check_table(read_source(str(path)), FeaturesConfig.model_validate(features))  # read as the empty text
    features["inputs"][0]["missing"] = "error"
    with pytest.raises(DataError, match=rf"{path} line 3: 't' is empty in 1 row"):
        check_table(read_source(str(path)), FeaturesConfig.model_validate(features))


def test_a_column_named_like_another_inputs_tensor_is_refused() -> None:
    from pydantic import ValidationError

    for name in ("input_ids", "image.photo", "sequence.clicks"):
        with pytest.raises(ValidationError, match=f"input '{name}' \\(numeric\\) is named like the tensor"):
            FeaturesConfig.model_validate({"inputs": [{"name": name, "type": "numeric"}],
                                           "output": {"name": "y", "type": "binary"}})  # fmt: skip
    FeaturesConfig.model_validate(
        {"inputs": [{"name": "image", "type": "image"}], "output": {"name": "y", "type": "binary"}}
    )
