"""The classifier's report sections: per-class metrics agree with scikit-learn's, the curves carry the AUC
and AP that scikit-learn computes, and the calibration error is the bins' weighted gap."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, classification_report, roc_auc_score

from seekforge.build._curves import classification_sections


def _scores(classes: int, rows: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, classes, rows)
    logits = rng.normal(size=(rows, classes)) + 2.0 * np.eye(classes)[truth]
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return truth, proba


def test_binary_sections_hold_sklearns_figures() -> None:
    truth, proba = _scores(2)
    (per_class_title, per_class), (curves_title, curves) = classification_sections(truth, proba, ["no", "yes"])
    assert per_class_title == "Per-class metrics (test)" and curves_title == "Curves (test)"
    expected = classification_report(truth, proba.argmax(1), output_dict=True)
    for k, name in enumerate(["no", "yes"]):
        row = re.search(rf"<tr><td>{name}</td>(.*?)</tr>", per_class).group(1)  # type: ignore[union-attr]
        cells = [float(c) for c in re.findall(r"<td>([^<]+)</td>", row)]
        assert cells[:3] == pytest.approx([expected[str(k)][m] for m in ("precision", "recall", "f1-score")], abs=5e-5)
        assert cells[3] == expected[str(k)]["support"]
    assert f"AUC {roc_auc_score(truth, proba[:, 1]):.3f}" in curves
    assert f"AP {average_precision_score(truth, proba[:, 1]):.3f}" in curves
    assert curves.count("<svg") == 3 and "calibration" in curves and "yes (positive)" in curves
    score, hit = proba[:, 1], truth == 1
    bins = np.minimum((score * 10).astype(int), 9)
    ece = sum((bins == b).mean() * abs(score[bins == b].mean() - hit[bins == b].mean()) for b in set(bins.tolist()))
    assert f"Expected calibration error {ece:.3f}" in curves


def test_multiclass_draws_each_class_against_the_rest_and_skips_an_absent_one() -> None:
    truth, proba = _scores(4)
    truth[truth == 3] = 0  # class "d" never occurs in the test split: no curve for it, a row with support 0
    sections = dict(classification_sections(truth, proba, ["a", "b", "c", "d"]))
    curves = sections["Curves (test)"]
    assert "each class against the rest" in curves
    for k, name in enumerate("abc"):
        assert f"{name}: AUC {roc_auc_score(truth == k, proba[:, k]):.3f}" in curves
    assert "d: AUC" not in curves and "<td>d</td>" in sections["Per-class metrics (test)"]
    assert "probability of the predicted class" in curves


def test_a_diverged_model_still_gets_its_report() -> None:
    truth, proba = _scores(2)
    proba[:10] = np.nan  # a model that diverged on some rows
    sections = dict(classification_sections(truth, proba, ["no", "yes"]))
    assert "AUC" in sections["Curves (test)"]
    proba[:] = np.nan
    assert "not finite" in dict(classification_sections(truth, proba, ["no", "yes"]))["Curves (test)"]
