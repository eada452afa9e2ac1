"""The fusion model: encoders chosen per input or kind, both combiners, named batch keys, refusals."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from seekforge.core.errors import DataError
from seekforge.data import Preprocessor
from seekforge.data.config import FeaturesConfig
from seekforge.models import MODELS, FusionConfig, collate
from seekforge.models._fusion import FusionModel

FEATURES = FeaturesConfig.model_validate({
    "inputs": [
        {"name": "title", "type": "text", "max_length": 8, "vocab_size": 100},
        {"name": "note", "type": "text", "max_length": 6, "vocab_size": 100},
        {"name": "price", "type": "numeric"},
        {"name": "color", "type": "category"},
    ],
    "output": {"name": "y", "type": "category"},
})  # fmt: skip


def _frame(rows: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "title": [" ".join(rng.choice(["good", "bad", "fine", "odd"], size=rng.integers(1, 6))) for _ in range(rows)],
        "note": rng.choice(["red", "blue green"], size=rows),
        "price": rng.normal(size=rows),
        "color": rng.choice(["r", "g", "b"], size=rows),
        "y": rng.choice(["a", "b", "c"], size=rows),
    })  # fmt: skip


def _built(model: dict[str, object]) -> tuple[FusionModel, dict[str, torch.Tensor]]:
    config = MODELS.get("fusion").model_validate({"type": "fusion", **model})
    assert isinstance(config, FusionConfig) and config.check_features(FEATURES) == []
    pre = Preprocessor(FEATURES, tokenizer_path=config.tokenizer_paths(FEATURES)).fit(_frame())
    module = config.build(config.prepare_io(pre.model_io()))
    assert isinstance(module, FusionModel)
    return module, pre.transform(_frame())


@pytest.mark.parametrize(
    "combiner", [{"type": "concat"}, {"type": "cross_attention", "layers": 1, "heads": 2, "dim": 8}]
)
def test_each_combiner_reads_every_input_and_answers_per_row(combiner: dict[str, object]) -> None:
    torch.manual_seed(0)
    model, batch = _built({"combiner": combiner})
    model.eval()
    logits = model(batch)
    assert logits.shape == (30, 3)
    for key in ("input_ids.note", "numeric", "category"):  # every input moves the answer
        changed = dict(batch)
        changed[key] = batch[key].flip(0)
        assert not torch.allclose(model(changed), logits), key


def test_texts_carry_their_names_and_collate_trims_each_to_its_own_longest_row() -> None:
    _, batch = _built({})
    assert set(batch) == {"input_ids.title", "attention_mask.title", "input_ids.note", "attention_mask.note",
                          "numeric", "category"}  # fmt: skip
    rows = collate(batch, slice(0, 30))
    assert rows["input_ids.title"].shape[1] == int(batch["attention_mask.title"].sum(1).max())
    assert rows["input_ids.note"].shape[1] == int(batch["attention_mask.note"].sum(1).max())
    assert rows["input_ids.note"].shape[1] != rows["input_ids.title"].shape[1]


def test_an_input_named_in_encoders_takes_that_encoder_and_the_others_their_kinds() -> None:
    model, _ = _built({"encoders": {"text": {"dim": 12}, "note": {"type": "transformer", "layers": 1, "heads": 2,
                                                                 "hidden": 16, "ffn": 32}}})  # fmt: skip
    title, note = model.encoders
    assert title.model is None and title.width == 12  # a bag, the kind's default type filled in
    assert note.model is not None and note.width == 16
    assert model.tabular is not None and model.tabular.head.__class__.__name__ == "Identity"


def test_encoders_that_fit_no_input_are_refused_with_the_field() -> None:
    config = FusionConfig.model_validate({"encoders": {
        "image": {"type": "cnn"}, "price": {"type": "mlp"}, "title": {"type": "cnn"}, "titel": {"type": "bag"}}})  # fmt: skip
    assert config.check_features(FEATURES) == [
        "encoders.image: the recipe has no image input; remove this encoder",
        "encoders.price: the tabular columns share one encoder; declare it as encoders.tabular",
        "encoders.title: a text input takes a bag | transformer | pretrained encoder, not cnn",
        "encoders.titel: no input is called 'titel' (inputs: title, note, price, color; or use a kind: "
        "tabular, text, image, sequence)",
    ]
    with pytest.raises(ValueError, match="dim 10 is not a multiple of heads 4"):
        FusionConfig.model_validate({"combiner": {"type": "cross_attention", "dim": 10, "heads": 4}})
    with pytest.raises(ValueError, match="no encoder layers to exit from"):
        FusionConfig.model_validate({"early_exit": {}})


def test_pruning_narrows_the_tabular_and_concat_layers_and_the_config_rebuilds_them() -> None:
    model, _ = _built({"encoders": {"tabular": {"hidden": [16, 8]}}, "combiner": {"hidden": [32]}})
    config = FusionConfig.model_validate({"encoders": {"tabular": {"hidden": [16, 8]}}, "combiner": {"hidden": [32]}})
    assert model.tabular is not None
    kept = config.unprunable(model)
    assert model.combiner.head in kept and all(e in kept for e in model.encoders)
    assert not any(layer in kept for layer in model.tabular.body)
    model.tabular.body[0] = torch.nn.Linear(model.tabular.body[0].in_features, 5)  # as a pruner leaves it
    model.tabular.body[3] = torch.nn.Linear(5, 8)
    pruned = config.pruned(model)
    assert pruned.encoders["tabular"].hidden == [5, 8] and pruned.combiner.hidden == [32]


@pytest.mark.parametrize("encoder", ["gru", "lstm", "conv1d", "transformer"])
def test_a_sequence_encoder_reads_numbers_and_tokens_and_ignores_the_padding(encoder: str) -> None:
    features = FeaturesConfig.model_validate({
        "inputs": [{"name": "amounts", "type": "sequence", "max_length": 5},
                   {"name": "clicks", "type": "sequence", "values": "tokens", "max_length": 4}],
        "output": {"name": "y", "type": "binary"},
    })  # fmt: skip
    frame = pd.DataFrame({
        "amounts": ["[1.5, 2, 3]", "[]", "[4, 5, 6, 7, 8, 9, 10]", None],
        "clicks": [["home", "cart"], ["pay"], [], ["home", "home", "cart", "pay", "pay"]],
        "y": ["a", "b", "a", "b"],
    })  # fmt: skip
    spec = {"type": encoder, "hidden": 8, "layers": 2}  # two layers: padding must not leak from one to the next
    if encoder == "transformer":
        spec |= {"heads": 2, "ffn": 16}
    config = FusionConfig.model_validate({"encoders": {"sequence": spec}})
    assert config.check_features(features) == []
    pre = Preprocessor(features).fit(frame)
    assert pre.sequences_["amounts"]["kind"] == "numbers" and pre.sequences_["amounts"]["truncated"] == 1
    assert pre.sequences_["clicks"]["vocab"] == ["home", "pay", "cart"]  # most frequent first, ties by value
    batch = pre.transform(frame)
    assert batch["sequence_mask.amounts"].tolist()[2] == [1] * 5 and batch["sequence_mask.amounts"][1].sum() == 0
    torch.manual_seed(0)
    model = config.build(config.prepare_io(pre.model_io())).eval()
    logits = model(batch)
    assert torch.isfinite(logits).all()  # an empty list (no items at all) too
    padded = dict(batch)
    padded["sequence.amounts"] = batch["sequence.amounts"].masked_fill(batch["sequence_mask.amounts"] == 0, 99.0)
    torch.testing.assert_close(model(padded), logits)  # what the mask hides changes nothing
    alone = collate(batch, slice(0, 1))  # trimmed to its own longest list: no longer padded to its batch's
    assert alone["sequence.amounts"].shape[1] == 3
    torch.testing.assert_close(model(alone), logits[:1])
    moved = dict(batch)
    moved["sequence.clicks"] = batch["sequence.clicks"].flip(0)
    assert not torch.allclose(model(moved), logits)
    numbers_only = FeaturesConfig.model_validate(
        {**features.model_dump(), "inputs": [{"name": "amounts", "type": "sequence", "values": "numbers"}]}
    )
    with pytest.raises(
        DataError, match=r"data row 2: sequence column 'amounts' is declared as numbers, but item 1 is 'x'"
    ):
        Preprocessor(numbers_only).fit(frame.assign(amounts=["[1]", '[2, "x"]', "[]", None]))
