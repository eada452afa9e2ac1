from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from seekforge.core.errors import DataError
from seekforge.data import read_source
from seekforge.data.config import ReadConfig
from tests.conftest import make_tabular


def test_csv_tsv_parquet_jsonl_read_the_same(tmp_path: Path) -> None:
    frame = make_tabular(20)
    frame.to_csv(tmp_path / "a.csv", index=False)
    frame.to_csv(tmp_path / "a.tsv", sep="\t", index=False)
    frame.to_csv(tmp_path / "semi.csv", sep=";", index=False)
    frame.to_parquet(tmp_path / "a.parquet", index=False)
    frame.to_json(tmp_path / "a.jsonl", orient="records", lines=True)
    for name in ("a.csv", "a.tsv", "semi.csv", "a.parquet", "a.jsonl"):
        loaded = read_source(str(tmp_path / name))
        pd.testing.assert_frame_equal(loaded, frame, check_dtype=False)
        assert loaded.attrs["source"].endswith(name)


def test_csv_input_is_not_modified(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    make_tabular(10).to_csv(path, index=False)
    before = path.read_bytes()
    read_source(str(path))
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("content", "message"),
    [(b"", "is empty"), (b"a,b,c\n", "has a header but no rows")],
)
def test_empty_files(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "e.csv"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        read_source(str(path))


def test_missing_file_and_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data file not found"):
        read_source(str(tmp_path / "nope.csv"))
    odd = tmp_path / "x.xlsx"
    odd.write_bytes(b"PK")
    with pytest.raises(DataError, match="no data source can read"):
        read_source(str(odd))


def test_wrong_encoding_names_the_fix(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes("name,city\nJosé,Orléans\n".encode("latin-1"))
    with pytest.raises(DataError, match="not valid utf-8") as info:
        read_source(str(path))
    assert "data.read.encoding" in (info.value.hint or "")
    assert read_source(str(path), ReadConfig(encoding="latin-1"))["city"][0] == "Orléans"


def test_image_folder(tmp_path: Path) -> None:
    for label in ("cat", "dog"):
        (tmp_path / label).mkdir()
        for i in range(2):
            Image.fromarray(np.full((4, 4), 40 * i, dtype=np.uint8)).save(tmp_path / label / f"{i}.png")
    (tmp_path / "cat" / "notes.txt").write_text("not an image")
    frame = read_source(str(tmp_path))
    assert list(frame.columns) == ["image", "label"]
    assert frame["label"].tolist() == ["cat", "cat", "dog", "dog"]


def test_empty_image_folder(tmp_path: Path) -> None:
    (tmp_path / "cat").mkdir()
    with pytest.raises(DataError, match="no images found"):
        read_source(str(tmp_path))


@pytest.mark.parametrize(
    "name", ["digits", "digit_checks", "breast_cancer", "wine", "diabetes", "reviews", "reviews/test"]
)
def test_builtin_datasets(name: str) -> None:
    frame = read_source(f"builtin:{name}")
    assert len(frame) > 100
    assert frame.attrs["source"] == f"builtin:{name}"


def test_digit_checks_pair_each_handwritten_digit_once_with_a_typed_one() -> None:
    frame, digits = read_source("builtin:digit_checks"), read_source("builtin:digits")
    assert len(frame) == len(digits) and read_source("builtin:digit_checks").equals(frame)
    assert all(np.array_equal(a, b) for a, b in zip(frame["image"], digits["image"], strict=True))
    matches = frame["typed"].astype(int) == digits["label"]
    assert (frame["matches"] == np.where(matches, "yes", "no")).all() and 0.4 < matches.mean() < 0.6
    slips = frame.groupby("clerk")["matches"].apply(lambda s: (s == "no").mean())
    assert slips.is_monotonic_increasing and slips["ana"] < 0.3 < 0.7 < slips["eli"]  # the table alone says a little


def test_unknown_builtin_and_split() -> None:
    from seekforge.core.errors import RegistryError

    with pytest.raises(RegistryError, match="available: breast_cancer"):
        read_source("builtin:mnist")
    with pytest.raises(DataError, match="has no split 'test'"):
        read_source("builtin:wine/test")


def test_csv_is_read_in_chunks_like_one_pass(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from seekforge.data import _sources

    frame = make_tabular(1000)
    frame["code"] = np.arange(1000) * 1.5
    frame["code"] = frame["code"].astype(object)
    frame.loc[900, "code"] = "?"  # only the last chunk holds text here
    frame.loc[5, "x1"] = None
    path = tmp_path / "a.csv"
    frame.to_csv(path, index=False)
    whole = pd.read_csv(path, skipinitialspace=True)
    monkeypatch.setattr(_sources, "CHUNK_ROWS", 128)
    monkeypatch.setattr(_sources, "PROGRESS_BYTES", 1)  # the progress bar is drawn (disabled off a terminal)
    chunked = read_source(str(path))
    assert list(chunked.columns) == list(whole.columns) and len(chunked) == 1000
    for name in ("x1", "x2", "city", "member", "label"):
        pd.testing.assert_series_equal(chunked[name], whole[name])
    assert pd.api.types.is_string_dtype(chunked["code"])  # text throughout, as in one pass
    assert chunked["code"].iloc[900] == "?" and float(chunked["code"].iloc[3]) == 4.5
