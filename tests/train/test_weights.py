"""A tensor's histogram as the trainer writes it: exact integer counts past float32's 2^24, a constant tensor
in its middle bin, a diverged one said so."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from seekforge.train import _weights


def test_counts_stay_exact_past_float32_and_match_numpy() -> None:
    values = torch.randn(5_000_000, generator=torch.Generator().manual_seed(0))  # more than one chunk
    low, high = float(values.min()), float(values.max())
    counts = _weights._counts(values, low, high)
    expected, _ = np.histogram(values.numpy().astype(np.float64), bins=_weights.BINS, range=(low, high))
    assert sum(counts) == values.numel() and all(isinstance(c, int) for c in counts)
    assert np.abs(np.asarray(counts) - expected).max() <= 2  # float32 against float64 at the bins' edges


def test_a_constant_and_a_diverged_tensor() -> None:
    model = nn.Linear(3, 2)
    nn.init.constant_(model.bias, 0.5)
    with torch.no_grad():
        model.weight[0, 0] = float("nan")
    record = _weights.epoch_record(1, list(model.named_parameters()), None, 0)
    bias = record["layers"]["bias"]
    assert bias["counts"][_weights.BINS // 2] == 2 and sum(bias["counts"]) == 2 and bias["min"] == bias["max"] == 0.5
    assert record["layers"]["weight"] == {"shape": [2, 3], "finite": False}
