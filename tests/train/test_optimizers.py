"""One and two steps of LAMB and Adafactor, as built from their configs, against the published update
rules computed by hand in numpy (float64)."""

from __future__ import annotations

import numpy as np
import torch

from seekforge.train.config import AdafactorConfig, LambConfig


def _step(optimizer: torch.optim.Optimizer, param: torch.nn.Parameter, grad: np.ndarray) -> np.ndarray:
    param.grad = torch.tensor(grad, dtype=torch.float64)
    optimizer.step()
    return param.detach().numpy().copy()


def test_lamb_matches_the_paper_step_by_step() -> None:
    """You et al. 2020, Algorithm 2: Adam's bias-corrected moments, weight decay added to the update, and
    the step scaled by the trust ratio ||w|| / ||update||."""
    lr, (b1, b2), eps, wd = 0.1, (0.9, 0.999), 1e-6, 0.01
    w = np.array([1.0, -2.0, 0.5])
    param = torch.nn.Parameter(torch.tensor(w))
    optimizer = LambConfig(weight_decay=wd).build([param], lr)
    m, v = np.zeros(3), np.zeros(3)
    for t, g in enumerate((np.array([0.1, 0.4, -0.3]), np.array([-0.2, 0.1, 0.2])), start=1):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        update = (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps) + wd * w
        w = w - lr * np.linalg.norm(w) / np.linalg.norm(update) * update
        np.testing.assert_allclose(_step(optimizer, param, g), w, rtol=1e-12)
    # the first step in closed form: the update is g / (|g| + eps) + wd * w0, its size set by ||w0||
    w0, g = np.array([3.0, 4.0]), np.array([0.5, -0.5])
    param = torch.nn.Parameter(torch.tensor(w0))
    update = g / (np.abs(g) + eps) + wd * w0
    expected = w0 - lr * 5.0 / np.linalg.norm(update) * update
    np.testing.assert_allclose(_step(LambConfig(weight_decay=wd).build([param], lr), param, g), expected, rtol=1e-12)


def test_adafactor_matches_the_update_rule_on_a_vector() -> None:
    """Shazeer & Stern 2018 as torch implements it (torch.optim.Adafactor's documented algorithm) for an
    unfactored (1-D) parameter: beta2_t = 1 - t^decay, V_t = beta2_t V + (1 - beta2_t) g^2,
    U = g / sqrt(V_t), clipped to RMS 1, step max(eps2, RMS(w)) * min(lr, 1/sqrt(t))."""
    lr, decay, eps2 = 0.01, -0.8, 1e-3
    w = np.array([0.5, -1.0, 2.0])
    param = torch.nn.Parameter(torch.tensor(w))
    optimizer = AdafactorConfig(beta2_decay=decay).build([param], lr)
    v = np.zeros(3)
    for t, g in enumerate((np.array([0.3, -0.2, 0.05]), np.array([-0.1, 0.4, 0.2])), start=1):
        beta2 = 1 - t**decay
        v = beta2 * v + (1 - beta2) * g * g
        u = g / np.sqrt(v)
        u = u / max(1.0, np.sqrt(np.mean(u * u)))
        w = w - max(eps2, np.sqrt(np.mean(w * w))) * min(lr, 1 / np.sqrt(t)) * u
        np.testing.assert_allclose(_step(optimizer, param, g), w, rtol=1e-9)
