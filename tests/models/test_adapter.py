"""LoRA adapters on a pretrained encoder: what the package stores, reloading it, merging, the base check."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import torch
from pydantic import ValidationError

from seekforge.core.errors import PackageError
from seekforge.models import ModelIO, TransformerConfig, build_model, resolve_pretrained
from seekforge.testing import sample_batch

pytest.importorskip("peft")


def _adapted(
    pretrained: str = "builtin:minilm", **adapter: object
) -> tuple[TransformerConfig, ModelIO, torch.nn.Module]:
    config = TransformerConfig(pretrained=pretrained, adapter={"rank": 4, **adapter})
    io = config.prepare_io(ModelIO(output_dim=3, vocab_size=30522, max_length=16))
    torch.manual_seed(0)
    model = config.build(io)
    with torch.no_grad():  # as after training: the adapters' B matrices (zero at the start) and the head moved
        for name, parameter in model.named_parameters():
            if "lora_B" in name or name.startswith("head."):
                parameter.normal_(0.0, 0.1)
    return config, io, model.eval()


def _write(folder: Path, config: TransformerConfig, io: ModelIO, model: torch.nn.Module) -> Path:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in config.stored_state(model).items()}, str(folder / "model.safetensors"))
    (folder / "model.json").write_text(json.dumps({"config": config.model_dump(mode="json"), "io": io.to_dict()}))
    return folder


def test_a_lora_package_keeps_the_adapters_and_the_head_and_reloads_to_the_same_predictions(tmp_path: Path) -> None:
    config, io, model = _adapted()
    stored = config.stored_state(model)
    assert stored and all("lora_" in k or k.startswith("head.") for k in stored)
    assert {"head.weight", "head.bias"} <= set(stored)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(stored)  # what trains is what is stored, the head counted
    total = sum(p.numel() for p in model.parameters())
    assert sum(v.numel() for v in stored.values()) < 0.01 * total
    rebuilt = build_model(_write(tmp_path / "pkg", config, io, model))
    batch = sample_batch(io)
    expected = model(batch)
    assert torch.equal(rebuilt(batch), expected)
    without = copy.deepcopy(model)
    with torch.no_grad():
        for name, parameter in without.named_parameters():
            if "lora_B" in name:
                parameter.zero_()
    assert not torch.allclose(without(batch), expected, atol=1e-4)  # the stored adapters make the difference
    # merged for export or inference: an ordinary encoder, every weight trainable, the same outputs
    merged = model.for_export()
    assert type(merged.encoder).__name__ == "BertModel" and all(p.requires_grad for p in merged.parameters())
    assert torch.allclose(merged(batch), expected, atol=1e-5)
    plain_config, plain = config.merged(model)
    assert plain_config.adapter is None and torch.allclose(plain(batch), expected, atol=1e-5)
    assert build_model(tmp_path / "pkg", merge=True).adapted is False
    assert model.adapted  # the model itself keeps its adapter


def test_an_adapter_refuses_to_load_on_another_base(tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    base = tmp_path / "base"
    shutil.copytree(resolve_pretrained("builtin:minilm"), base)
    config, io, model = _adapted(str(base))
    package = _write(tmp_path / "pkg", config, io, model)
    weights = load_file(str(base / "model.safetensors"))
    name = next(k for k in weights if k.endswith("query.weight"))
    weights[name] = weights[name] + 0.01  # another base of the same shape: a different fine-tune, say
    save_file(weights, str(base / "model.safetensors"))
    with pytest.raises(PackageError, match=r"trained on base .* sha256") as caught:
        build_model(package)
    assert "only fits the exact base" in (caught.value.hint or "")


def test_adapter_rules() -> None:
    with pytest.raises(ValidationError, match=r"'qkv' match no layer.*named dense, key.*query.*value"):
        TransformerConfig(pretrained="builtin:minilm", adapter={"target_modules": ["qkv", "query"]})
    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        TransformerConfig(pretrained="builtin:minilm", adapter={"rank": 0})
    with pytest.raises(ValidationError, match="adapter needs a pretrained encoder"):
        TransformerConfig(adapter={"rank": 4})
    with pytest.raises(ValidationError, match="token_rank, freeze_encoder cannot apply"):
        TransformerConfig(pretrained="builtin:minilm", adapter={}, token_rank=16, freeze_encoder=True)
    # a suffix of a layer's dotted name names it too, as in PEFT
    assert TransformerConfig(pretrained="builtin:minilm", adapter={"target_modules": ["attention.self.key"]})


def test_any_local_encoder_takes_an_adapter_and_peft_picks_its_targets_where_it_knows_them(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    minilm = resolve_pretrained("builtin:minilm")
    tiny = {"vocab_size": 30522, "max_position_embeddings": 64}
    for name, config in (
        ("bert", transformers.BertConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, **tiny)),
        ("distilbert", transformers.DistilBertConfig(dim=32, n_layers=1, n_heads=2, hidden_dim=64, **tiny)),
    ):  # fmt: skip
        torch.manual_seed(0)
        transformers.AutoModel.from_config(config).save_pretrained(tmp_path / name)
        shutil.copy(minilm / "tokenizer.json", tmp_path / name / "tokenizer.json")
    bert = TransformerConfig(pretrained=str(tmp_path / "bert"), adapter={"rank": 2})
    assert bert.adapter.target_modules == ["query", "value"]  # PEFT's choice, written into the config
    with pytest.raises(ValidationError, match=r"PEFT knows no default for this encoder's architecture.*q_lin.*v_lin"):
        TransformerConfig(pretrained=str(tmp_path / "distilbert"), adapter={"rank": 2})
    config, io, model = _adapted(str(tmp_path / "distilbert"), target_modules=["q_lin", "v_lin"])
    assert all("lora_" in k or k.startswith("head.") for k in config.stored_state(model))
    rebuilt = build_model(_write(tmp_path / "pkg", config, io, model))
    batch = sample_batch(io)
    assert torch.equal(rebuilt(batch), model(batch))
    assert torch.allclose(model.for_export()(batch), model(batch), atol=1e-5)
