"""The fairness gate: every gated metric's largest difference between groups (and, when asked, its
smallest ratio) within the recipe's limits."""

from __future__ import annotations

from typing import Any

from seekforge.fairness._groups import MIN_GROUP_ROWS, GroupMetrics
from seekforge.fairness.config import FairnessConfig


def fairness_gate(report: GroupMetrics, config: FairnessConfig, kind: str) -> dict[str, Any]:
    """``passed`` and, when it fails, the ``reasons`` in words (the metric, the two groups and their
    values, the interval of the difference, the limit). Fewer than two groups of at least
    ``MIN_GROUP_ROWS`` rows cannot show the groups are treated alike: the gate fails and says so."""
    compared = [g for g in report.groups if not g["note"]]
    limits = config.gated(kind)
    reasons: list[str] = []
    if len(compared) < 2:
        sizes = ", ".join(f"{group_name(g)}: {g['rows']}" for g in report.groups)
        reasons.append(
            f"fewer than two groups of {', '.join(report.by)} have {MIN_GROUP_ROWS} rows or more in the test "
            f"split ({sizes}): nothing to compare"
        )
    for metric in limits:
        if metric not in report.metrics:
            reasons.append(f"{metric} is not a group metric of this model ({', '.join(report.metrics)} are)")
    if len(compared) >= 2:
        for metric, limit in ((m, v) for m, v in limits.items() if m in report.metrics):
            low = min(compared, key=lambda g: g["values"][metric])
            high = max(compared, key=lambda g: g["values"][metric])
            difference = report.difference[metric]
            interval = (report.difference_interval or {}).get(metric)
            between = (
                f"{group_name(low)}: {low['values'][metric]:.3f}, {group_name(high)}: {high['values'][metric]:.3f}"
            )
            spread = f"; 95% interval {interval[0]:.3f} to {interval[1]:.3f}" if interval else ""
            if difference > limit:
                reasons.append(f"{metric} differs by {difference:.3f} between groups ({between}{spread}), "
                               f"more than max_difference {limit:g}")  # fmt: skip
            ratio = report.ratio[metric]
            if config.min_ratio is not None and ratio < config.min_ratio:
                reasons.append(f"{metric} ratio between groups is {ratio:.3f} ({between}), under min_ratio "
                               f"{config.min_ratio:g}")  # fmt: skip
    return {
        "passed": not reasons,
        "reasons": reasons,
        "max_difference": limits,
        "min_ratio": config.min_ratio,
    }


def group_name(group: dict[str, Any]) -> str:
    """A group of a :class:`GroupMetrics` entry in words: ``gender=f, band=x``."""
    return ", ".join(f"{k}={v}" for k, v in group["group"].items())
