"""`seekforge data` end to end: profile, clean, validate, report, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from tests.data.test_quality import messy
from tests.integration.cli import assert_user_error, seekforge


def test_profile_clean_validate_report(tmp_path: Path) -> None:
    raw = tmp_path / "raw.csv"
    pd.concat([messy(), messy().iloc[:4]]).to_csv(raw, index=False)
    before = raw.read_bytes()
    proc = seekforge("data", "profile", "raw.csv", "--label", "y", cwd=tmp_path, check=True)
    assert "quality score" in proc.stdout and "4 rows repeat an earlier row exactly" in proc.stdout
    folder = tmp_path / "runs" / "profiles" / "raw"  # by default, in the runs folder, never the current one
    assert (folder / "report.html").read_text().startswith("<!DOCTYPE html>")
    assert json.loads((folder / "report.json").read_text())["duplicates"]["exact"] == 4
    proc = seekforge("data", "profile", "--input", "raw.csv", "-o", "p.html", "--json", cwd=tmp_path, check=True)
    assert json.loads(proc.stdout)["duplicates"]["exact"] == 4 and (tmp_path / "p.json").is_file()

    (tmp_path / "dq.yaml").write_text("label: y\nclean:\n  outliers: {method: isolation_forest, action: drop}\n")
    proc = seekforge("data", "clean", "raw.csv", "-o", "cleaned", "-c", "dq.yaml", cwd=tmp_path, check=True)
    assert "304 rows in = " in proc.stdout and "-> " in proc.stdout
    assert raw.read_bytes() == before  # the input is never modified
    removed = pd.read_csv(tmp_path / "cleaned" / "removed.csv")
    assert set(removed["step"]) == {"deduplicate", "outliers"} and removed["line"].min() >= 2

    proc = seekforge("data", "validate", "cleaned/data.csv", "--schema", "cleaned/schema.json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    new = messy(20, seed=3)
    new.loc[0, "city"] = "paris"
    new.to_csv(tmp_path / "new.csv", index=False)
    proc = seekforge("data", "validate", "-i", "new.csv", "--schema", "cleaned/schema.json", cwd=tmp_path)
    assert proc.returncode == 1 and "values never seen in clean data" in proc.stdout and "line 2" in proc.stdout
    proc = seekforge("data", "validate", "new.csv", "--schema", "cleaned/schema.json", "--json", cwd=tmp_path)
    found = json.loads(proc.stdout)
    assert proc.returncode == 1 and not found["ok"] and "city" in {v["column"] for v in found["violations"]}

    proc = seekforge("data", "report", "cleaned", "-o", "again.html", cwd=tmp_path, check=True)
    assert "quality score" in proc.stdout and (tmp_path / "again.html").is_file()
    proc = seekforge("data", "clean", "raw.csv", "-o", "cleaned", "-c", "dq.yaml", cwd=tmp_path)
    assert_user_error(proc, "--output cleaned already exists")
    assert "--force" in proc.stderr
    for flag in ("--force", "--overwrite"):  # --overwrite: the older spelling
        proc = seekforge("data", "clean", "raw.csv", "-o", "cleaned", "-c", "dq.yaml", flag, "--json", cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert json.loads(proc.stdout)["report"]["accounting"]["rows_in"] == 304


def test_balance(tmp_path: Path) -> None:
    from tests.data.test_balance import skewed

    skewed().to_csv(tmp_path / "in.csv", index=False)
    proc = seekforge("data", "balance", "-i", "in.csv", "-o", "out", "--label", "y", "--method", "smote",
                     cwd=tmp_path, check=True)  # fmt: skip
    assert "SMOTENC" in proc.stdout and "rare" in proc.stdout
    counts = pd.read_csv(tmp_path / "out" / "data.csv")["y"].value_counts()
    assert counts["rare"] == counts["common"]
    proc = seekforge("data", "balance", "-i", "out", "-o", "weights", "--label", "y", "-m", "class_weights",
                     cwd=tmp_path, check=True)  # fmt: skip
    assert "class_weights: {" in proc.stdout and "rows left as they are" in proc.stdout
    assert json.loads((tmp_path / "weights" / "balance.json").read_text())["class_weights"]["rare"] == 1.0


def test_features(tmp_path: Path) -> None:
    from tests.data.test_features import table

    table().to_csv(tmp_path / "in.csv", index=False)
    (tmp_path / "dq.yaml").write_text("features:\n  bins:\n    - {column: x, method: tree, bins: 4}\n")
    proc = seekforge("data", "features", "-i", "in.csv", "-o", "out", "-c", "dq.yaml", "--label", "y",
                     cwd=tmp_path, check=True)  # fmt: skip
    assert "x_bin" in proc.stdout and "tree bins" in proc.stdout
    assert set(pd.read_csv(tmp_path / "out" / "data.csv")["x_bin"]) == {0, 1}
    proc = seekforge("data", "features", "-i", "in.csv", "-o", "again", "-c", "dq.yaml", cwd=tmp_path)
    assert_user_error(proc, "learns from the label, and none is given")


def test_bad_data_input_exits_2(tmp_path: Path) -> None:
    (tmp_path / "empty.csv").write_text("")
    messy(30).to_csv(tmp_path / "ok.csv", index=False)
    (tmp_path / "bad.yaml").write_text("clean:\n  missing: {strategy: sometimes}\n")
    cases = [
        (["data", "profile", "-i", "empty.csv"], "empty"),
        (["data", "profile", "-i", "nope.csv"], "not found"),
        (["data", "profile", "-i", "ok.csv", "--label", "target"], "the label column 'target' does not exist"),
        (["data", "clean", "-i", "ok.csv", "-o", "out", "-c", "bad.yaml"], "clean.missing.strategy"),
        (["data", "validate", "ok.csv", "--schema", "missing.json"], "schema file not found"),
        (["data", "profile"], "missing INPUT"),
        (["data", "profile", "ok.csv", "-i", "empty.csv"], "two inputs given"),
        (["data", "balance", "-i", "ok.csv", "-o", "out", "--label", "y", "-m", "smooth"], "--method smooth"),
        (["data", "balance", "-i", "ok.csv", "-o", "out", "--label", "nope"], "'nope' does not exist"),
    ]
    for args, message in cases:
        assert_user_error(seekforge(*args, cwd=tmp_path), message)
    assert not (tmp_path / "out").exists()
