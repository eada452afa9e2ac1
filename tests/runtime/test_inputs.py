"""The runtime's numpy encoding of texts, images and tabular values: the same numbers as torch's."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from seekforge.core.errors import DataError
from seekforge.data import Preprocessor
from seekforge.data.config import FeaturesConfig
from seekforge.runtime import InputEncoder, fit_pixels


@pytest.mark.parametrize(("source", "target"), [((37, 23), (8, 8)), ((5, 7), (16, 11)), ((12, 12), (5, 18))])
def test_the_antialiased_resize_is_torchs(source: tuple[int, int], target: tuple[int, int]) -> None:
    pixels = np.random.default_rng(0).random((*source, 3), dtype=np.float32)
    ours = fit_pixels(pixels, target, 3)
    chw = torch.from_numpy(pixels).permute(2, 0, 1)[None]
    theirs = F.interpolate(chw, size=target, mode="bilinear", antialias=True, align_corners=False)[0].numpy()
    np.testing.assert_allclose(ours, theirs, atol=2e-6)
    grey = fit_pixels(pixels, target, 1)
    assert grey.shape == (1, *target)


def test_the_encoder_from_a_saved_preprocessor_gives_the_preprocessors_batch() -> None:
    features = FeaturesConfig.model_validate({
        "inputs": [{"name": "t", "type": "text", "max_length": 6}, {"name": "u", "type": "text", "max_length": 4},
                   {"name": "x", "type": "numeric"}, {"name": "f", "type": "binary"}, {"name": "c", "type": "category"},
                   {"name": "p", "type": "image", "size": [5, 5]}],
        "output": {"name": "y", "type": "binary"},
    })  # fmt: skip
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "t": ["good tea", "bad", None, "good good good good bad"], "u": ["a b", "c", "a", ""],
        "x": [1.0, None, 3.0, 4.5], "f": ["yes", "no", None, "yes"], "c": ["r", "g", "r", None],
        "p": [rng.integers(0, 255, (7, 9, 3), dtype=np.uint8) for _ in range(4)], "y": ["n", "m", "n", "m"],
    })  # fmt: skip
    pre = Preprocessor(features).fit(frame)
    expected = pre.transform(frame)
    encoder = InputEncoder(Preprocessor.from_dict(pre.to_dict()).to_dict())  # as a runtime reads preprocessor.json
    records = frame.drop(columns="y").to_dict(orient="list")
    feeds = encoder.feeds(records)
    assert sorted(feeds) == sorted(expected)
    for key, values in feeds.items():
        assert values.dtype == expected[key].numpy().dtype, key
        np.testing.assert_array_equal(values, expected[key].numpy(), err_msg=key)
    with pytest.raises(DataError, match="row 1: binary column 'f' holds 'maybe'"):
        encoder.feeds({**records, "f": ["yes", "maybe", "no", "no"]})
    with pytest.raises(DataError, match="records lack the input column"):
        encoder.feeds({k: v for k, v in records.items() if k != "p"})


def test_calendar_parts_of_times_in_every_spelling_and_zone() -> None:
    from datetime import UTC, date, datetime

    from seekforge.runtime import datetime_columns, encode_datetimes, epoch_seconds

    saturday = datetime(2024, 5, 4, 18, 30, tzinfo=UTC).timestamp()
    spellings = ["2024-05-04T18:30:00Z", "2024-05-04T20:30:00+02:00", "2024-05-04 18:30", saturday,
                 datetime(2024, 5, 4, 18, 30), np.datetime64("2024-05-04T18:30")]  # fmt: skip
    assert {epoch_seconds(v, "row 0", "t") for v in spellings} == {saturday}
    assert epoch_seconds(date(2024, 5, 4), "row 0", "t") == saturday - 18.5 * 3600
    parts = ["elapsed", "year", "month", "day_of_week", "day_of_month", "hour", "minute", "weekend"]
    spec = {
        "parts": parts,
        "fill": saturday,
        "elapsed": {"mean": 0.0, "std": 1.0},
        "year": {"mean": 2000.0, "std": 10.0},
    }
    row = dict(zip(datetime_columns("t", parts), encode_datetimes([spellings[0], None], spec)[0].tolist(), strict=True))
    assert row["t.elapsed"] == pytest.approx(saturday / 86400) and row["t.year"] == pytest.approx(2.4)
    angle = {"month": 4 / 12, "day_of_week": 5 / 7, "day_of_month": 3 / 31, "hour": 18.5 / 24, "minute": 30 / 60}
    for part, turn in angle.items():
        assert row[f"t.{part}_sin"] == pytest.approx(np.sin(2 * np.pi * turn), abs=1e-9), part
        assert row[f"t.{part}_cos"] == pytest.approx(np.cos(2 * np.pi * turn), abs=1e-9), part
    assert row["t.weekend"] == 1.0
    missing = encode_datetimes([None], spec)[0]  # a missing time reads as the fill
    np.testing.assert_array_equal(missing, encode_datetimes([saturday], spec)[0])
    with pytest.raises(DataError, match="row 1: datetime column 't' holds 'soon', which is not an ISO 8601 time"):
        encode_datetimes([saturday, "soon"], spec, name="t")
    with pytest.raises(DataError, match="give seconds, not milliseconds"):
        encode_datetimes([saturday * 1000], spec, name="t")
    # a time with a zone gives its local parts: Saturday 23:30 at -05:00 is Sunday 04:30 in UTC
    local = dict(zip(datetime_columns("t", parts), encode_datetimes(["2024-05-04T23:30:00-05:00"], spec)[0].tolist(),
                     strict=True))  # fmt: skip
    assert local["t.weekend"] == 1.0 and local["t.hour_sin"] == pytest.approx(np.sin(2 * np.pi * 23.5 / 24))
    assert local["t.elapsed"] == pytest.approx((saturday + 10 * 3600) / 86400)  # elapsed time is absolute


def test_one_record_with_a_list_valued_input_is_one_row_and_lists_of_numbers_as_text_are_tokens() -> None:
    from seekforge.data._sequences import fit_sequence
    from seekforge.data.config import SequenceFeature
    from seekforge.runtime import as_columns

    assert as_columns({"amount": 3, "history": [1, 2]}, lists=["history"]) == {"amount": [3], "history": [[1, 2]]}
    assert as_columns({"history": [1, 2, 3]}, lists=["history"]) == {"history": [[1, 2, 3]]}
    assert as_columns({"history": [[1], "[2, 3]"]}, lists=["history"]) == {"history": [[1], "[2, 3]"]}
    frame = pd.DataFrame({"ids": [["1043", "2201"], ["1043"], []]})
    assert fit_sequence(frame["ids"], frame, SequenceFeature(name="ids"))["kind"] == "tokens"
