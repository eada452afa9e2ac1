"""Training that fits memory: gradient checkpointing (the same loss and gradients with less kept for the
backward pass, on a scratch encoder and on a pretrained one; ``auto`` decides by the memory estimate against
the budget) and ``batch_size: auto`` (the largest batch whose estimate fits the budget)."""

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


def test_auto_batch_size_takes_the_largest_power_of_two_that_fits_the_budget(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from seekforge.train import _trainer
    from tests.train.test_trainer import data, make_trainer

    train, pre = data(200, 0)
    for per_row, budget, grad_accum, expected, said in (
        (1, 5, 1, 4, "batch size 4: training needs ~4 MiB"),  # the estimate: per_row MiB a micro-batch row
        (1, 6, 2, 8, "batch size 8"),  # 2 micro-batches of 4 rows
        (1, 1000, 1, 16, "at most an eighth of the 200 training rows"),
        (2, 1, 1, 1, "the smallest batch does not fit"),
    ):
        need = per_row * 2**20
        monkeypatch.setattr(
            _trainer, "training_bytes", lambda model, sample, micro_batch, n=need, **kw: micro_batch * n
        )
        trainer = make_trainer(tmp_path / f"{budget}-{grad_accum}", pre, epochs=1, batch_size="auto",
                               grad_accum=grad_accum, memory_budget=budget)  # fmt: skip
        result = trainer.fit(train, None)
        assert result.history[0]["batch_size"] == expected and trainer.config.batch_size == expected
        assert any(said in note for note in result.notes), result.notes
    monkeypatch.undo()
    real = seekforge.run(tabular_recipe(str(_tabular(tmp_path)), batch_size="auto"), runs_dir=tmp_path / "runs")
    chosen = json.loads((real.run_dir / "metrics.jsonl").read_text().splitlines()[0])["batch_size"]
    assert chosen & (chosen - 1) == 0 and chosen <= real.metrics.get("rows", 10**9)


def _tabular(folder: Path) -> Path:
    from tests.conftest import make_tabular

    make_tabular(200, seed=0).to_csv(folder / "d.csv", index=False)
    return folder / "d.csv"


def test_a_resumed_run_keeps_the_batch_size_auto_chose(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from seekforge.core.errors import TrainingInterrupted
    from seekforge.train import _trainer
    from tests.train.test_trainer import data, make_trainer, stop_at_micro_batch

    train, pre = data(200, 0)
    monkeypatch.setattr(_trainer, "training_bytes", lambda model, sample, micro_batch, **kw: micro_batch * 2**20)
    first = make_trainer(tmp_path, pre, epochs=2, batch_size="auto", memory_budget=5)
    stop_at_micro_batch(first, 3)
    with pytest.raises(TrainingInterrupted):
        first.fit(train, None)
    monkeypatch.setattr(_trainer, "training_bytes", lambda model, sample, micro_batch, **kw: 1)  # more room now
    resumed = make_trainer(tmp_path, pre, epochs=2, batch_size="auto", memory_budget=5)
    result = resumed.fit(train, None, resume=True)
    assert [h["batch_size"] for h in result.history] == [4, 4]
    assert any("as chosen when the run started" in note for note in result.notes)
