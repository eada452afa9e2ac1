from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seekforge.core.errors import ConfigError
from seekforge.models import (
    QUANT_FILE,
    CNNConfig,
    ModelIO,
    TransformerConfig,
    convert,
    prepare_qat,
    quantized_model,
    split_state,
)

pytest.importorskip("torchao")


def test_qat_state_round_trips_to_the_same_converted_model(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    torch.manual_seed(0)
    io = ModelIO(output_dim=4, image_shape=(1, 8, 8))
    model = CNNConfig(channels=[4, 8]).build(io).eval()
    example = {"image": torch.randn(8, 1, 8, 8)}
    prepared = prepare_qat(model, example)
    optimizer = torch.optim.SGD(prepared.parameters(), lr=0.05)
    prepared.train()
    for _ in range(3):
        loss = torch.nn.functional.cross_entropy(
            prepared({"image": torch.randn(16, 1, 8, 8)}), torch.randint(0, 4, (16,))
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    prepared.eval()
    converted = convert(prepared)
    weights, quant = split_state(prepared, model)
    assert set(weights) == set(model.state_dict()) and quant
    assert any(k.endswith(".scale") for k in quant)
    trained = CNNConfig(channels=[4, 8]).build(io)
    trained.load_state_dict(weights)
    save_file(quant, str(tmp_path / QUANT_FILE))
    again = quantized_model(tmp_path, trained.eval(), example)
    batch = {"image": torch.randn(5, 1, 8, 8)}  # another batch size than the example's
    assert torch.equal(converted(batch), again(batch))
    assert not torch.equal(converted(batch), trained(batch))  # quantized, not the float model


def test_transformers_are_refused_with_the_alternative() -> None:
    io = ModelIO(output_dim=2, vocab_size=30, max_length=6)
    model = TransformerConfig(layers=1, heads=2, hidden=8, ffn=16).build(io)
    example = {"input_ids": torch.randint(1, 30, (4, 6)), "attention_mask": torch.ones(4, 6, dtype=torch.long)}
    with pytest.raises(ConfigError, match="post-training int8"):
        prepare_qat(model, example)
