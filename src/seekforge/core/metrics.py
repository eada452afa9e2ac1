"""Task metrics: accuracy, macro F1, ROC AUC and the confusion matrix; MAE, RMSE and R2 for regression.

They run after every epoch, where scikit-learn's input checks would cost more than a small model's whole
epoch, and in the runtime install, which has neither torch nor scikit-learn, so the closed forms are
computed with numpy here (tests check them against scikit-learn).
"""

from __future__ import annotations

from typing import Any

import numpy as np

LOWER_IS_BETTER = ("loss", "mae", "rmse", "mse")


def lower_is_better(metric: str) -> bool:
    """Whether a smaller value of ``metric`` (``val_loss``, ``train_loss``, ``val_r2``, ...) is better."""
    return metric.rsplit("_", 1)[-1] in LOWER_IS_BETTER


def epoch_metrics(task: str, *, binary: bool) -> list[str]:
    """Names recorded after each epoch, the choices for ``train.early_stopping.monitor``."""
    if task == "regression":
        return ["train_loss", "val_loss", "val_mae", "val_rmse", "val_r2"]
    return ["train_loss", "val_loss", "val_accuracy", "val_f1_macro"] + (["val_roc_auc"] if binary else [])


def confusion(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Counts ``[true, predicted]``."""
    flat = np.bincount(y_true.astype(np.int64) * n_classes + y_pred, minlength=n_classes * n_classes)
    return flat.reshape(n_classes, n_classes)


def binary_auc(y_true: np.ndarray, score: np.ndarray) -> float:
    """ROC AUC as the Mann-Whitney U statistic, ties counted half."""
    positive = y_true == 1
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2.0)[inverse]  # 1-based ranks, ties share their mean
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def classification_metrics(y_true: np.ndarray, proba: np.ndarray, *, full: bool = True) -> dict[str, Any]:
    """Metrics from true class indices and class probabilities ``[n, classes]``.

    ``full`` adds the multiclass one-vs-rest AUC and the confusion matrix.
    """
    n_classes = proba.shape[1]
    y_pred = proba.argmax(axis=1)
    matrix = confusion(y_true, y_pred, n_classes)
    hits = np.diag(matrix).astype(float)
    predicted, actual = matrix.sum(axis=0), matrix.sum(axis=1)
    denominator = predicted + actual
    f1 = np.divide(2 * hits, denominator, out=np.zeros(n_classes), where=denominator > 0)
    out: dict[str, Any] = {
        "accuracy": float(hits.sum() / max(len(y_true), 1)),
        "f1_macro": float(f1.mean()),
    }
    present = np.unique(y_true)
    if n_classes == 2 and len(present) == 2:
        out["roc_auc"] = binary_auc(y_true, proba[:, 1])
    elif full and n_classes > 2 and len(present) == n_classes:
        # one class against the rest, averaged over classes (scikit-learn's multi_class="ovr", macro)
        aucs = [binary_auc((y_true == k).astype(np.int64), proba[:, k]) for k in range(n_classes)]
        out["roc_auc_ovr"] = float(np.mean(aucs))
    if full:
        out["confusion_matrix"] = matrix.tolist()
    return out


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    y_true, y_pred = np.asarray(y_true, dtype=float), np.asarray(y_pred, dtype=float)
    error = y_pred - y_true
    total = float(((y_true - y_true.mean()) ** 2).sum())
    return {
        "mae": float(np.abs(error).mean()),
        "rmse": float(np.sqrt((error**2).mean())),
        "r2": 1.0 - float((error**2).sum()) / total if total > 0 else float("nan"),
    }
