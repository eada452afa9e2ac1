"""The quality score: 0-100 from components a reader can check, each explained in plain words."""

from __future__ import annotations

import math
from typing import Any

#: component -> weight in the score
WEIGHTS = {
    "completeness": 0.2,
    "validity": 0.15,
    "uniqueness": 0.15,
    "informative columns": 0.15,
    "label quality": 0.2,
    "balance": 0.1,
    "outliers": 0.05,
}


def moved(before: dict[str, Any], after: dict[str, Any] | None) -> list[tuple[dict[str, Any], float | None]]:
    """Each component of the score ``before`` with its value in the score ``after`` (None when absent)."""
    later = {c["name"]: c["value"] for c in (after or {}).get("components", [])}
    return [(c, later.get(c["name"])) for c in before["components"]]


def column_notes(column: dict[str, Any]) -> list[str]:
    """What is wrong with a profiled column, in words: constant, ID-like (and why), leaking the label."""
    notes = ["constant"] if column["constant"] else []
    if column.get("id_like"):
        notes.append(f"ID-like: {column['id_like']}")
    if (column.get("leakage") or 0) >= 0.99:
        notes.append(f"leaks the label ({column['leakage']:.3f})")
    if column.get("redundant_with"):
        partner, rho = column["redundant_with"]
        notes.append(f"redundant with {partner} (rho {rho:.2f})")
    return notes


def quality_score(profile: dict[str, Any], clean: dict[str, Any] | None = None) -> dict[str, Any]:
    """Score a profile (and, when given, what cleaning found: label issues, outliers).

    Each component is a share between 0 and 1; the score is their weighted mean times 100, over the
    components that apply (balance needs a classification label; label quality and outliers need the
    clean step that measures them).
    """
    rows = profile["rows"]
    columns = profile["columns"]
    cells = rows * max(len(columns), 1)
    components: list[dict[str, Any]] = []

    def add(name: str, value: float, words: str) -> None:
        components.append({"name": name, "value": round(value, 4), "weight": WEIGHTS[name], "explanation": words})

    missing = sum(c["missing"] for c in columns.values())
    add("completeness", 1 - missing / cells, f"{missing / cells:.1%} of cells are missing")
    unparseable = sum(c.get("unparseable", 0) for c in columns.values())
    add("validity", 1 - unparseable / cells, f"{unparseable} cells do not parse as their column's type")
    dup = profile["duplicates"]
    repeated = dup["exact"] + dup["near"]
    add(
        "uniqueness",
        1 - repeated / rows,
        f"{dup['exact']} rows repeat another exactly and {dup['near']} nearly ({repeated / rows:.1%} of rows)",
    )
    label = profile.get("label")
    features = {k: v for k, v in columns.items() if not label or k != label["name"]}
    useless = [k for k, v in features.items() if v["constant"] or v["id_like"] or (v.get("leakage") or 0) >= 0.99]
    add(
        "informative columns",
        1 - len(useless) / max(len(features), 1),
        f"{len(useless)} of {len(features)} columns are constant, ID-like or leak the label"
        + (f" ({', '.join(useless[:5])})" if useless else ""),
    )
    if label and label.get("classes") and len(label["classes"]) > 1:
        counts = list(label["classes"].values())
        total = sum(counts)
        entropy = -sum(c / total * math.log(c / total) for c in counts if c)
        add(
            "balance",
            entropy / math.log(len(counts)),
            f"class shares from {min(counts) / total:.1%} to {max(counts) / total:.1%} over {len(counts)} classes",
        )
    flags = (clean or {}).get("flags", {})
    checked_rows = (clean or {}).get("checked_rows") or rows
    if "label_issues" in flags:
        share = flags["label_issues"] / checked_rows
        add("label quality", 1 - share, f"cleanlab flags {share:.1%} of labels as likely wrong")
    if "outliers" in flags:
        share = flags["outliers"] / checked_rows
        add("outliers", 1 - min(1.0, share / 0.1), f"{share:.1%} of rows are outliers (10% or more scores 0)")
    weight = sum(c["weight"] for c in components)
    score = 100 * sum(c["value"] * c["weight"] for c in components) / weight
    return {"score": round(score, 1), "components": components}
