"""A profile's problems in plain words: constant, ID-like, missing, unparseable, leaking and redundant
columns, duplicates, imbalance."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def warnings_of(profile: Mapping[str, Any]) -> list[str]:
    """The profile's problems, in plain words."""
    out = []
    rows = profile["rows"]
    label = profile.get("label")
    majority = max(label["classes"].values()) / rows if label and label.get("classes") else None
    for name, col in profile["columns"].items():
        if col["constant"]:
            out.append(f"'{name}' is constant: it cannot help a model")
        if col["id_like"]:
            out.append(f"'{name}' looks like an identifier ({col['id_like']}): models memorise it")
        if col["missing_share"] >= 0.2:
            out.append(f"'{name}' is missing in {col['missing_share']:.0%} of rows")
        if col.get("unparseable"):
            out.append(f"'{name}' ({col['type']}) has {col['unparseable']} values that do not parse")
        if col.get("unreadable"):
            out.append(f"'{name}' names {col['unreadable']} image files that cannot be read")
        if col.get("nested"):
            out.append(
                f"'{name}' holds lists or objects in {col['nested']} cells: no feature type takes them as they are "
                "(flatten them into plain columns)"
            )
        if col.get("too_large"):
            out.append(
                f"'{name}' names {col['too_large']} images larger than the pixel limit, which every stage refuses "
                f"(first: {col['too_large_files'][0]})"
            )
        leak = col.get("leakage")
        if leak is not None and leak >= 0.99 and (majority is None or majority < 0.99):
            out.append(f"'{name}' alone predicts the label ({leak:.3f}): it probably leaks the label")
    out += _pii_warnings(profile.get("pii"))
    sample = profile.get("importance_sample")
    if sample:
        out.append(
            f"importance was measured on a seeded sample of {sample['columns']:,} of the {sample['of']:,} columns "
            "(a table this wide would take many minutes)"
        )
    idle = [n for n, c in profile["columns"].items() if abs(c.get("importance", 1.0)) < 0.001 and not c["constant"]]
    redundant = [n for n in idle if "redundant_with" in profile["columns"][n]]
    if redundant:  # each may predict well alone: another column carries the same information
        pairs = [f"{n} ~ {profile['columns'][n]['redundant_with'][0]} ({profile['columns'][n]['redundant_with'][1]:.3f})"
                 for n in redundant[:8]]  # fmt: skip
        out.append(f"{len(redundant)} columns add nothing measurable beyond another column that carries the same "
                   f"information (Spearman |rho| >= 0.9), so they are redundant rather than useless; keep the one "
                   f"cheaper or more reliable to collect: {'; '.join(pairs)}{'; ...' if len(redundant) > 8 else ''}")  # fmt: skip
    idle = [n for n in idle if n not in redundant]
    if idle:
        out.append(
            f"{len(idle)} columns add nothing measurable to a quick model beyond the other columns (permutation "
            f"importance ~0), and none is strongly correlated with another: "
            f"{', '.join(idle[:8])}{', ...' if len(idle) > 8 else ''}"
        )
    dup = profile["duplicates"]
    if dup["exact"]:
        out.append(f"{dup['exact']} rows repeat an earlier row exactly")
    if dup["near"]:
        out.append(f"{dup['near']} more rows repeat an earlier row nearly (rounding, case, spacing)")
    if label and label.get("imbalance_ratio", 1) >= 5:
        out.append(f"the label is imbalanced: the largest class is {label['imbalance_ratio']:.1f}x the smallest")
    return out


def _pii_warnings(pii: Mapping[str, Any] | None) -> list[str]:
    if pii is None:
        return []
    if not pii["checked"]:
        return [f"personal data was not looked for: {pii['why']} ({pii['hint']})"]
    out = []
    for name, found in pii["columns"].items():
        kinds = ", ".join(
            f"{e.lower().replace('_', ' ')} ({v['cells']}, e.g. {v['examples'][0]})"
            for e, v in found["entities"].items()
        )
        where = "holds personal data" if found["pii_column"] else "has personal data inside"
        out.append(f"'{name}' {where} in {found['cells_with_pii']} of {found['cells_checked']} sampled cells: {kinds}; "
                   "clean.privacy drops, hashes or masks it")  # fmt: skip
    return out
