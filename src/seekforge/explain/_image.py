"""Images: each pixel's attribution to the explained output, by captum's integrated gradients from the
training set's mean image (a zero input after normalisation) or by occlusion (patches set to that mean
in turn); and the CNN's feature maps, block by block."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from seekforge.core.deps import require
from seekforge.explain._model import ExplainedModel


@dataclass
class PixelRows:
    """Attributions ``[rows, height, width]`` (summed over channels), base outputs, completeness gaps."""

    attributions: np.ndarray
    base: np.ndarray
    delta: np.ndarray | None
    steps: list[int | None]  # per row


def pixel_rows(
    model: ExplainedModel, images: torch.Tensor, targets: np.ndarray, *, method: str, steps: int, tolerance: float
) -> PixelRows:
    """Attributions of every pixel of ``images`` (the model's normalised input) to each row's target."""
    attr = require("captum.attr", purpose="image explanations")

    def forward(x: torch.Tensor) -> torch.Tensor:
        return model.scores({"image": x})

    target = torch.from_numpy(targets)
    baseline = torch.zeros_like(images[:1])
    with torch.no_grad():
        base = forward(baseline)[0, target].double().numpy()
    if method == "occlusion":
        height, width = images.shape[-2:]
        patch = (images.shape[1], max(height // 8, 1), max(width // 8, 1))
        stride = (images.shape[1], max(patch[1] // 2, 1), max(patch[2] // 2, 1))
        values = attr.Occlusion(forward).attribute(
            images, sliding_window_shapes=patch, strides=stride, baselines=0.0, target=target,
            perturbations_per_eval=64,
        )  # fmt: skip
        return PixelRows(values.sum(dim=1).double().numpy(), base, None, [None] * len(images))
    ig = attr.IntegratedGradients(forward)
    found, gap = ig.attribute(images, baselines=baseline, target=target, n_steps=steps,
                              internal_batch_size=max(steps, 64), return_convergence_delta=True)  # fmt: skip
    redo = gap.abs() > tolerance
    if bool(redo.any()):  # rows that miss completeness get four times the steps, once
        again, gap_again = ig.attribute(images[redo], baselines=baseline, target=target[redo], n_steps=4 * steps,
                                        internal_batch_size=4 * steps, return_convergence_delta=True)  # fmt: skip
        found[redo], gap[redo] = again, gap_again
    used: list[int | None] = [4 * steps if r else steps for r in redo.tolist()]
    return PixelRows(found.sum(dim=1).detach().double().numpy(), base, gap.detach().double().numpy(), used)


def feature_maps(model: ExplainedModel, image: torch.Tensor, *, per_block: int = 8) -> list[np.ndarray]:
    """One row's feature maps at the end of each block of a CNN whose ``features`` is a Sequential (the
    input of each pooling, and the last layer's output): per block, the ``per_block`` channels with the
    largest mean activation, ``[channels, height, width]``. Empty for other models."""
    body = getattr(model.model, "features", None)
    if not isinstance(body, nn.Sequential):
        return []
    found: list[torch.Tensor] = []
    hooks = [m.register_forward_pre_hook(lambda _, args: found.append(args[0])) for m in body
             if isinstance(m, nn.MaxPool2d)]  # fmt: skip
    try:
        with torch.no_grad():
            found.append(body(image[None]))
    finally:
        for hook in hooks:
            hook.remove()
    maps = []
    for tensor in found:
        block = tensor[0].float()
        top = block.mean(dim=(1, 2)).argsort(descending=True)[:per_block]
        maps.append(block[top].numpy())
    return maps
