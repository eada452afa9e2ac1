"""Per-group metrics: the values are each group's own (checked against scikit-learn on the subset), the
intervals hold them, small groups are named rather than hidden, and the CLI prints the same as JSON."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, recall_score

from seekforge.fairness import group_metrics
from tests.conftest import make_tabular
from tests.integration.cli import seekforge


def _biased(rows: int = 1200, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A model right 85% of the time for everyone, that also turns 40% of group b's positives down."""
    rng = np.random.default_rng(seed)
    groups = pd.DataFrame(
        {"group": rng.choice(["a", "b"], rows), "band": rng.choice(["x", "y", None], rows, p=[0.49, 0.49, 0.02])}
    )
    truth = rng.integers(0, 2, rows)
    predicted = np.where(rng.random(rows) < 0.85, truth, 1 - truth)
    predicted[(groups["group"] == "b").to_numpy() & (predicted == 1) & (rng.random(rows) < 0.4)] = 0
    return groups, truth, predicted


def test_each_group_gets_its_own_metrics_with_an_interval() -> None:
    groups, truth, predicted = _biased()
    found = group_metrics(groups[["group"]], truth, predicted, task="classification", classes=["no", "yes"], n_boot=40)
    assert found.metrics == ["accuracy", "selection_rate", "tpr", "fpr"]
    for entry in found.groups:
        inside = (groups["group"] == entry["group"]["group"]).to_numpy()
        assert entry["rows"] == inside.sum()
        assert entry["values"]["accuracy"] == pytest.approx(accuracy_score(truth[inside], predicted[inside]))
        assert entry["values"]["tpr"] == pytest.approx(recall_score(truth[inside], predicted[inside]))
        assert entry["values"]["selection_rate"] == pytest.approx(predicted[inside].mean())
        for metric, (low, high) in entry["interval"].items():
            assert low <= entry["values"][metric] <= high, (metric, low, high)
    rates = {e["group"]["group"]: e["values"]["selection_rate"] for e in found.groups}
    assert (
        found.difference["selection_rate"] == pytest.approx(rates["a"] - rates["b"]) and rates["a"] > rates["b"] + 0.1
    )
    assert found.ratio["selection_rate"] == pytest.approx(rates["b"] / rates["a"])
    low, high = found.difference_interval["selection_rate"]  # type: ignore[index]
    assert 0 < low <= found.difference["selection_rate"] <= high
    again = group_metrics(groups[["group"]], truth, predicted, task="classification", classes=["no", "yes"], n_boot=40)
    assert again == found  # seeded


def test_small_and_missing_groups_are_named_not_hidden() -> None:
    groups, truth, predicted = _biased()
    found = group_metrics(groups, truth, predicted, task="classification", classes=["no", "yes"], n_boot=0)
    small = [e for e in found.groups if e["group"]["band"] == "(missing)"]
    assert small and all(e["rows"] < 30 and "too few for an interval" in e["note"] for e in small)
    assert all(e["interval"] is None for e in found.groups) and found.difference_interval is None
    assert sum(e["rows"] for e in found.groups) == len(truth)
    regression = group_metrics(groups[["group"]], truth.astype(float), truth + 0.5, task="regression")
    assert regression.metrics == ["mae", "rmse", "r2"] and regression.overall["mae"] == pytest.approx(0.5)
    assert math.isclose(regression.difference["mae"], 0.0, abs_tol=1e-12)


def test_evaluate_by_prints_groups_and_json(served_package: Path, tmp_path: Path) -> None:
    make_tabular(200, seed=4).to_csv(tmp_path / "new.csv", index=False)
    proc = seekforge("evaluate", str(served_package), "new.csv", "--by", "city,member", "--boot", "20", "--json",
                     cwd=tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    found = json.loads(proc.stdout)
    assert found["by"] == ["city", "member"] and sum(g["rows"] for g in found["groups"]) == 200
    assert {"accuracy", "selection_rate", "tpr", "fpr"} == set(found["difference"])
    table = seekforge("evaluate", str(served_package), "new.csv", "--by", "city", "--boot", "0", cwd=tmp_path)
    assert "largest difference between groups" in table.stdout and "paris" in table.stdout
    bad = seekforge("evaluate", str(served_package), "new.csv", "--by", "town", cwd=tmp_path)
    assert bad.returncode == 2 and "--by town: new.csv has no column 'town'" in bad.stderr
    assert "its columns: x1" in bad.stderr and "Traceback" not in bad.stderr
