from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from seekforge.core.metrics import classification_metrics, regression_metrics


@pytest.mark.parametrize("n_classes", [2, 3, 5])
def test_classification_metrics_agree_with_scikit_learn(n_classes: int) -> None:
    rng = np.random.default_rng(n_classes)
    y = rng.integers(0, n_classes, 300)
    logits = rng.normal(size=(300, n_classes)) + np.eye(n_classes)[y] * 1.5
    logits[:20] = np.round(logits[:20])  # ties in the scores
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    pred = proba.argmax(1)
    got = classification_metrics(y, proba)
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, pred))
    assert got["f1_macro"] == pytest.approx(sk.f1_score(y, pred, average="macro"))
    assert got["confusion_matrix"] == sk.confusion_matrix(y, pred).tolist()
    if n_classes == 2:
        assert got["roc_auc"] == pytest.approx(sk.roc_auc_score(y, proba[:, 1]))
    else:
        assert got["roc_auc_ovr"] == pytest.approx(sk.roc_auc_score(y, proba, multi_class="ovr"))
        assert "roc_auc_ovr" not in classification_metrics(y, proba, full=False)


def test_f1_with_a_class_never_predicted() -> None:
    y = np.array([0, 1, 2, 2])
    proba = np.eye(3)[[0, 1, 1, 1]]
    assert classification_metrics(y, proba)["f1_macro"] == pytest.approx(
        sk.f1_score(y, proba.argmax(1), average="macro", zero_division=0)
    )


def test_regression_metrics_agree_with_scikit_learn() -> None:
    rng = np.random.default_rng(0)
    y = rng.normal(size=100)
    pred = y + rng.normal(scale=0.3, size=100)
    got = regression_metrics(y, pred)
    assert got["mae"] == pytest.approx(sk.mean_absolute_error(y, pred))
    assert got["rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(y, pred)))
    assert got["r2"] == pytest.approx(sk.r2_score(y, pred))
