from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from seekforge.core.limits import set_limits
from seekforge.serve._schema import RecordSchema

INPUTS = [
    {"name": "mean radius", "type": "numeric"},
    {"name": "city", "type": "category", "values": ["oslo", "rome"]},
    {"name": "member", "type": "binary", "values": ["no", "yes"]},
    {"name": "note", "type": "text"},
]


def test_valid_records_come_back_with_every_feature() -> None:
    rows, errors = RecordSchema(INPUTS).validate([{"mean radius": 1.5, "city": 3, "member": "YES"}, {}])
    assert errors == []
    assert rows[0] == {"mean radius": 1.5, "city": 3, "member": "YES", "note": None}
    assert rows[1] == dict.fromkeys(["mean radius", "city", "member", "note"])


def test_numeric_strings_and_booleans_are_numbers_only_when_the_server_coerces() -> None:
    records = [{"mean radius": "1.5"}, {"mean radius": True}]
    _, errors = RecordSchema(INPUTS).validate(records)
    assert [(e.record, e.field) for e in errors] == [(0, "mean radius"), (1, "mean radius")]
    assert all(e.message.startswith("a number must be a JSON number, not text or true/false") for e in errors)
    rows, errors = RecordSchema(INPUTS, coerce_numbers=True).validate(records)
    assert errors == [] and [r["mean radius"] for r in rows] == [1.5, 1.0]


def test_every_bad_field_of_every_record_is_listed() -> None:
    records = [
        {"mean radius": 1.0},
        {"mean radius": "abc", "citty": "oslo", "member": "maybe", "note": 7},
        "not a record",
    ]
    rows, errors = RecordSchema(INPUTS).validate(records)
    assert len(rows) == 1
    found = {(e.record, e.field): e for e in errors}
    assert set(found) == {(1, "mean radius"), (1, "citty"), (1, "member"), (1, "note"), (2, None)}
    assert found[(1, "mean radius")].value == "abc"
    assert "unknown field" in found[(1, "citty")].message
    assert "training saw only 'no' and 'yes'" in found[(1, "member")].message
    assert "object" in found[(2, None)].message


def test_images_arrive_as_base64_or_pixels_never_as_paths(tmp_path) -> None:
    schema = RecordSchema([{"name": "img", "type": "image"}])
    buffer = io.BytesIO()
    Image.fromarray(np.full((4, 5), 200, dtype=np.uint8)).save(buffer, format="PNG")
    encoded = base64.b64encode(buffer.getvalue()).decode()
    rows, errors = schema.validate([{"img": encoded}, {"img": "data:image/png;base64," + encoded}, {"img": [[0, 1]]}])
    assert errors == []
    assert rows[0]["img"].shape == (4, 5) and rows[0]["img"][0, 0] == 200
    assert rows[1]["img"].shape == (4, 5)
    assert rows[2]["img"].shape == (1, 2)
    secret = tmp_path / "secret.png"
    Image.fromarray(np.zeros((2, 2), dtype=np.uint8)).save(secret)
    _, errors = schema.validate([{"img": str(secret)}, {"img": [[1, 2], [3]]}])
    assert [e.record for e in errors] == [0, 1]
    assert "base64" in errors[0].message


@pytest.mark.parametrize("value", ["a" * 500, {"nested": [1, 2] * 100}])
def test_echoed_bad_values_are_short(value: object) -> None:
    _, errors = RecordSchema(INPUTS).validate([{"mean radius": value}])
    assert len(str(errors[0].value)) <= 80


def test_pixel_lists_are_8_bit_values_whatever_the_number_type() -> None:
    schema = RecordSchema([{"name": "img", "type": "image"}])
    rows, errors = schema.validate([{"img": [[0.0, 255.0]]}, {"img": [[0, 128]]}])  # gRPC numbers are floats
    assert errors == []
    assert rows[0]["img"].dtype == np.uint8 and rows[0]["img"].tolist() == [[0, 255]]
    _, errors = schema.validate([{"img": [[0.5]]}, {"img": [[300]]}, {"img": [[], []]}, {"img": [[[1, 2]]]}])
    assert [e.record for e in errors] == [0, 1, 2, 3]


def test_a_decompression_bomb_is_refused() -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.zeros((4, 5), dtype=np.uint8)).save(buffer, format="PNG")
    old = set_limits(image_pixels=10)
    try:
        _, errors = RecordSchema([{"name": "img", "type": "image"}]).validate(
            [{"img": base64.b64encode(buffer.getvalue()).decode()}]
        )
    finally:
        set_limits(**vars(old))
    assert "the image is 5 x 4 (20 pixels), more than the limit of 10 pixels" in errors[0].message


def test_nan_and_out_of_range_numbers_are_refused_with_the_fix() -> None:
    nan = float("nan")
    _, errors = RecordSchema(INPUTS).validate([{"mean radius": nan, "member": nan, "city": nan}, {"mean radius": 1e39}])
    assert {(e.record, e.field) for e in errors} == {(0, "mean radius"), (0, "member"), (0, "city"), (1, "mean radius")}
    assert all("send null for a missing value" in e.message for e in errors if e.record == 0)
    assert errors[-1].message == "the number is out of range (beyond +-3.4e38)"
    assert [e.value for e in errors if e.record == 0] == ["nan", "nan", "nan"]
