"""Task metrics: accuracy, macro F1, ROC AUC and the confusion matrix; MAE, RMSE and R2 for regression."""

from __future__ import annotations

from typing import Any

import numpy as np

LOWER_IS_BETTER = ("loss", "mae", "rmse", "mse")


def lower_is_better(metric: str) -> bool:
    return metric.removeprefix("val_").removeprefix("test_") in LOWER_IS_BETTER


def classification_metrics(y_true: np.ndarray, proba: np.ndarray) -> dict[str, Any]:
    """Metrics from true class indices and predicted class probabilities ``[n, classes]``."""
    from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, roc_auc_score

    n_classes = proba.shape[1]
    y_pred = proba.argmax(axis=1)
    labels = list(range(n_classes))
    out: dict[str, Any] = {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1_macro": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
    }
    present = np.unique(y_true)
    if len(present) > 1:
        if n_classes == 2:
            out["roc_auc"] = float(roc_auc_score(y_true, proba[:, 1]))
        elif len(present) == n_classes:
            out["roc_auc_ovr"] = float(roc_auc_score(y_true, proba, multi_class="ovr", labels=labels))
    out["confusion_matrix"] = confusion_matrix(y_true, y_pred, labels=labels).tolist()
    return out


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {
        "mae": float(mean_absolute_error(y_true, y_pred)),
        "rmse": float(np.sqrt(mean_squared_error(y_true, y_pred))),
        "r2": float(r2_score(y_true, y_pred)) if len(y_true) > 1 else float("nan"),
    }
