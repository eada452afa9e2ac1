"""Causal LM fine-tuning on a tiny random Llama built here (mechanics, not quality): the prompt is masked out
of the loss, the loss and the held-out perplexity go down, the package reloads and merges, bad input is
refused with its line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from seekforge.core.errors import ConfigError, DataError, PackageError
from seekforge.finetune import (
    CausalPackage,
    CausalRecipe,
    encode,
    finetune_causal,
    load_finetune_recipe,
)
from tests.conftest import PAIRS, stop_requested_at_once

transformers = pytest.importorskip("transformers")
pytest.importorskip("peft")


def _recipe(tmp_path: Path, base: Path, rows: list[dict[str, str]] | None = None, **changes: object) -> Path:
    data = rows if rows is not None else [{"prompt": p, "response": a} for p, a in PAIRS * 8]
    (tmp_path / "pairs.jsonl").write_text("".join(json.dumps(row) + "\n" for row in data))
    recipe = {"task": "causal_lm", "model": {"base": str(base), "rank": 8}, "data": {"path": "pairs.jsonl", "validation": 0.25},
              "training": {"lr": 0.02, "epochs": 4, "batch_size": 8, "max_length": 32},
              "generation": {"prompts": ["what colour is snow"], "max_new_tokens": 3, "temperature": 0.0}, **changes}  # fmt: skip
    (tmp_path / "llm.yaml").write_text(json.dumps(recipe))
    return tmp_path / "llm.yaml"


def test_the_prompt_is_masked_out_of_the_loss(tiny_llm: Path) -> None:
    tokenizer = transformers.AutoTokenizer.from_pretrained(tiny_llm)
    found = encode(tokenizer, ["what colour is snow"], ["white"], max_length=32)
    ids, labels = found.ids[0], found.labels[0]
    assert ids[0] == tokenizer.bos_token_id and ids[-1] == tokenizer.eos_token_id
    assert labels == [-100] * 5 + ids[5:] and len(ids) == 7  # <s> + four prompt words masked; white, </s> learned
    plain = encode(tokenizer, ["what colour is snow"], None, max_length=4)
    assert plain.labels[0] == plain.ids[0] and len(plain.ids[0]) == 4 and plain.truncated == 1


def test_lora_lowers_loss_and_perplexity_and_the_package_reloads_and_merges(tiny_llm: Path, tmp_path: Path) -> None:
    recipe = load_finetune_recipe(_recipe(tmp_path, tiny_llm))
    assert isinstance(recipe, CausalRecipe) and recipe.name == "llm"
    assert recipe.data.path == str(tmp_path / "pairs.jsonl")
    done = finetune_causal(recipe, runs_dir=tmp_path / "runs")
    losses = [h["train_loss"] for h in done.history]
    assert losses[-1] < 0.5 * losses[0], losses
    assert done.metrics["val_perplexity"] < 0.5 * done.metrics["val_perplexity_before"], done.metrics
    package = CausalPackage(done.package)
    manifest = package.manifest
    assert manifest["model"]["target_modules"] == ["q_proj", "v_proj"]  # PEFT's choice for Llama
    assert 0 < manifest["parameters"]["trainable"] < manifest["parameters"]["total"]
    assert manifest["samples"][0]["prompt"] == "what colour is snow" and "sample generations" in (
        done.package / "report.html").read_text().lower()  # fmt: skip
    model, tokenizer = package.load()
    merged, _ = package.load(merge=True)
    batch = tokenizer(["what colour is coal", "what colour is the sky"], return_tensors="pt", padding=True)
    with torch.no_grad():
        difference = (model(**batch).logits - merged(**batch).logits).abs().max()
    assert difference <= 1e-4
    assert type(merged).__name__ == "LlamaForCausalLM"


def test_an_interrupted_finetune_resumes_to_the_same_adapter(tiny_llm: Path, tmp_path: Path) -> None:
    from seekforge.core.errors import TrainingInterrupted

    rows = [{"prompt": p, "response": a} for p, a in PAIRS * 3]
    recipe = load_finetune_recipe(
        _recipe(tmp_path, tiny_llm, rows, training={"lr": 0.02, "epochs": 2, "batch_size": 4})
    )
    whole = CausalPackage(finetune_causal(recipe, runs_dir=tmp_path / "a").package)
    with stop_requested_at_once(), pytest.raises(TrainingInterrupted, match="stopped at epoch 1, step 1"):
        finetune_causal(recipe, runs_dir=tmp_path / "b")
    resumed = CausalPackage(finetune_causal(recipe, runs_dir=tmp_path / "b", resume=True).package)
    from safetensors.torch import load_file

    ours, theirs = load_file(resumed.path / "adapter.safetensors"), load_file(whole.path / "adapter.safetensors")
    assert all(torch.allclose(ours[k], theirs[k], atol=1e-6) for k in theirs)


def test_bad_input_is_refused_before_any_work(tiny_llm: Path, tmp_path: Path) -> None:
    rows = [{"prompt": p, "response": a} for p, a in PAIRS]
    del rows[3]["response"]
    recipe = load_finetune_recipe(_recipe(tmp_path, tiny_llm, rows=rows))
    with pytest.raises(DataError, match=r"pairs.jsonl line 4: 'response' is empty in 1 row"):
        finetune_causal(recipe, runs_dir=tmp_path / "runs")
    assert not (tmp_path / "runs" / "llm").exists() or not any((tmp_path / "runs" / "llm").iterdir())
    encoder = tmp_path / "distilbert"
    transformers.DistilBertModel(transformers.DistilBertConfig(dim=16, n_layers=1, n_heads=2, hidden_dim=32,
                                                               vocab_size=50)).save_pretrained(encoder)  # fmt: skip
    with pytest.raises(ConfigError, match="holds a distilbert model, which is not a causal language model"):
        load_finetune_recipe(_recipe(tmp_path, encoder))
    with pytest.raises(ConfigError, match=r"'wq' match no layer.*q_proj"):
        load_finetune_recipe(_recipe(tmp_path, tiny_llm, model={"base": str(tiny_llm), "target_modules": ["wq"]}))
    with pytest.raises(ConfigError, match="task 'dialogue' is not one seekforge finetune knows"):
        load_finetune_recipe(_recipe(tmp_path, tiny_llm, task="dialogue"))
    with pytest.raises(PackageError, match="not a causal language model package"):
        CausalPackage(tmp_path)


def test_qlora_trains_on_a_4_bit_base_and_merges_into_its_dequantized_weights(tiny_llm: Path, tmp_path: Path) -> None:
    from seekforge.finetune import qlora_problem

    path = _recipe(tmp_path, tiny_llm, model={"base": str(tiny_llm), "adapter": "qlora", "rank": 8, "dropout": 0.0})
    missing = qlora_problem()
    if missing is not None:  # no CUDA GPU and no bitsandbytes CPU backend here: refused in one line
        with pytest.raises(ConfigError, match="adapter: qlora needs"):
            load_finetune_recipe(path)
        return
    done = finetune_causal(load_finetune_recipe(path), runs_dir=tmp_path / "runs")
    assert done.metrics["val_perplexity"] < 0.5 * done.metrics["val_perplexity_before"], done.metrics
    package = CausalPackage(done.package)
    held = package.manifest["base_in_memory"]
    assert held["dtype"] == "nf4" and held["double_quantization"] and package.manifest["model"]["adapter"] == "qlora"
    full = transformers.AutoModelForCausalLM.from_pretrained(tiny_llm).get_memory_footprint()
    assert held["bytes"] < full  # the embeddings and the output head stay in float32: not 8 times smaller
    quantized, tokenizer = package.load()
    merged, _ = package.load(merge=True)
    assert any(type(m).__name__ == "Linear4bit" for m in quantized.modules())
    assert not any(type(m).__name__ == "Linear4bit" for m in merged.modules())  # merged into float32 weights
    batch = tokenizer(["what colour is coal", "what colour is the sky"], return_tensors="pt", padding=True)
    with torch.no_grad():
        difference = (quantized(**batch).logits - merged(**batch).logits).abs().max()
    assert difference <= 1e-4  # the merged weights are the 4-bit ones dequantized, plus the adapters


def test_qlora_is_refused_in_one_line_where_it_cannot_run(
    tiny_llm: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import importlib.metadata
    import platform

    path = _recipe(tmp_path, tiny_llm, model={"base": str(tiny_llm), "adapter": "qlora"})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    with pytest.raises(ConfigError, match=r"needs a CUDA GPU or bitsandbytes' CPU backend .* CPU aarch64"):
        load_finetune_recipe(path)

    def absent(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", absent)
    with pytest.raises(ConfigError, match=r"needs bitsandbytes, which is not installed; run: pip install .*qlora\]"):
        load_finetune_recipe(path)
    assert not (tmp_path / "runs").exists()
