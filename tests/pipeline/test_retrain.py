"""retrain: the package's logged predictions that have labels become a warm start of its own recipe; the
rows on the way are counted; labels that match nothing are refused, naming the files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seekforge.core.errors import DataError
from seekforge.core.package import read_manifest
from seekforge.monitor import labelled_log_rows
from tests.conftest import make_tabular
from tests.integration.cli import seekforge
from tests.monitor.test_run import NOW, log_rows


def _truth(frame: pd.DataFrame) -> np.ndarray:
    score = 1.5 * frame["x1"] - frame["x2"] + (frame["city"] == "oslo") * 1.0 + (frame["member"] == "yes") * 0.5
    return np.where(score > 0.3, "buy", "skip")


def test_retrain_on_labelled_predictions(served_package: Path, tmp_path: Path) -> None:
    live = make_tabular(240, seed=7)
    live["x1"] = live["x1"] + 0.5
    log = tmp_path / "predictions.db"
    log_rows(log, served_package, [(NOW, live.iloc[:200]), (NOW + 60, live.iloc[200:])])
    labels = pd.DataFrame({"request_id": [f"r{int(NOW)}-{i}" for i in range(200)], "label": _truth(live.iloc[:200])})
    labels = pd.concat([labels, labels.iloc[:10]])  # a label sent twice counts once
    labels.to_csv(tmp_path / "labels.csv", index=False)
    done = seekforge("retrain", str(served_package), "--log", str(log), "--labels", "labels.csv",
                     "-s", "train.epochs=3", "--json", cwd=tmp_path)  # fmt: skip
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["rows"] == {"logged": 240, "labels": 200, "labelled": 200, "duplicates": 0, "trained_on": 200}
    manifest = read_manifest(tmp_path / answer["package"])
    assert manifest["lineage"]["parent"] == str(served_package.resolve())
    warm = manifest["training"]["warm_start"]
    assert warm["preprocessor"] == "keep" and warm["replay_rows"] > 0
    rows = manifest["data"]["rows"]  # the labelled rows, split as the recipe says, and the replayed ones
    assert warm["new_rows"] + rows["validation"] + rows["test"] == 200
    assert rows["train"] == warm["new_rows"] + warm["replay_rows"]

    with pytest.raises(DataError, match=r"none of its 200 labels matches a prediction .*40 logged by this version"):
        labelled_log_rows(served_package, log, tmp_path / "labels.csv", since_seconds=30)
