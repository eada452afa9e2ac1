"""The fairness section of a package's report: the gate's verdict, each group's metrics with intervals,
and the largest difference and smallest ratio between groups."""

from __future__ import annotations

from typing import Any

from seekforge.core.report import esc, fmt, table
from seekforge.fairness._gate import group_name


def fairness_html(found: dict[str, Any]) -> str:
    """HTML for a package's ``fairness`` record (a :class:`GroupMetrics` as a dict, with its ``gate``)."""
    gate = found.get("gate")
    parts = []
    if gate is not None:
        verdict = "<b>passed</b>" if gate["passed"] else "<b style='color:#d62728'>FAILED</b>"
        parts.append(f"<p>Gate: {verdict}</p>")
        parts += [f"<p>{esc(reason)}</p>" for reason in gate["reasons"]]
    metrics = found["metrics"]
    rows = []
    for group in found["groups"]:
        name = group_name(group)
        cells = []
        for m in metrics:
            interval = (group["interval"] or {}).get(m)
            span = f" [{fmt(interval[0])}, {fmt(interval[1])}]" if interval else ""
            cells.append(f"{fmt(group['values'][m])}{span}")
        rows.append([name, group["rows"], *cells, group["note"]])
    rows.append(["largest difference", "", *(fmt(found["difference"][m]) for m in metrics), ""])
    rows.append(["smallest ratio", "", *(fmt(found["ratio"][m]) for m in metrics), ""])
    parts.append(table(rows, ["group", "rows", *metrics, "note"]))
    level = round(found["confidence"] * 100)
    parts.append(f"<p class='muted'>[low, high]: {level}% bootstrap intervals over {found['n_boot']} resamples.</p>")
    return "".join(parts)
