"""The charts of a classifier's test split: per-class metrics, ROC and precision-recall curves (scikit-learn's
points), and a reliability diagram with its expected calibration error."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from seekforge.core import report as r

#: Classes drawn one against the rest; beyond that the per-class table still lists every class.
MOST_CURVES = 8
#: Points kept of a curve (a test split of 100,000 rows would otherwise draw 100,000).
MOST_POINTS = 400


def classification_sections(truth: np.ndarray, proba: np.ndarray, classes: Sequence[Any]) -> list[tuple[str, str]]:
    """Report sections for true class indices ``truth`` and class probabilities ``proba`` ``[rows, classes]``;
    rows whose probabilities are not finite (a model that diverged) are left out of the curves, and said so."""
    from sklearn.metrics import (
        auc,
        average_precision_score,
        precision_recall_curve,
        precision_recall_fscore_support,
        roc_curve,
    )

    labels = list(range(len(classes)))
    predicted = proba.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(truth, predicted, labels=labels, zero_division=0)
    rows = [[str(classes[k]), precision[k], recall[k], f1[k], int(support[k])] for k in labels]
    sections = [("Per-class metrics (test)", r.table(rows, ["class", "precision", "recall", "f1", "support"]))]
    finite = np.isfinite(proba).all(axis=1)
    if not finite.all():
        truth, proba = truth[finite], proba[finite]
        if not len(truth):
            return [*sections, ("Curves (test)", "<p>None: the model's probabilities are not finite.</p>")]
    binary = len(classes) == 2
    shown = [1] if binary else [k for k in labels if 0 < (truth == k).sum() < len(truth)][:MOST_CURVES]
    roc: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    pr: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for k in shown:
        positive = (truth == k).astype(np.int64)
        if positive.min() == positive.max():
            continue  # one class only in the test split: no curve
        fpr, tpr, _ = roc_curve(positive, proba[:, k])
        prec, rec, _ = precision_recall_curve(positive, proba[:, k])
        name = f"{classes[k]}" if not binary else f"{classes[k]} (positive)"
        roc[f"{name}: AUC {auc(fpr, tpr):.3f}"] = _thin(fpr, tpr)
        pr[f"{name}: AP {average_precision_score(positive, proba[:, k]):.3f}"] = _thin(rec, prec)
    charts = []
    if roc:
        against = "" if binary else ", each class against the rest"
        unit = ((0.0, 1.0), (0.0, 1.0))
        charts.append(r.curves(roc, title=f"ROC{against}", x_label="false positive rate",
                               y_label="true positive rate", x_range=unit[0], y_range=unit[1],
                               diagonal=((0.0, 0.0), (1.0, 1.0))))  # fmt: skip
        base = float((truth == 1).mean()) if binary else None  # a classifier that guesses: precision = prevalence
        charts.append(r.curves(pr, title=f"precision-recall{against}", x_label="recall", y_label="precision",
                               x_range=unit[0], y_range=unit[1],
                               diagonal=((0.0, base), (1.0, base)) if base is not None else None))  # fmt: skip
    chart, note = _calibration(truth, proba, classes)
    charts.append(chart)
    sections.append(("Curves (test)", f"<div class='charts'>{''.join(charts)}</div>{note}"))
    return sections


def _thin(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if len(xs) <= MOST_POINTS:
        return xs, ys
    keep = np.unique(np.linspace(0, len(xs) - 1, MOST_POINTS).round().astype(int))
    return xs[keep], ys[keep]


def _calibration(truth: np.ndarray, proba: np.ndarray, classes: Sequence[Any]) -> tuple[str, str]:
    """Reliability diagram in ten equal-width bins: for two classes, the positive class's probability
    against how often it is the class; otherwise the top class's probability against how often it is
    right. Returns the chart and a line with the expected calibration error and Brier score."""
    if len(classes) == 2:
        score, hit = proba[:, 1], truth == 1
        what = f"predicted probability of {classes[1]}"
    else:
        score, hit = proba.max(axis=1), proba.argmax(axis=1) == truth
        what = "probability of the predicted class"
    bins = np.minimum((score * 10).astype(int), 9)
    mean, observed, error = [], [], 0.0
    for b in range(10):
        inside = bins == b
        if inside.any():
            mean.append(float(score[inside].mean()))
            observed.append(float(hit[inside].mean()))
            error += inside.sum() / len(score) * abs(mean[-1] - observed[-1])
    brier = float(((score - hit) ** 2).mean())
    chart = r.curves({"test rows": (mean, observed)}, title="calibration (10 bins)", x_label=what,
                     y_label="observed frequency", x_range=(0.0, 1.0), y_range=(0.0, 1.0),
                     diagonal=((0.0, 0.0), (1.0, 1.0)), markers=True)  # fmt: skip
    note = (f"<p class='muted'>Expected calibration error {error:.3f} (the rows' average gap between "
            f"{r.esc(what)} and how often it came true; 0 is perfect); Brier score {brier:.3f}.</p>")  # fmt: skip
    return chart, note
