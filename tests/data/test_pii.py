"""Personal data: the profile finds e-mail columns and phone and card numbers inside text (examples
masked, names said to be unchecked without a spaCy model), and the privacy cleaning step drops, hashes or
masks them while the input file stays as it was; a recipe may not clean its training rows this way."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import yaml

from seekforge.core.errors import ConfigError
from seekforge.data._profile import profile_frame
from seekforge.data.quality import clean
from seekforge.recipe import load_recipe
from tests.conftest import tabular_recipe

NOTES = ["loved it, call me on +1 415-555-0132", "card 4111 1111 1111 1111 was charged twice", "all fine here",
         "the box arrived late", "great value", "card 4111 1111 1111 1112 is not a card number"]  # fmt: skip


def _table(rows: int = 60) -> pd.DataFrame:
    return pd.DataFrame({
        "email": [f"user{i}@mail.example.org" for i in range(rows)],
        "note": [NOTES[i % len(NOTES)] + f" (order {i})" for i in range(rows)],
        "city": ["paris", "oslo", "rome"] * (rows // 3),
        "y": ["a", "b"] * (rows // 2),
    })  # fmt: skip


def test_the_profile_finds_personal_data_and_shows_it_masked() -> None:
    found = profile_frame(_table(), label="y")["pii"]
    assert found["checked"] and "not checked" in found["names"]  # no spaCy English model here
    email, note = found["columns"]["email"], found["columns"]["note"]
    assert email["pii_column"] and email["share"] == 1.0 and set(email["entities"]) == {"EMAIL_ADDRESS"}
    assert not note["pii_column"] and note["entities"]["PHONE_NUMBER"]["cells"] == 10
    assert note["entities"]["CREDIT_CARD"]["cells"] == 10  # the ...1112 number fails its Luhn check
    assert "city" not in found["columns"]
    shown = json.dumps(found)
    assert "user1@mail.example.org" not in shown and "415-555-0132" not in shown and "4111 1111 1111 1111" not in shown
    assert email["entities"]["EMAIL_ADDRESS"]["examples"][0].startswith("us") and "*" in shown


@pytest.mark.parametrize("action", ["drop", "hash"])
def test_the_privacy_step_removes_it_and_leaves_the_input_alone(tmp_path: Path, action: str) -> None:
    source = tmp_path / "d.csv"
    _table().to_csv(source, index=False)
    before = source.read_bytes()
    # hashed addresses are still a near-unique key, which the columns step would drop as an identifier
    columns = {"drop_id_like": False}
    config = {"label": "y", "clean": {"privacy": {"pii": action}, "deduplicate": {"near": False}, "columns": columns}}
    done = clean(source, tmp_path / "out", config)
    assert source.read_bytes() == before
    data = pd.read_csv(done.data)
    step = next(s for s in done.report["steps"] if s["step"] == "privacy")
    assert step["columns"] == ["email"] and step["cells_rewritten"] == {"note": 20}
    if action == "drop":
        assert "email" not in data.columns
        assert data["note"].str.contains("<PHONE_NUMBER>").sum() == 10
        assert data["note"].str.contains("<CREDIT_CARD>").sum() == 10
    else:
        assert data["email"].str.fullmatch(r"[0-9a-f]{16}").all() and data["email"].nunique() == 60
        again = pd.read_csv(clean(source, tmp_path / "again", config).data)
        pd.testing.assert_frame_equal(again, data)  # the same value always gets the same hash
        assert data["note"].str.contains(r"call me on [0-9a-f]{16} \(order", regex=True).sum() == 10
    assert not data["note"].str.contains("415-555-0132").any()
    assert not data["note"].str.contains("4111 1111 1111 1111").any()
    assert data["note"].str.contains("4111 1111 1111 1112").sum() == 10  # not a card number: kept


def test_masking_and_a_misspelt_entity(tmp_path: Path) -> None:
    source = tmp_path / "d.csv"
    _table().to_csv(source, index=False)
    done = clean(
        source, tmp_path / "out", {"label": "y", "clean": {"privacy": {"pii": "mask", "entities": ["CREDIT_CARD"]}}}
    )
    notes = pd.read_csv(done.data)["note"]
    assert notes.str.contains(r"card \*{19} was charged", regex=True).sum() == 10
    assert notes.str.contains("415-555-0132").sum() == 10  # phone numbers were not asked for
    with pytest.raises(ConfigError, match="EMAIL"):
        clean(source, tmp_path / "bad", {"label": "y", "clean": {"privacy": {"entities": ["EMAIL"]}}})


def test_a_recipe_may_not_clean_its_training_rows_for_privacy(tmp_path: Path) -> None:
    recipe = tabular_recipe("d.csv")
    recipe["data"]["clean"] = {"privacy": {"pii": "drop"}}  # type: ignore[index]
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    with pytest.raises(ConfigError, match=r"clean\.privacy cleans a data file"):
        load_recipe(tmp_path / "r.yaml")
