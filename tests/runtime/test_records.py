from __future__ import annotations

from pathlib import Path

import pytest

from seekforge.core.errors import DataError
from seekforge.runtime import read_records, write_records


def test_csv_and_jsonl_round_trip(tmp_path: Path) -> None:
    (tmp_path / "d.csv").write_text("x,city\n1.5,rome\n,oslo\n")
    columns = read_records(tmp_path / "d.csv")
    assert columns == {"x": ["1.5", None], "city": ["rome", "oslo"]}  # an empty field is missing
    for suffix in (".csv", ".tsv", ".jsonl"):
        write_records(tmp_path / f"out{suffix}", {**columns, "prediction": ["a", "b"]})
        again = read_records(tmp_path / f"out{suffix}")
        assert again["prediction"] == ["a", "b"] and again["x"][1] is None
    write_records(tmp_path / "scratch.tmp", columns, suffix=".jsonl")
    assert (tmp_path / "scratch.tmp").read_text().splitlines()[0] == '{"x": "1.5", "city": "rome"}'
    (tmp_path / "a.json").write_text('[{"x": 1}, {"x": 2, "y": "z"}]')
    assert read_records(tmp_path / "a.json") == {"x": [1, 2], "y": [None, "z"]}


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("bad.csv", "x,y\n1,2\n3\n", r"bad.csv line 3: 1 fields where the header has 2"),
        ("bad.jsonl", '{"x": 1}\n{"x": \n', r"bad.jsonl line 2: not JSON"),
        ("bad.json", '{"x": 1}', r"holds a JSON dict, not a list of records"),
        ("rows.jsonl", '{"x": 1}\n[1, 2]\n', r"record 2 is not a JSON object"),
        ("empty.csv", "", r"empty.csv is empty"),
        ("data.xlsx", "", r"cannot read '.xlsx' files"),
    ],
)
def test_bad_files_name_the_file_and_line(tmp_path: Path, name: str, text: str, message: str) -> None:
    (tmp_path / name).write_text(text)
    with pytest.raises(DataError, match=message):
        read_records(tmp_path / name)


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="data file not found"):
        read_records(tmp_path / "nope.csv")
    with pytest.raises(DataError, match=r"unknown format '\.xml'"):
        write_records(tmp_path / "out.xml", {"x": [1]})
