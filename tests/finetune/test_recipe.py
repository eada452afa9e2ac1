"""The fine-tuning recipe: its short form becomes an ordinary recipe; every problem is reported at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from seekforge.core.errors import ConfigError
from seekforge.finetune import load_finetune_recipe

pytest.importorskip("peft")


def _write(tmp_path: Path, text: str, name: str = "legal-lora.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_short_form_becomes_a_recipe(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
model: {base: builtin:minilm, adapter: lora, rank: 16, alpha: 32, dropout: 0.05, target_modules: [query, value]}
data: {path: corpus.jsonl, text: review, label: score}
training: {epochs: 2, warmup_steps: 100, batch_size: 16}
""",
    )
    recipe = load_finetune_recipe(path)
    assert recipe.name == "legal-lora"
    assert recipe.data.source == str(tmp_path / "corpus.jsonl")  # relative to the recipe's folder
    (text,) = recipe.features.inputs
    assert (text.name, text.type, text.missing) == ("review", "text", "error")
    assert (recipe.features.output.name, recipe.task) == ("score", "classification")
    adapter = recipe.model.adapter
    assert (adapter.rank, adapter.alpha, adapter.dropout, adapter.target_modules) == (16, 32, 0.05, ["query", "value"])
    assert (recipe.train.lr, recipe.train.batch_size, recipe.train.epochs) == (5e-4, 16, 2)
    assert (recipe.train.schedule.type, recipe.train.schedule.warmup_steps) == ("linear", 100)
    full = load_finetune_recipe(path, overrides=["model.adapter=none", "task=regression"])
    assert full.model.adapter is None and full.train.lr == 5e-5 and full.task == "regression"


def test_every_problem_is_reported_at_once_with_its_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """model:
  base: builtin:minilm
  rank: 0
data: {path: c.jsonl, text: t, label: y, shufle: true}
training:
  epochs: 0
""",
    )
    with pytest.raises(ConfigError) as caught:
        load_finetune_recipe(path)
    text = str(caught.value)
    for part in ("- model.rank (", "legal-lora.yaml:3): Input should be greater than or equal to 1", "- training.epochs (", "did you mean 'shuffle'",
                 "legal-lora.yaml:6)"):  # fmt: skip
        assert part in text, text
    path = _write(tmp_path, "model: {base: builtin:minilm, target_modules: [qkv]}\ndata: {path: c.jsonl}\n")
    with pytest.raises(ConfigError, match=r"'qkv' match no layer of the encoder; its adaptable layers are named dense"):
        load_finetune_recipe(path)
    path = _write(tmp_path, "model: {base: builtin:minilm, adapter: qlora}\ndata: {path: c.jsonl}\n")
    with pytest.raises(ConfigError, match=r"adapter: qlora holds a causal language model's base in 4 bits"):
        load_finetune_recipe(path)
    path = _write(tmp_path, f"model: {{base: {tmp_path}, adapter: none}}\ndata: {{path: c.jsonl}}\n")
    with pytest.raises(ConfigError, match=r"base: .* is not a local Hugging Face model directory"):
        load_finetune_recipe(path)
    path = _write(
        tmp_path, "model: {base: builtin:minilm}\ndata: {path: c.jsonl, batch_size: 8}\ntraining: {batch_size: 16}\n"
    )
    with pytest.raises(ConfigError, match=r"data.batch_size \(8\) and training.batch_size \(16\) differ"):
        load_finetune_recipe(path)


def test_a_full_recipe_runs_as_it_is_when_its_model_is_a_pretrained_transformer(tmp_path: Path) -> None:
    body = """name: r
data: {source: c.csv}
features: {inputs: [{name: t, type: text}], output: {name: y, type: category}}
"""
    recipe = load_finetune_recipe(
        _write(tmp_path, body + "model: {type: transformer, pretrained: builtin:minilm, adapter: {rank: 2}}\n")
    )
    assert recipe.model.adapter.rank == 2 and recipe.name == "r"
    with pytest.raises(ConfigError, match="fine-tunes a pretrained encoder, but this recipe's model is transformer"):
        load_finetune_recipe(_write(tmp_path, body + "model: {type: transformer}\n"))
