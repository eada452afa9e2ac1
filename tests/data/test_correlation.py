"""Columns that carry the same information are called redundant (not useless), the correlation view and the
per-class distributions reach the profile and its report, and a wide table is sampled, not refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from seekforge.data._correlation import MOST_COLUMNS, correlations
from seekforge.data.quality import profile, render_report


def _table(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    size = rng.normal(10, 2, rows)
    return pd.DataFrame({
        "radius": size,
        "area": np.pi * size**2,  # the same information, not linearly
        "noise": rng.normal(size=rows),
        "y": np.where(size + rng.normal(0, 0.5, rows) > 10, "big", "small"),
    })  # fmt: skip


def test_a_column_that_repeats_another_is_redundant_not_useless(tmp_path: Path) -> None:
    _table().to_csv(tmp_path / "t.csv", index=False)
    found = profile(tmp_path / "t.csv", label="y")
    rho = found["correlation"]["strong"][0]
    assert rho[:2] == ["radius", "area"] and rho[2] == pytest.approx(1.0, abs=0.01)
    assert found["columns"]["radius"]["redundant_with"][0] == "area"
    assert found["columns"]["area"]["redundant_with"][0] == "radius"
    assert "redundant_with" not in found["columns"]["noise"]
    said = " ".join(found["warnings"])
    idle = [n for n in ("radius", "area") if abs(found["columns"][n]["importance"]) < 0.001]
    assert idle, found["columns"]  # one of the two adds nothing beyond the other to a quick model...
    assert "redundant rather than useless" in said and f"{idle[0]} ~ " in said  # ...and is called redundant
    assert set(found["by_class"]["radius"]["shares"]) == {"big", "small"}
    assert sum(found["by_class"]["radius"]["shares"]["big"]) == pytest.approx(1.0, abs=1e-3)
    page = render_report({"input": "t", "profile": {"before": found}, "quality": {"before": found["quality"]}})
    assert "<h2>Correlations</h2>" in page and "<h2>Distributions by class</h2>" in page
    assert "<th></th>" not in page  # no unlabelled column in the quality table without a cleaning step


def test_a_wide_table_is_correlated_on_a_seeded_sample_of_columns() -> None:
    rng = np.random.default_rng(1)
    wide = pd.DataFrame(rng.normal(size=(50, MOST_COLUMNS + 50)), columns=[f"c{i}" for i in range(MOST_COLUMNS + 50)])
    kinds = dict.fromkeys(wide.columns, "numeric")
    first, again = correlations(wide, kinds, None, seed=3), correlations(wide, kinds, None, seed=3)
    assert first is not None and first["sampled_columns"] and first["columns_of"] == MOST_COLUMNS + 50
    assert first == again and len(first["shown"]) == 30
    assert correlations(wide[["c0"]], {"c0": "numeric"}, None, seed=0) is None
