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


def test_a_periodic_numeric_embedding_gives_each_column_its_own_waves_and_layer() -> None:
    torch.manual_seed(0)
    io = ModelIO(output_dim=2, numeric_dim=3, category_cardinalities=(4,))
    model = MLPConfig(hidden=[8], numeric_embedding={"type": "periodic", "frequencies": 5, "dim": 6}).build(io)
    assert model.periodic is not None and model.body[0].in_features == 3 * 6 + model.embeddings[0].embedding_dim
    numbers = torch.tensor([[0.0, 1.0, -1.0], [0.0, 2.0, -1.0]])
    waves = model.periodic(numbers).view(2, 3, 6)
    assert torch.equal(waves[0, 0], waves[1, 0]) and not torch.equal(waves[0, 1], waves[1, 1])  # column by column
    assert model(sample_batch(io)).shape == (4, 2)
    assert model.periodic in MLPConfig(numeric_embedding={"type": "periodic"}).unprunable(model)
    plain = MLPConfig(hidden=[8]).build(io)
    assert plain.periodic is None and plain.body[0].in_features == 3 + plain.embeddings[0].embedding_dim


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
    for field in ({"keep_layers": 2}, {"token_rank": 32}, {"vocabulary": "training"}):
        with pytest.raises(ValueError, match=f"{next(iter(field))} only apply to a pretrained encoder"):
            TransformerConfig(**field)
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


def _minilm_student(**fields: object) -> tuple[TransformerConfig, ModelIO, torch.nn.Module]:
    config = TransformerConfig(pretrained="builtin:minilm", **fields)
    io = config.prepare_io(ModelIO(output_dim=2, vocab_size=30522, max_length=16))
    torch.manual_seed(0)
    return config, io, config.build(io)


def test_a_pretrained_encoder_keeps_its_first_layers_and_a_factorised_token_table() -> None:
    _, _, whole = _minilm_student()
    config, io, model = _minilm_student(keep_layers=2, token_rank=48)
    assert len(model.encoder.encoder.layer) == 2 and model.encoder.config.num_hidden_layers == 2
    for ours, theirs in zip(model.encoder.encoder.layer, whole.encoder.encoder.layer[:2], strict=True):
        theirs_state = theirs.state_dict()
        assert all(torch.equal(v, theirs_state[k]) for k, v in ours.state_dict().items())
    parameters = sum(p.numel() for p in model.parameters())
    assert parameters < 0.25 * sum(p.numel() for p in whole.parameters())
    # the factorised table is the best rank-48 fit of the pretrained one
    table, words = model.token_table(), whole.token_table()
    error = (table - words).norm() / (words - words.mean(0)).norm()
    assert 0 < error < 0.8
    assert table.shape == words.shape and (model.encoder.embeddings.word_embeddings.table.weight.shape == (30522, 48))
    rebuilt = TransformerConfig.model_validate(config.model_dump(mode="json")).build(io, pretrained=False)
    rebuilt.load_state_dict(model.state_dict())
    batch = sample_batch(io)
    assert torch.allclose(model.eval()(batch), rebuilt.eval()(batch), atol=1e-6)
    with pytest.raises(ConfigError, match="keep_layers is 8, but the pretrained encoder has 6 layers"):
        _minilm_student(keep_layers=8)
    with pytest.raises(ConfigError, match="token_rank \\(384\\) must be below the encoder's width \\(384\\)"):
        _minilm_student(token_rank=384)


def test_token_table_factorisation_is_exact_for_a_table_of_that_rank() -> None:
    from seekforge.models._token_table import TokenTable

    generator = torch.Generator().manual_seed(0)
    full = torch.randn(40, 3, generator=generator) @ torch.randn(3, 12, generator=generator) + torch.randn(12)
    table = TokenTable(40, 12, rank=4)
    table.load(full)
    torch.testing.assert_close(table.weight.detach(), full, atol=1e-5, rtol=0)
    small = TokenTable(2, 12, rank=4)  # fewer rows than the rank: the spare directions stay trainable
    small.load(full[:2])
    torch.testing.assert_close(small.weight.detach(), full[:2], atol=1e-5, rtol=0)


def test_a_vocabulary_trimmed_to_the_training_tokens_reads_unknown_for_the_rest() -> None:
    from types import SimpleNamespace

    from seekforge.data import TextEncoder

    config, io, model = _minilm_student(keep_layers=1, vocabulary="training")
    path = config.tokenizer_path()
    assert path is not None
    encoder = TextEncoder(path.read_text(encoding="utf-8"), 16, "pretrained")
    ids, mask = encoder.encode(["a fine film", "dull and long"])
    words = model.token_table()
    io = config.adapt(model, io, {"input_ids": ids, "attention_mask": mask}, SimpleNamespace(text_={"t": encoder}))
    used = set(ids[mask > 0].tolist()) | encoder.special_ids
    assert io.extra["token_rows"] == len(used)
    table = model.token_table()
    kept = sorted(used)
    torch.testing.assert_close(table[kept], words[kept])  # the tokens kept keep their embeddings
    unseen = encoder.encode(["zebra"])[0][0, 1]
    assert int(unseen) not in used
    torch.testing.assert_close(table[unseen], words[encoder.unk_id])
    rebuilt = config.build(io, pretrained=False)
    rebuilt.load_state_dict(model.state_dict())
    batch = {"input_ids": encoder.encode(["a zebra film"])[0], "attention_mask": encoder.encode(["a zebra film"])[1]}
    assert torch.allclose(model.eval()(batch), rebuilt.eval()(batch), atol=1e-6)
    assert TransformerConfig(pretrained="builtin:minilm").adapt(model, io, {}, None) is io  # "all": nothing to fit


def test_a_pretrained_student_starts_from_the_teachers_fine_tuned_weights() -> None:
    _, _, teacher = _minilm_student()
    with torch.no_grad():
        for parameter in teacher.parameters():
            parameter.add_(0.01)  # "fine-tuned": no longer the pretrained checkpoint
    _, _, student = _minilm_student(keep_layers=2, token_rank=32)
    said = student.start_from(teacher)
    assert said == "it starts from the teacher's weights: embeddings, 2 encoder layers, head"
    assert torch.equal(student.head.weight, teacher.head.weight)
    layer = student.encoder.encoder.layer[1].output.dense.weight
    assert torch.equal(layer, teacher.encoder.encoder.layer[1].output.dense.weight)
    words = teacher.token_table()
    error = (student.token_table() - words).norm() / (words - words.mean(0)).norm()
    assert error < 0.9  # the teacher's table, on its leading axes
    scratch = TransformerConfig(layers=1, heads=2, hidden=8, ffn=16).build(
        ModelIO(output_dim=2, vocab_size=30522, max_length=16)
    )
    assert student.start_from(scratch) is None  # a scratch teacher has no pretrained weights to give
