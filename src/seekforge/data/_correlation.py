"""How columns relate: Spearman correlations between numeric and binary columns (a heat map, and which
pairs carry the same information), and each numeric column's distribution within each class of the label."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd

from seekforge.core import report as html
from seekforge.data._values import numbers

#: |Spearman rho| from which two columns count as carrying the same information.
STRONG = 0.9
#: Columns whose correlations are computed (a seeded sample beyond): 200 columns of 20,000 rows take ~1 s.
MOST_COLUMNS = 200
#: Columns the heat map shows (those in the strongest pairs first).
SHOWN = 30
#: Rows the correlations and class distributions are computed on (a seeded sample beyond).
MOST_ROWS = 20_000
#: Classes whose distributions are drawn; numeric columns drawn per class.
MOST_CLASSES, MOST_BY_CLASS = 8, 12


def _as_numbers(frame: pd.DataFrame, kinds: dict[str, str], names: list[str]) -> pd.DataFrame:
    columns = {}
    for name in names:
        if kinds[name] == "binary":  # two values: their order does not matter to |rho|
            columns[name] = pd.Series(pd.factorize(frame[name])[0], index=frame.index, dtype=float).replace(-1, np.nan)
        else:
            columns[name] = pd.Series(numbers(frame[name]), index=frame.index)
    return pd.DataFrame(columns)


def correlations(frame: pd.DataFrame, kinds: dict[str, str], label: str | None, *, seed: int) -> dict[str, Any] | None:
    """Spearman correlations between the numeric and binary columns (the label left out), on at most
    ``MOST_ROWS`` rows and ``MOST_COLUMNS`` columns: the strong pairs over all of them, and the matrix of
    the ``SHOWN`` most connected. None with fewer than two such columns."""
    names = [n for n, k in kinds.items() if k in ("numeric", "binary") and n != label]
    if len(names) < 2:
        return None
    rng = np.random.default_rng(seed)
    sampled = len(names) > MOST_COLUMNS
    if sampled:
        names = sorted(rng.choice(names, MOST_COLUMNS, replace=False).tolist(), key=names.index)
    rows = frame if len(frame) <= MOST_ROWS else frame.sample(MOST_ROWS, random_state=seed)
    matrix = _as_numbers(rows, kinds, names).corr(method="spearman", min_periods=10).to_numpy()
    strong = [
        [names[i], names[j], round(float(matrix[i, j]), 4)]
        for i in range(len(names))
        for j in range(i + 1, len(names))
        if np.isfinite(matrix[i, j]) and abs(matrix[i, j]) >= STRONG
    ]
    strong.sort(key=lambda pair: -abs(pair[2]))
    weight = np.nan_to_num(np.abs(matrix), nan=0.0).sum(axis=0)
    shown = sorted(np.argsort(-weight, kind="stable")[:SHOWN].tolist())
    return {
        "method": "spearman",
        "rows": len(rows),
        "columns_of": len([n for n, k in kinds.items() if k in ("numeric", "binary") and n != label]),
        "sampled_columns": sampled,
        "strong": strong,
        "shown": [names[i] for i in shown],
        "matrix": [
            [None if not np.isfinite(matrix[i, j]) else round(float(matrix[i, j]), 3) for j in shown] for i in shown
        ],
    }


def redundant_partners(found: dict[str, Any] | None) -> dict[str, tuple[str, float]]:
    """Each column in a strong pair, with its strongest partner and their rho."""
    partners: dict[str, tuple[str, float]] = {}
    for a, b, rho in (found or {}).get("strong", []):  # strongest first: the first partner seen is kept
        partners.setdefault(a, (b, rho))
        partners.setdefault(b, (a, rho))
    return partners


def class_distributions(
    frame: pd.DataFrame, kinds: dict[str, str], label: str, columns: list[str], *, seed: int
) -> dict[str, dict[str, Any]]:
    """Each named numeric column's histogram within each of the label's most frequent classes, on shared
    bin edges, as shares of the class's rows (so classes of different sizes compare)."""
    rows = frame if len(frame) <= MOST_ROWS else frame.sample(MOST_ROWS, random_state=seed)
    classes = rows[label].dropna().astype(str).value_counts().head(MOST_CLASSES).index.tolist()
    if len(classes) < 2:
        return {}
    target = rows[label].astype(str)
    out: dict[str, dict[str, Any]] = {}
    for name in columns[:MOST_BY_CLASS]:
        values = numbers(rows[name])
        present = np.isfinite(values)
        if present.sum() < 2 or kinds[name] != "numeric":
            continue
        edges = np.histogram_bin_edges(values[present], bins=20)
        shares = {}
        for cls in classes:
            inside = values[present & (target == cls).to_numpy()]
            counts = np.histogram(inside, bins=edges)[0]
            shares[cls] = (counts / max(len(inside), 1)).round(4).tolist()
        out[name] = {"edges": edges.tolist(), "shares": shares}
    return out


def correlation_sections(profile: dict[str, Any]) -> list[tuple[str, str]]:
    """The report's sections for what this module measured."""
    sections = []
    found = profile.get("correlation")
    if found and found["shown"]:
        note = (f"<p class='muted'>Spearman rank correlation on {found['rows']:,} rows"
                + (f", over a seeded sample of {len(found['shown'])} of {found['columns_of']:,} columns"
                   if found["sampled_columns"] else "") + f"; |rho| ≥ {STRONG} means two columns carry the same "
                "information, so a model gains little from the second.</p>")  # fmt: skip
        pairs = html.table(found["strong"][:50], ["column", "column", "rho"]) if found["strong"] else "<p>No pair.</p>"
        heat = html.correlation_heatmap(found["matrix"], found["shown"], title="correlation between columns")
        sections.append(("Correlations", note + heat + "<h3>Strongly correlated pairs</h3>" + pairs))
    by_class = profile.get("by_class")
    if by_class:
        charts = []
        for name, found_ in by_class.items():
            edges = found_["edges"]
            centres = [(a + b) / 2 for a, b in itertools.pairwise(edges)]
            charts.append(html.curves({cls: (centres, shares) for cls, shares in found_["shares"].items()},
                                      title=name, x_label=name, y_label="share of the class", width=360,
                                      height=220))  # fmt: skip
        sections.append(("Distributions by class", "<div class='charts'>" + "".join(charts) + "</div>"))
    return sections
