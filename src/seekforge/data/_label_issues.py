"""Label issues: cleanlab's confident learning on out-of-fold predicted probabilities of a quick model.

The quick model, on tables, averages the probabilities of scikit-learn's HistGradientBoostingClassifier
(categories as native categorical features, missing values as they are) and of a logistic regression;
when the table has text, it is a logistic regression on the mean-pooled embeddings of the built-in
MiniLM encoder (plus the numeric columns).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from seekforge.core.deps import require
from seekforge.core.errors import DataError
from seekforge.core.progress import progress_task

EMBED_BATCH = 64
EMBED_MAX_LENGTH = 128


@dataclass(frozen=True)
class LabelIssues:
    """Per row (source index): whether its label looks wrong, the model's label and its probability."""

    issues: pd.Series
    suggested: pd.Series
    confidence: pd.Series
    pred_probs: np.ndarray
    classes: list[str]
    model: str


def out_of_fold_probabilities(
    data: pd.DataFrame, label: str, types: dict[str, str], *, folds: int, seed: int
) -> tuple[np.ndarray, np.ndarray, list[str], str]:
    """(pred_probs, label codes, classes, model name) from ``folds``-fold cross-validation.

    Raises:
        DataError: Too few rows of some class, or no column a model can use.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    labels = data[label].astype(str)
    classes = sorted(labels.unique())
    codes = labels.map({c: i for i, c in enumerate(classes)}).to_numpy()
    smallest = int(np.bincount(codes).min())
    if len(classes) < 2 or smallest < 2:
        raise DataError(
            f"label issues need at least 2 rows of each of at least 2 classes; '{label}' has "
            + ", ".join(f"{c}: {n}" for c, n in labels.value_counts().items()),
        )
    folds = min(folds, smallest)
    features = [c for c in data.columns if c != label and types.get(str(c)) not in ("image", None)]
    texts = [c for c in features if types[str(c)] == "text"]
    tabular = [c for c in features if types[str(c)] != "text"]
    if not features:
        raise DataError("label issues need at least one numeric, category or text column besides the label")
    split = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    if texts:
        parts = [embed_texts(data[c].fillna("").astype(str).tolist()) for c in texts]
        numeric = [c for c in tabular if types[str(c)] == "numeric"]
        if numeric:
            parts.append(data[numeric].astype(np.float64).fillna(data[numeric].median()).to_numpy())
        x = np.hstack(parts)
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0))
        name = f"logistic regression on MiniLM embeddings of {', '.join(texts)}"
    else:
        x, categorical = _tabular_matrix(data, tabular, types)
        model = _tabular_ensemble(categorical, seed)
        name = "mean of HistGradientBoostingClassifier and logistic regression"
    from threadpoolctl import threadpool_limits

    # one OpenMP thread: gradient boosting's thread pool spins for CPU that torch's may hold, which can
    # make a seconds-long fit take minutes on a small machine
    with threadpool_limits(limits=1, user_api="openmp"):
        probs = cross_val_predict(model, x, codes, cv=split, method="predict_proba")
    return probs, codes, classes, f"{name}, {folds}-fold out-of-fold probabilities"


def find_label_issues(data: pd.DataFrame, label: str, types: dict[str, str], *, folds: int, seed: int) -> LabelIssues:
    """Rows of ``data`` whose label cleanlab finds likely wrong."""
    filters = require("cleanlab.filter", purpose="label issue detection")
    probs, codes, classes, model = out_of_fold_probabilities(data, label, types, folds=folds, seed=seed)
    mask = filters.find_label_issues(labels=codes, pred_probs=probs, n_jobs=1)
    predicted = probs.argmax(axis=1)
    index = data.index
    return LabelIssues(
        issues=pd.Series(mask, index=index),
        suggested=pd.Series([classes[i] for i in predicted], index=index, dtype=object),
        confidence=pd.Series(probs.max(axis=1), index=index),
        pred_probs=probs,
        classes=classes,
        model=model,
    )


def _tabular_ensemble(categorical: np.ndarray, seed: int) -> Any:
    """Gradient boosting and a logistic regression, their probabilities averaged: boosting finds
    interactions on large tables, the linear model stays calibrated on small ones, where boosting fits
    the noisy labels it should question."""
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier, VotingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numeric = np.flatnonzero(~categorical)
    nominal = np.flatnonzero(categorical)
    encode = ColumnTransformer(
        [
            ("numeric", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
            (
                "nominal",
                make_pipeline(SimpleImputer(strategy="most_frequent"), OneHotEncoder(handle_unknown="ignore")),
                nominal,
            ),
        ]
    )
    boosting = HistGradientBoostingClassifier(
        categorical_features=categorical if categorical.any() else None,
        random_state=seed,
        max_iter=100,
        learning_rate=0.1,
        max_leaf_nodes=15,
        l2_regularization=1.0,
    )
    linear = make_pipeline(encode, LogisticRegression(max_iter=2000, C=0.5))
    return VotingClassifier([("boosting", boosting), ("linear", linear)], voting="soft")


def _tabular_matrix(data: pd.DataFrame, columns: list[str], types: dict[str, str]) -> tuple[np.ndarray, np.ndarray]:
    parts, categorical = [], []
    for name in columns:
        kind = types[str(name)]
        column = data[name]
        if kind == "numeric":
            parts.append(pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64))
            categorical.append(False)
        elif kind == "datetime":
            parsed = pd.to_datetime(column, errors="coerce", format="mixed")
            parts.append(parsed.astype("int64").where(parsed.notna()).to_numpy(dtype=np.float64))
            categorical.append(False)
        else:
            codes = column.astype(str).where(column.notna()).astype("category").cat.codes.to_numpy()
            # HistGradientBoosting takes at most 255 categories per feature; beyond that, codes as numbers
            parts.append(np.where(codes < 0, np.nan, codes).astype(np.float64))
            categorical.append(int(codes.max(initial=0)) < 255)
    return np.column_stack(parts), np.array(categorical, dtype=bool)


def embed_texts(texts: list[str]) -> np.ndarray:
    """Mean-pooled, L2-normalised MiniLM sentence embeddings (the encoder ships with an installed package)."""
    import torch

    from seekforge.models import resolve_pretrained

    transformers = require("transformers", purpose="text embeddings")
    path = resolve_pretrained("builtin:minilm")
    tokenizer = transformers.AutoTokenizer.from_pretrained(path)
    encoder = transformers.AutoModel.from_pretrained(path).eval()
    out = []
    with torch.no_grad(), progress_task("embedding texts", len(texts)) as advance:
        for start in range(0, len(texts), EMBED_BATCH):
            batch = tokenizer(
                texts[start : start + EMBED_BATCH],
                padding=True,
                truncation=True,
                max_length=EMBED_MAX_LENGTH,
                return_tensors="pt",
            )
            hidden = encoder(**batch).last_hidden_state
            mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            out.append(torch.nn.functional.normalize(pooled, dim=1).numpy())
            advance(len(batch["input_ids"]))
    return np.concatenate(out) if out else np.empty((0, 384), dtype=np.float32)
