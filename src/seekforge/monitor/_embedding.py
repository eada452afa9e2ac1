"""Embedding drift of text: whether live texts still mean what the training texts meant, to the model.

Text lengths miss a change of topic or vocabulary at the same length; the model's own representation does
not. At packaging time, :func:`embedding_sketch` embeds a seeded sample of training rows with the trained
model (the pooled vector its head reads), and keeps their mean, their 32 principal axes and the sample's
coordinates on them. At monitoring time the live texts are embedded by the same model, projected on the
same axes, and compared with the sample (:func:`embedding_drift`):

- ``classifier`` (default): a logistic regression cross-validated over five seeded folds tries to tell
  training rows from live ones; its ROC AUC is the statistic (0.5: it cannot tell them apart). This is
  Evidently's default method for embeddings, with the same 0.55 threshold. The coordinates are scaled
  by one common factor, not each on its own: standardising each axis would blow a minor axis's noise up
  to the size of the main ones.
- ``mmd``: the biased squared maximum mean discrepancy with a Gaussian kernel whose width is the median
  distance between the pooled points, and its p-value from 200 seeded permutations of the pooled rows.

Layout of the sketch (``reference.json`` -> ``features.<text>.embedding``)::

    {"dim": hidden width, "rows": sampled training rows, "mean": [dim], "axes": [k <= 32][dim],
     "explained": share of the sample's variance on the k axes, "sample": [rows][k]}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from seekforge.core.deps import require

if TYPE_CHECKING:
    import pandas as pd
    import torch
    from torch import nn

    from seekforge.data import Preprocessor
    from seekforge.monitor.config import MonitorConfig

#: Training rows embedded into the sketch, and principal axes kept.
SAMPLE_ROWS = 1000
AXES = 32
PERMUTATIONS = 200
FOLDS = 5
#: The classifier's AUC must also clear 0.5 by this many standard deviations of the AUC of two samples that
#: do not differ (Mann-Whitney: sqrt((n + m + 1) / (12 n m))), so a small window's noise cannot reach
#: ``classifier_auc`` (0.59 at 100 live texts against 1,000, 0.557 at 300, 0.55 from about 400).
NOISE_SIGMAS = 3.0
EMBED_BATCH = 64


@dataclass(frozen=True)
class EmbeddingDrift:
    """A text feature's embedding comparison.

    Attributes:
        test, threshold: ``classifier`` (threshold: a ROC AUC) or ``mmd`` (threshold: a p-value).
        statistic: The classifier's cross-validated ROC AUC, or the squared MMD; None when not computed.
        p_value: The MMD permutation test's.
        drifted: The statistic crossed the threshold, with enough live rows.
        rows: Live texts embedded (a sample of the window's); ``reference_rows``: training rows in the sketch.
        note: Why nothing was computed, when it was not.
    """

    test: str
    statistic: float | None
    p_value: float | None
    threshold: float
    drifted: bool
    rows: int
    reference_rows: int
    note: str = ""

    def text(self) -> str:
        """``embeddings: classifier AUC 0.71 (drift at >= 0.55)``, for reports."""
        if self.statistic is None:
            return f"embeddings: {self.note}"
        if self.test == "classifier":
            return f"embeddings: classifier AUC {self.statistic:.3f} (drift at >= {self.threshold:.3g}), {self.rows:,} rows"
        return f"embeddings: MMD² {self.statistic:.4g}, p {self.p_value:.3g} (drift at < {self.threshold:g}), {self.rows:,} rows"


def _rounded(values: np.ndarray) -> list[Any]:
    """Six significant digits: the sketch stays small, and far finer than sampling noise."""
    return np.vectorize(lambda v: float(f"{v:.6g}"), otypes=[float])(values).tolist()


def embedding_sketch(model: nn.Module, inputs: dict[str, torch.Tensor], seed: int) -> dict[str, Any]:
    """The sketch of a text model's embeddings (its ``embed_text`` method) of a seeded sample of ``inputs``,
    the encoded training rows."""
    import torch

    from seekforge.models import infer, num_rows

    rows = num_rows(inputs)
    index = torch.randperm(rows, generator=torch.Generator().manual_seed(seed))[:SAMPLE_ROWS].sort().values
    vectors = infer(model, {k: v[index] for k, v in inputs.items()}, batch_size=EMBED_BATCH, forward=model.embed_text)
    return sketch_of(vectors.numpy())


def sketch_of(vectors: np.ndarray) -> dict[str, Any]:
    """The sketch of sampled embeddings ``[rows, dim]``: their mean, leading axes and coordinates."""
    vectors = np.asarray(vectors, dtype=np.float64)
    mean = vectors.mean(axis=0)
    _, singular, axes = np.linalg.svd(vectors - mean, full_matrices=False)
    variance = singular**2
    # axes past the sample's rank carry rounding noise, which a classifier would learn to tell apart
    axes = axes[: min(AXES, max(int(np.count_nonzero(variance > 1e-9 * variance.sum())), 1))]
    # the sign of a principal axis is arbitrary: fix it so its largest entry is positive
    axes *= np.sign(axes[np.arange(len(axes)), np.abs(axes).argmax(axis=1)])[:, None]
    return {
        "dim": int(vectors.shape[1]),
        "rows": int(vectors.shape[0]),
        "mean": _rounded(mean),
        "axes": _rounded(axes),
        "explained": float(variance[: len(axes)].sum() / max(variance.sum(), 1e-12)),
        "sample": _rounded((vectors - mean) @ axes.T),
    }


def embed_texts(model: nn.Module, preprocessor: Preprocessor, name: str, texts: pd.Series) -> np.ndarray:
    """The model's embeddings ``[rows, dim]`` of raw ``texts`` of the text feature ``name``, encoded by the
    package's preprocessor."""
    from seekforge.models import infer

    inputs = preprocessor.transform(texts.to_frame(name))
    return infer(model, inputs, batch_size=EMBED_BATCH, forward=model.embed_text).numpy()


def project(sketch: dict[str, Any], vectors: np.ndarray) -> np.ndarray:
    """Live embeddings ``[rows, dim]`` on the sketch's principal axes."""
    mean, axes = np.asarray(sketch["mean"]), np.asarray(sketch["axes"])
    if vectors.ndim != 2 or vectors.shape[1] != mean.size:
        raise ValueError(f"embeddings of width {vectors.shape[-1]} do not fit a sketch of width {mean.size}")
    return (np.asarray(vectors, dtype=np.float64) - mean) @ axes.T


def classifier_auc(reference: np.ndarray, live: np.ndarray, seed: int) -> float:
    """Cross-validated ROC AUC of a logistic regression telling ``live`` rows from ``reference`` rows."""
    require("sklearn", purpose="embedding drift")
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x = np.vstack([reference, live]) / (float(reference.std()) or 1.0)
    y = np.r_[np.zeros(len(reference)), np.ones(len(live))]
    folds = StratifiedKFold(n_splits=min(FOLDS, len(reference), len(live)), shuffle=True, random_state=seed)
    model = LogisticRegression(max_iter=1000, class_weight="balanced")
    scores = cross_val_predict(model, x, y, cv=folds, method="predict_proba")[:, 1]
    return float(roc_auc_score(y, scores))


def mmd_test(reference: np.ndarray, live: np.ndarray, seed: int) -> tuple[float, float]:
    """Biased squared MMD with a Gaussian kernel (median-distance width) and its permutation p-value."""
    x = np.vstack([reference, live])
    squares = (x * x).sum(axis=1)
    distances = np.maximum(squares[:, None] + squares[None, :] - 2.0 * x @ x.T, 0.0)
    width = float(np.median(distances[np.triu_indices(len(x), k=1)])) or 1.0
    kernel = np.exp(-distances / (2.0 * width))
    n, m = len(reference), len(live)
    weights = np.r_[np.full(n, 1.0 / n), np.full(m, -1.0 / m)]
    observed = float(weights @ kernel @ weights)
    rng = np.random.default_rng(seed)
    shuffled = np.stack([rng.permutation(weights) for _ in range(PERMUTATIONS)])
    null = np.einsum("pi,pi->p", shuffled @ kernel, shuffled)
    return observed, float((1 + np.count_nonzero(null >= observed)) / (1 + PERMUTATIONS))


def embedding_drift(
    sketch: dict[str, Any], vectors: np.ndarray, config: MonitorConfig, *, enough: bool
) -> EmbeddingDrift:
    """Compare live embeddings ``[rows, dim]`` with the sketch by ``config.embedding_test``; ``enough``:
    the window has enough rows for a verdict. The classifier's threshold rises for few live rows (see
    ``NOISE_SIGMAS``); the threshold it was judged against is the one reported."""
    reference = np.asarray(sketch["sample"], dtype=np.float64)
    live = project(sketch, vectors)
    test = config.embedding_test
    if test == "classifier":
        auc = classifier_auc(reference, live, config.seed)
        n, m = len(live), len(reference)
        threshold = max(config.classifier_auc, 0.5 + NOISE_SIGMAS * float(np.sqrt((n + m + 1) / (12 * n * m))))
        return EmbeddingDrift(test, auc, None, threshold, enough and auc >= threshold, n, m)
    statistic, p_value = mmd_test(reference, live, config.seed)
    drifted = enough and p_value < config.mmd_p_value
    return EmbeddingDrift(test, statistic, p_value, config.mmd_p_value, drifted, len(live), len(reference))
