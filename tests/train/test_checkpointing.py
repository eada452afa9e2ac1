"""Gradient checkpointing: the same loss and gradients with less kept for the backward pass, on a scratch
encoder and on a pretrained one; ``auto`` decides by the memory estimate against the budget."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import seekforge
from seekforge.core.errors import ConfigError
from seekforge.models import ModelIO, TransformerConfig
from seekforge.testing import sample_batch
from seekforge.train import training_bytes
from tests.conftest import tabular_recipe, text_recipe


def _gradients(config: TransformerConfig, io: ModelIO, *, checkpointed: bool) -> tuple[float, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    model = config.build(io).train()
    model.checkpoint_layers(checkpointed)
    batch = sample_batch(io, rows=4)
    torch.manual_seed(1)  # the same dropout draws for both (checkpointing replays them in the backward pass)
    loss = model(batch).square().mean()
    loss.backward()
    return loss.item(), {k: p.grad.clone() for k, p in model.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("pretrained", [None, "builtin:minilm"])
def test_checkpointed_layers_give_the_same_loss_and_gradients(pretrained: str | None) -> None:
    if pretrained is None:
        config = TransformerConfig(layers=2, heads=2, hidden=16, ffn=32)
    else:
        pytest.importorskip("transformers")
        config = TransformerConfig(pretrained=pretrained)
    io = config.prepare_io(ModelIO(output_dim=3, vocab_size=30522 if pretrained else 50, max_length=12))
    plain_loss, plain = _gradients(config, io, checkpointed=False)
    loss, grads = _gradients(config, io, checkpointed=True)
    assert loss == pytest.approx(plain_loss, abs=1e-6)
    assert set(grads) == set(plain) and all(torch.allclose(grads[k], plain[k], atol=1e-5) for k in plain)


def test_the_estimate_keeps_less_with_checkpointing() -> None:
    config = TransformerConfig(layers=4, heads=2, hidden=32, ffn=128)
    io = config.prepare_io(ModelIO(output_dim=2, vocab_size=100, max_length=64))
    model = config.build(io)
    sample = sample_batch(io, rows=2)
    plain = training_bytes(model, sample, micro_batch=32, optimizer="adamw")
    checkpointed = training_bytes(model, sample, micro_batch=32, optimizer="adamw", checkpointed=True)
    weights = training_bytes(model, sample, micro_batch=0, optimizer="adamw")
    assert weights < checkpointed < plain and (checkpointed - weights) < 0.5 * (plain - weights)


def test_auto_turns_it_on_over_the_budget_and_records_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    words = {"good": ["tasty", "fresh"], "bad": ["stale", "bland"]}
    labels = rng.choice(list(words), size=60)
    frame = pd.DataFrame({"review": [" ".join(rng.choice(words[s], size=4)) for s in labels], "score": labels})
    frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    for budget, on in ((1, True), (1_000_000, False)):
        recipe = text_recipe(str(tmp_path / "t.jsonl"), hidden=128, epochs=1, gradient_checkpointing="auto",
                             memory_budget=budget)  # fmt: skip
        result = seekforge.run(recipe, runs_dir=tmp_path / f"runs-{budget}")
        records = [json.loads(line) for line in (result.run_dir / "metrics.jsonl").read_text().splitlines()]
        assert [r["gradient_checkpointing"] for r in records] == [on]
    with pytest.raises(ConfigError, match="a mlp model has no encoder layers to checkpoint"):
        seekforge.run(tabular_recipe(str(tmp_path / "t.jsonl"), gradient_checkpointing=True), runs_dir=tmp_path)
