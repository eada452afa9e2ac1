"""Text: each token's attribution to the explained output, by captum's layer integrated gradients at the
token embeddings (from a baseline that keeps the special tokens and pads every other) or by occlusion
(each token replaced by padding in turn); and the model's attention weights per layer and head."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from seekforge.core.deps import require
from seekforge.explain._model import ExplainedModel


@dataclass
class TokenRow:
    """One text's tokens (padding left out) and their attributions."""

    tokens: list[str]
    attributions: list[float]
    base: float
    delta: float | None  # sum of attributions minus (output - base); None for occlusion
    steps: int | None


def encoder_of(model: ExplainedModel) -> Any:
    return next(iter(model.preprocessor.text_.values()))


def token_rows(
    model: ExplainedModel,
    batch: dict[str, torch.Tensor],
    targets: np.ndarray,
    *,
    method: str,
    steps: int,
    tolerance: float,
    advance: Callable[[int], None] = lambda n: None,
) -> list[TokenRow]:
    """Attributions of each row's tokens to its target output.

    Integrated gradients start with ``steps`` steps and take four times as many (once) for a row whose
    attributions miss completeness by more than ``tolerance``.
    """
    attr = require("captum.attr", purpose="text explanations")
    encoder = encoder_of(model)
    special = torch.tensor(sorted(encoder.special_ids), dtype=torch.long)
    net = model.model

    def forward(ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return model.scores({"input_ids": ids, "attention_mask": mask.expand(ids.shape[0], -1)})

    rows = []
    for row, target in enumerate(targets.tolist()):
        length = max(int(batch["attention_mask"][row].sum()), 1)
        ids = batch["input_ids"][row : row + 1, :length]
        mask = batch["attention_mask"][row : row + 1, :length]
        keep = torch.isin(ids, special)
        baseline = torch.where(keep, ids, torch.full_like(ids, encoder.pad_id))
        with torch.no_grad():
            base = float(forward(baseline, mask)[0, target])
        delta: float | None = None
        used: int | None = None
        if method == "occlusion":
            ablation = attr.FeatureAblation(forward)
            values = ablation.attribute(
                ids, baselines=encoder.pad_id, additional_forward_args=(mask,), target=target,
                perturbations_per_eval=min(length, 64),
            )[0]  # fmt: skip
            values = torch.where(keep[0], torch.zeros_like(values, dtype=torch.float), values.float())
        else:
            ig = attr.LayerIntegratedGradients(forward, net.input_embeddings())
            for used in (steps, 4 * steps):
                found, gap = ig.attribute(
                    ids, baselines=baseline, additional_forward_args=(mask,), target=target, n_steps=used,
                    internal_batch_size=used, return_convergence_delta=True,
                )  # fmt: skip
                delta = float(gap[0])
                if abs(delta) <= tolerance:
                    break
            values = found[0].sum(dim=-1)
        rows.append(TokenRow(encoder.tokens(ids[0].tolist()), [float(v) for v in values.detach()], base, delta, used))
        advance(1)
    return rows


def attention(model: ExplainedModel, batch: dict[str, torch.Tensor], row: int) -> list[np.ndarray]:
    """Row ``row``'s attention weights per layer, ``[heads, tokens, tokens]`` over its tokens (no padding)."""
    length = max(int(batch["attention_mask"][row].sum()), 1)
    one = {k: batch[k][row : row + 1, :length] for k in ("input_ids", "attention_mask")}
    return [layer[0].float().numpy() for layer in model.model.attention_maps(one)]
