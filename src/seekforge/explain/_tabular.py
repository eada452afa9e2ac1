"""Tables: SHAP values of each input feature, computed by shap's exact (few features) or permutation
explainer on the package's own model, with the preprocessing's encoded columns as the features.

Each input feature is one encoded column (a scaled number, a 0/1 flag or a category's code) and the
preprocessing is column by column, so masking an encoded column with a background row's value is the same
as giving the model that row's raw value: the attributions are those of the raw features, at the cost of
a matrix product rather than a table check per evaluation.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from seekforge.core.deps import require
from seekforge.core.errors import ConfigError
from seekforge.explain._model import ExplainedModel
from seekforge.runtime import datetime_columns

#: Rows per call of the SHAP explainer, between progress updates.
_CHUNK = 10
#: Up to this many features shap's exact explainer (2^features evaluations per row) is used.
EXACT_FEATURES = 10


def feature_names(model: ExplainedModel) -> list[str]:
    """The input features in the order of the encoded columns: numeric, binary, each datetime's calendar
    parts (``signup.month_sin``, ...), then category."""
    pre = model.preprocessor
    return [*pre.numeric_columns(), *pre.categories_]


def raw_values(model: ExplainedModel, frame: Any) -> Any:
    """``frame``'s raw value behind each encoded column (a calendar part shows its datetime's value)."""
    sources = {column: name for name, spec in model.preprocessor.datetimes_.items()
               for column in datetime_columns(name, spec["parts"])}  # fmt: skip
    return frame[[sources.get(name, name) for name in feature_names(model)]].set_axis(feature_names(model), axis=1)


def encoded(model: ExplainedModel, batch: dict[str, torch.Tensor]) -> np.ndarray:
    """``[rows, features]`` float64: the numeric columns, then the category codes."""
    parts = [batch[k].double().numpy() for k in ("numeric", "category") if k in batch]
    return np.concatenate(parts, axis=1)


def as_batch(model: ExplainedModel, matrix: np.ndarray) -> dict[str, torch.Tensor]:
    """The model's inputs from an :func:`encoded` matrix (or, for a model over several kinds of input, from
    a matrix of rows of its pool: see ``_inputs``)."""
    if model.pool is not None:
        return model.pool.batch(matrix)
    numeric = len(model.preprocessor.numeric_columns())
    batch: dict[str, torch.Tensor] = {}
    if numeric:
        batch["numeric"] = torch.from_numpy(np.ascontiguousarray(matrix[:, :numeric], dtype=np.float32))
    if model.preprocessor.categories_:
        batch["category"] = torch.from_numpy(np.rint(matrix[:, numeric:]).astype(np.int64))
    return batch


def score_matrix(model: ExplainedModel, matrix: np.ndarray) -> np.ndarray:
    """``[rows, outputs]`` scores of encoded rows."""
    return model.predict_scores(as_batch(model, matrix)).double().numpy()


def shap_values(
    model: ExplainedModel,
    rows: np.ndarray,
    background: np.ndarray,
    targets: np.ndarray,
    *,
    seed: int,
    max_evals: int | None = None,
    advance: Callable[[int], None] = lambda n: None,
) -> tuple[np.ndarray, np.ndarray, str]:
    """SHAP values ``[rows, features]`` of each row's target output, the base values ``[rows]`` (the mean
    output over the background) and the algorithm used.

    Args:
        rows, background: Encoded rows (see :func:`encoded`); the background rows stand for "feature
            unknown" (shap's independent masker).
        max_evals: The permutation explainer's model evaluations per row (default: 10 permutations).
        advance: Called with the number of rows done, chunk by chunk.
    """
    with warnings.catch_warnings():  # shap's import sets up matplotlib colour maps with deprecated calls
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        shap = require("shap", purpose="SHAP explanations")
    features = rows.shape[1]
    algorithm = "exact" if features <= EXACT_FEATURES else "permutation"
    masker = shap.maskers.Independent(background, max_samples=len(background))
    explainer = shap.Explainer(lambda m: score_matrix(model, m), masker, algorithm=algorithm, seed=seed)
    options: dict[str, Any] = {"silent": True}
    if algorithm == "permutation":
        options["max_evals"] = max_evals or 10 * (2 * features + 1)
    chunks = []
    for start in range(0, len(rows), _CHUNK):
        chunks.append(explainer(rows[start : start + _CHUNK], **options))
        advance(len(chunks[-1].values))
    values = np.concatenate([np.asarray(c.values, dtype=np.float64) for c in chunks])  # [rows, features, outputs]
    base = np.concatenate([np.asarray(c.base_values, dtype=np.float64) for c in chunks])  # [rows, outputs]
    if values.ndim == 2:  # one output (a regressor): shap leaves out its axis
        values, base = values[..., None], base.reshape(len(base), 1)
    pick = np.arange(len(rows))
    return values[pick, :, targets], base[pick, targets], f"shap-{algorithm}"


def occlusion_values(
    model: ExplainedModel, rows: np.ndarray, background: np.ndarray, targets: np.ndarray
) -> tuple[np.ndarray, np.ndarray, str]:
    """Each feature's effect on its row's target output when replaced by the background's typical value
    (median of numbers, most common category code): captum's feature ablation. Not additive: the values
    need not sum to the output minus the base."""
    attr = require("captum.attr", purpose="occlusion explanations")
    reference = _typical(model, background)
    ablation = attr.FeatureAblation(lambda x: torch.from_numpy(score_matrix(model, x.numpy())))
    values = ablation.attribute(
        torch.from_numpy(rows),
        baselines=torch.from_numpy(reference[None]),
        target=torch.from_numpy(targets),
        perturbations_per_eval=rows.shape[1],
    ).numpy()
    base = score_matrix(model, reference[None])[0, targets]
    return values.astype(np.float64), base, "occlusion"


def _typical(model: ExplainedModel, background: np.ndarray) -> np.ndarray:
    numeric = len(model.preprocessor.numeric_columns())
    typical = np.median(background, axis=0)
    for column in range(numeric, background.shape[1]):
        codes, counts = np.unique(background[:, column], return_counts=True)
        typical[column] = codes[counts.argmax()]
    return typical


def check_method(model: ExplainedModel, method: str) -> str:
    """The method for a table: ``auto`` is SHAP; integrated gradients need every feature continuous."""
    if method in ("auto", "shap"):
        return "shap"
    if method == "ig" and model.preprocessor.categories_:
        raise ConfigError(
            f"--method ig needs continuous features; category feature(s) "
            f"{', '.join(map(repr, model.preprocessor.categories_))} have no path to integrate along",
            hint="use --method shap (the default for tables) or --method occlusion",
        )
    return method


def ig_values(
    model: ExplainedModel, rows: np.ndarray, background: np.ndarray, targets: np.ndarray, *, steps: int
) -> tuple[np.ndarray, np.ndarray, str]:
    """Integrated gradients from the background's mean row (numeric features only)."""
    attr = require("captum.attr", purpose="integrated gradients")
    reference = torch.from_numpy(background.mean(axis=0, keepdims=True).astype(np.float32))
    ig = attr.IntegratedGradients(lambda x: model.scores({"numeric": x}))
    values = ig.attribute(
        torch.from_numpy(rows.astype(np.float32)),
        baselines=reference,
        target=torch.from_numpy(targets),
        n_steps=steps,
        internal_batch_size=4096,
    )
    base = score_matrix(model, reference.double().numpy())[0, targets]
    return values.detach().double().numpy(), base, "integrated-gradients"
