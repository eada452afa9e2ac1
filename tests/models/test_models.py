from __future__ import annotations

import pytest
import torch

from seekforge.core.errors import ConfigError
from seekforge.models import CNNConfig, MLPConfig, ModelIO, TransformerConfig
from seekforge.testing import sample_batch


def test_mlp_with_categories_and_linear_variant() -> None:
    io = ModelIO(output_dim=3, numeric_dim=4, category_cardinalities=(5, 2))
    assert MLPConfig(hidden=[8]).build(io)(sample_batch(io)).shape == (4, 3)
    linear = MLPConfig(hidden=[]).build(io)
    assert linear(sample_batch(io)).shape == (4, 3)
    assert not any(isinstance(m, torch.nn.Dropout) for m in linear.modules())


@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32), (1, 3, 3)])
def test_cnn_handles_small_and_large_images(shape: tuple[int, int, int]) -> None:
    io = ModelIO(output_dim=10, image_shape=shape)
    assert CNNConfig(channels=[4, 8]).build(io)(sample_batch(io)).shape == (4, 10)


def test_scratch_transformer_ignores_padding() -> None:
    io = ModelIO(output_dim=2, vocab_size=50, max_length=10)
    model = TransformerConfig(layers=1, heads=2, hidden=16, ffn=32).build(io).eval()
    batch = sample_batch(io)
    batch["attention_mask"][:, 6:] = 0
    out = model(batch)
    batch["input_ids"][:, 6:] = 7  # changing padded tokens must not change the output
    assert torch.allclose(out, model(batch), atol=1e-5)


def test_transformer_config_rules() -> None:
    with pytest.raises(ValueError, match="divisible by heads"):
        TransformerConfig(hidden=30, heads=4)
    with pytest.raises(ValueError, match="only apply to an encoder trained from scratch"):
        TransformerConfig(pretrained="builtin:minilm", layers=4)
    with pytest.raises(ValueError, match="freeze_encoder needs a pretrained encoder"):
        TransformerConfig(freeze_encoder=True)
    scratch = TransformerConfig()
    assert (scratch.layers, scratch.heads, scratch.hidden, scratch.ffn) == (2, 4, 128, 256)
    pretrained = TransformerConfig(pretrained="builtin:minilm")
    assert pretrained.hidden is None
    assert TransformerConfig.model_validate(pretrained.model_dump()) == pretrained
    assert TransformerConfig.model_validate(scratch.model_dump()) == scratch


def test_pretrained_dir_must_exist(tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="not a local Hugging Face model directory"):
        TransformerConfig(pretrained=str(tmp_path)).tokenizer_path()


def test_minilm_frozen_and_rebuilt_from_config() -> None:
    config = TransformerConfig(pretrained="builtin:minilm", freeze_encoder=True)
    io = config.prepare_io(ModelIO(output_dim=2, vocab_size=30522, max_length=16))
    assert io.extra["hf_config"]["hidden_size"] == 384
    torch.manual_seed(0)
    model = config.build(io)
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable == ["head.weight", "head.bias"]
    assert not any("pooler" in n for n, _ in model.named_parameters())  # unused, and would stall DDP
    model.train()
    assert not model.encoder.training  # a frozen encoder keeps dropout off
    rebuilt = config.build(io, pretrained=False)
    rebuilt.load_state_dict(model.state_dict())
    batch = sample_batch(io)
    assert torch.allclose(model.eval()(batch), rebuilt.eval()(batch), atol=1e-6)
    # the copy for export keeps the 16 positions the tokenizer produces, of the encoder's 512
    exported = model.for_export()
    assert exported.encoder.embeddings.position_embeddings.num_embeddings == 16
    assert model.encoder.embeddings.position_embeddings.num_embeddings == 512  # the model itself is untouched
    assert torch.allclose(model(batch), exported(batch), atol=1e-6)


def test_scratch_text_model_starts_from_a_pretrained_teachers_embeddings() -> None:
    transformers = pytest.importorskip("transformers")
    vocab, teacher_width, width = 60, 24, 8
    bert = transformers.BertConfig(
        vocab_size=vocab, hidden_size=teacher_width, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, max_position_embeddings=32,
    )  # fmt: skip
    teacher = torch.nn.Module()
    teacher.encoder = transformers.BertModel(bert)
    generator = torch.Generator().manual_seed(0)
    # a teacher whose token vectors span exactly ``width`` directions: the projection keeps their geometry
    basis = torch.randn(width, teacher_width, generator=generator)
    teacher.encoder.embeddings.word_embeddings.weight.data = torch.randn(vocab, width, generator=generator) @ basis
    config = TransformerConfig(type="transformer", layers=1, heads=2, hidden=width, ffn=16)
    student = config.build(ModelIO(output_dim=2, vocab_size=vocab, max_length=16))
    assert student.embeddings_from(teacher)
    words = teacher.encoder.embeddings.word_embeddings.weight.detach()
    centred = words - words.mean(dim=0)
    ours = student.embed.weight.detach()
    assert float(ours[1:].std()) == pytest.approx(1.0, rel=0.05) and not ours[0].any()  # row 0 pads
    distance, projected = torch.cdist(centred[1:], centred[1:]), torch.cdist(ours[1:], ours[1:])
    torch.testing.assert_close(projected / projected.max(), distance / distance.max(), atol=1e-3, rtol=0)
    batch = {"input_ids": torch.randint(1, vocab, (2, 16)), "attention_mask": torch.ones(2, 16, dtype=torch.long)}
    assert student(batch).shape == (2, 2)

    other = config.build(ModelIO(output_dim=2, vocab_size=vocab + 1, max_length=16))
    before = other.embed.weight.detach().clone()
    assert not other.embeddings_from(teacher)  # another vocabulary: nothing to carry over
    assert torch.equal(other.embed.weight, before)
    assert not student.embeddings_from(other)  # a scratch teacher has no pretrained table

    table = student.token_table()  # a copy of the token table
    assert torch.equal(table, student.embed.weight)
    table.zero_()
    assert student.embed.weight.any()
