"""The bisection of ``prune.ratio: auto`` over a fake job whose accuracy falls as the ratio grows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from torch import nn

from seekforge.compress import VariantRow
from seekforge.compress._run import _search
from seekforge.compress._stage import Stage
from seekforge.compress.config import CompressConfig


class FakeJob:
    def __init__(self, breaks_at: float, search_steps: int = 5) -> None:
        self.config = CompressConfig(prune={"ratio": "auto", "search_steps": search_steps, "max_ratio": 0.9})
        self.breaks_at = breaks_at  # ratios above this lose too much
        self.parent_metric = {"validation": 0.95, "test": 0.95}
        self.budget = 0.01
        self.metric_name = "accuracy"
        self.manifest: dict[str, Any] = {"lineage": {}}
        self.source = Path("parent")
        self.pruned: list[float] = []

    def prune(self, ratio: float) -> Stage:
        self.pruned.append(ratio)
        model = nn.Linear(1, 1)
        model.ratio = ratio  # type: ignore[assignment]
        return Stage(f"pruned {ratio:.0%}", Path(f"prune-{ratio}"), model, None, ratio)  # type: ignore[arg-type]

    def score(self, model: nn.Module, split: str) -> float:
        return 0.95 if model.ratio <= self.breaks_at else 0.90  # type: ignore[operator]

    def package(self, folder: Path, extra: dict[str, Any]) -> Path:
        return folder

    def measure(self, name: str, package: Path, model: nn.Module, ratio: float, note: str = "") -> VariantRow:
        return VariantRow(name, ratio, 1, 1, 1, None, None, None, None, None, 0.0, None, 0.0, note)


@pytest.mark.parametrize("breaks_at", [0.2, 0.5, 0.8])
def test_bisection_finds_the_largest_ratio_within_the_budget(breaks_at: float) -> None:
    job = FakeJob(breaks_at)
    rows: list[VariantRow] = []
    best, tried = _search(job, rows)  # type: ignore[arg-type]
    assert best is not None and best.ratio is not None
    assert best.ratio <= breaks_at and breaks_at - best.ratio < 0.9 / 2**4  # within the last interval
    assert tried == job.pruned and tried[0] == 0.9  # the largest first
    assert [row.ratio for row in rows] == tried and all("search:" in row.verdict for row in rows)


def test_the_largest_ratio_ends_the_search_when_it_passes() -> None:
    job = FakeJob(0.95)
    best, tried = _search(job, [])  # type: ignore[arg-type]
    assert tried == [0.9] and best is not None and best.ratio == 0.9


def test_no_passing_ratio_returns_none() -> None:
    job = FakeJob(0.0, search_steps=3)
    best, tried = _search(job, [])  # type: ignore[arg-type]
    assert best is None and tried == [0.9, 0.45, 0.225]
