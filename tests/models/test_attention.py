"""Attention implementations: eager is SDPA's numbers; LSH is full attention when one chunk covers the
sequence, ignores padding, honours a causal mask, takes any length, trains and exports."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from seekforge.models import ModelIO, TransformerConfig
from seekforge.models._attention import eager_attention, lsh_attention


def _batch(rows: int = 4, tokens: int = 12) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(4, 50, (rows, tokens), generator=generator)
    mask = torch.ones(rows, tokens, dtype=torch.long)
    mask[1, 7:] = 0  # padded rows
    mask[3, 3:] = 0
    return {"input_ids": ids * mask, "attention_mask": mask}


def _model(attention: object, **shape: int) -> torch.nn.Module:
    config = TransformerConfig(layers=2, heads=2, hidden=16, ffn=32, attention=attention, **shape)
    io = config.prepare_io(ModelIO(output_dim=3, vocab_size=50, max_length=12))
    torch.manual_seed(0)
    return config.build(io).eval()


def test_eager_and_whole_sequence_lsh_give_sdpas_numbers() -> None:
    batch = _batch()
    with torch.no_grad():
        sdpa = _model("sdpa")(batch)
        for attention in ("eager", {"type": "lsh", "buckets": 4, "hashes": 2, "chunk": 12}):
            assert torch.allclose(_model(attention)(batch), sdpa, atol=1e-5), attention
        approximate = _model({"type": "lsh", "buckets": 8, "hashes": 2, "chunk": 4})(batch)
    assert approximate.isfinite().all() and not torch.allclose(approximate, sdpa, atol=1e-5)


def test_lsh_ignores_padding_keys_honours_causality_and_takes_any_length() -> None:
    generator = torch.Generator().manual_seed(1)
    q, k, v = (torch.randn(2, 2, 10, 8, generator=generator) for _ in range(3))
    padding = torch.zeros(2, 10, dtype=torch.bool)
    padding[0, 6:] = True
    rotations = torch.randn(2, 2, 8, 4, generator=generator)
    for causal in (False, True):
        whole = lsh_attention(q, k, v, padding, rotations, chunk=16, causal=causal)  # 10 tokens padded to 16
        assert torch.allclose(whole, eager_attention(q, k, v, padding, causal=causal), atol=1e-5)
    changed = v.clone()
    changed[0, :, 6:] = 100.0  # what padding keys hold must not matter
    for chunk in (3, 4):  # 10 tokens: chunks that do not divide it are padded
        ours = lsh_attention(q, k, v, padding, rotations, chunk=chunk)
        assert ours.shape == q.shape and ours.isfinite().all()
        assert torch.allclose(lsh_attention(q, k, changed, padding, rotations, chunk=chunk)[0], ours[0], atol=1e-5)
    causal = lsh_attention(q, k, v, padding, rotations, chunk=4, causal=True)
    later = v.clone()
    later[:, :, 5:] = -50.0  # a query sees no later key
    assert torch.allclose(lsh_attention(q, k, later, padding, rotations, chunk=4, causal=True)[:, :, :5],
                          causal[:, :, :5], atol=1e-5)  # fmt: skip


def test_lsh_trains_and_is_refused_on_a_pretrained_encoder() -> None:
    model = _model({"type": "lsh", "buckets": 4, "hashes": 1, "chunk": 4}).train()
    model(_batch()).sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad and p.dim() > 1)
    with pytest.raises(ValidationError, match="attention: lsh replaces a scratch encoder's attention"):
        TransformerConfig(pretrained="builtin:minilm", attention={"type": "lsh"})


def test_a_pretrained_encoder_computes_eager_attention_as_sdpa() -> None:
    pytest.importorskip("transformers")
    batch = _batch()
    outputs = []
    for attention in ("sdpa", "eager"):
        config = TransformerConfig(pretrained="builtin:minilm", attention=attention)
        io = config.prepare_io(ModelIO(output_dim=2, vocab_size=30522, max_length=12))
        torch.manual_seed(0)
        with torch.no_grad():
            outputs.append(config.build(io).eval()(batch))
    assert torch.allclose(outputs[0], outputs[1], atol=1e-5)


def test_an_lsh_package_exports_through_the_parity_gate(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    import numpy as np
    import pandas as pd

    import seekforge
    from seekforge.export import export_package
    from tests.conftest import text_recipe

    rng = np.random.default_rng(0)
    words = {"good": ["tasty", "fresh", "lovely"], "bad": ["stale", "bland", "broken"]}
    labels = rng.choice(list(words), size=80)
    texts = [" ".join(rng.choice(words[s], size=int(rng.integers(2, 15)))) for s in labels]  # lengths vary
    pd.DataFrame({"review": texts, "score": labels}).to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    recipe = text_recipe(str(tmp_path / "t.jsonl"), epochs=1)
    recipe["model"] = {**recipe["model"], "attention": {"type": "lsh", "buckets": 4, "hashes": 2, "chunk": 4}}
    package = seekforge.run(recipe, runs_dir=tmp_path / "runs").package
    result = export_package(package)
    assert result.parity.passed and result.parity.max_abs_diff < 1e-4, result.parity


def test_lsh_leaves_no_real_token_without_keys_in_a_padded_batch() -> None:
    generator = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(4, 2, 64, 8, generator=generator) for _ in range(3))
    padding = torch.ones(4, 64, dtype=torch.bool)
    for row, real in enumerate((64, 40, 20, 10)):
        padding[row, :real] = False
    out = lsh_attention(q, k, v, padding, torch.randn(2, 2, 8, 8, generator=generator), chunk=8)
    empty = (out.abs().sum(-1) == 0) & ~padding[:, None, :]  # a real query whose chunks held padding only
    assert not empty.any(), int(empty.sum())
