"""The deletion test of an explanation's faithfulness: remove each row's inputs in the order of their
attributions (most supportive first) and watch the explained output fall, beside the same number of
inputs removed at random. An explanation that points at what the model uses makes the output fall faster:
the ratio of the areas under the two curves is above 1.

Removing a table's feature replaces it with background rows' values (the output averaged over them), a
token becomes padding, an image's pixel the training mean (zero after normalisation).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from seekforge.explain import _tabular

if TYPE_CHECKING:
    from seekforge.explain._explain import Explanation
    from seekforge.explain._model import ExplainedModel

#: Shares of each row's inputs removed along the curve.
FRACTIONS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5)
#: Random orders the random curve averages over.
RANDOM_ORDERS = 5
#: What removing an input means, by kind of input.
REMOVED = {
    "tabular": "features replaced by background rows' values",
    "text": "tokens replaced by padding",
    "image": "pixels set to the training mean",
    "inputs": "inputs (each whole) replaced by background rows' values",
}
#: Background rows a removed table feature is averaged over.
BACKGROUND_ROWS = 30


def deletion_curves(
    model: ExplainedModel, found: Explanation, batch: dict[str, torch.Tensor], background: Any, *, seed: int
) -> dict[str, Any]:
    """The mean drop of the explained output at each share of inputs removed, by attribution and at random,
    and the ratio of the areas under the two curves."""
    rng = np.random.default_rng(seed)
    targets = np.asarray(found.targets, dtype=np.int64)
    # A classifier's curve follows each row's predicted class: with two classes, where the explained
    # (positive) class is not the prediction, the attributions and the drop change sign (p(negative) =
    # 1 - p(positive)). A regressor's follows each row's departure from the base: for a row predicted
    # below it, removing its most negative inputs first should raise the output back towards the base.
    if model.task == "classification":
        signs = np.where([p == model.classes[t] for p, t in zip(found.predictions, targets, strict=True)], 1.0, -1.0)
    else:
        signs = np.where(np.asarray(found.values) >= np.asarray(found.base), 1.0, -1.0)
    signed = [np.asarray(row, dtype=np.float64) * sign for row, sign in zip(found.attributions, signs, strict=True)]
    if found.kind in ("tabular", "inputs"):
        outputs = _tabular_outputs(model, found.extras["encoded"], signed, background[:BACKGROUND_ROWS], targets, rng)
    elif found.kind == "text":
        outputs = _text_outputs(model, signed, batch, targets, rng)
    else:
        outputs = _image_outputs(model, signed, batch, targets, rng)
    values = np.asarray(found.values)[:, None]
    ranked = (signs[:, None] * (values - outputs[0])).mean(axis=0)  # [fractions]
    random = (signs[:, None, None] * (values[:, None] - outputs[1])).mean(axis=(0, 1))
    area_ranked, area_random = float(ranked[1:].mean()), float(random[1:].mean())
    return {
        "fractions": list(FRACTIONS),
        "by_attribution": ranked.tolist(),
        "random": random.tolist(),
        "area_by_attribution": area_ranked,
        "area_random": area_random,
        # removing random inputs that does not move the output on average leaves nothing to compare with
        "area_ratio": area_ranked / area_random if area_random > 1e-12 else None,
        "removed": REMOVED[found.kind],
    }


def _orders(values: np.ndarray, rng: np.random.Generator) -> list[np.ndarray]:
    """Positions by attribution (largest first), then ``RANDOM_ORDERS`` random permutations."""
    return [np.argsort(-values, kind="stable"), *(rng.permutation(len(values)) for _ in range(RANDOM_ORDERS))]


def _deletions(values: np.ndarray, rng: np.random.Generator, remove: Callable[[np.ndarray], Any]) -> list[Any]:
    """``remove(positions)`` of the first ``share`` of each order's positions, order by order (see
    :func:`_orders`), share by share (:data:`FRACTIONS`)."""
    counts = [int(np.ceil(f * len(values))) for f in FRACTIONS]
    return [remove(order[:count]) for order in _orders(values, rng) for count in counts]


def _split(outputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``[rows, orders, fractions]`` -> (by attribution ``[rows, fractions]``, random ``[rows, R, fractions]``)."""
    return outputs[:, 0], outputs[:, 1:]


def _tabular_outputs(
    model: ExplainedModel,
    rows: np.ndarray,
    attributions: list[np.ndarray],
    background: np.ndarray,
    targets: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    variants = []
    for row, values in zip(rows, attributions, strict=True):

        def remove(positions: np.ndarray, row: np.ndarray = row) -> np.ndarray:
            copies = np.repeat(row[None], len(background), axis=0)
            copies[:, positions] = background[:, positions]
            return copies

        variants += _deletions(values, rng, remove)
    scores = _tabular.score_matrix(model, np.concatenate(variants))
    scores = scores.reshape(len(rows), 1 + RANDOM_ORDERS, len(FRACTIONS), len(background), -1)
    return _split(scores[np.arange(len(rows)), :, :, :, targets].mean(axis=-1))  # [rows, orders, fractions]


def _text_outputs(
    model: ExplainedModel,
    attributions: list[np.ndarray],
    batch: dict[str, torch.Tensor],
    targets: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    encoder = next(iter(model.preprocessor.text_.values()))
    special = torch.tensor(sorted(encoder.special_ids), dtype=torch.long)
    results = np.zeros((len(attributions), 1 + RANDOM_ORDERS, len(FRACTIONS)))
    for row, values in enumerate(attributions):
        length = len(values)
        ids = batch["input_ids"][row, :length]
        mask = batch["attention_mask"][row : row + 1, :length]
        words = np.flatnonzero(~torch.isin(ids, special).numpy())  # special tokens stay

        def remove(positions: np.ndarray, ids: torch.Tensor = ids, words: np.ndarray = words) -> torch.Tensor:
            copy = ids.clone()
            copy[torch.from_numpy(words[positions])] = encoder.pad_id
            return copy

        stacked = torch.stack(_deletions(values[words], rng, remove))
        with torch.no_grad():
            scores = model.scores({"input_ids": stacked, "attention_mask": mask.expand(len(stacked), -1)})
        results[row] = scores[:, targets[row]].double().numpy().reshape(1 + RANDOM_ORDERS, len(FRACTIONS))
    return _split(results)


def _image_outputs(
    model: ExplainedModel,
    attributions: list[np.ndarray],
    batch: dict[str, torch.Tensor],
    targets: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    images = batch["image"]
    results = np.zeros((len(attributions), 1 + RANDOM_ORDERS, len(FRACTIONS)))
    for row, values in enumerate(attributions):

        def remove(positions: np.ndarray, image: torch.Tensor = images[row]) -> torch.Tensor:
            copy = image.clone().reshape(image.shape[0], -1)
            copy[:, torch.from_numpy(positions)] = 0.0
            return copy.reshape(image.shape)

        scores = model.predict_scores({"image": torch.stack(_deletions(values.reshape(-1), rng, remove))})
        results[row] = scores[:, targets[row]].double().numpy().reshape(1 + RANDOM_ORDERS, len(FRACTIONS))
    return _split(results)
