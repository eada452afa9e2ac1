"""A causal-LM package: written by ``seekforge finetune`` (task: causal_lm or preference), opened by
``seekforge generate`` and by preference tuning that goes on from it; and the base it loads onto.

A causal-LM package holds ``causal.json`` (the base's reference and weights' sha256, the adapter, how the
base was held in memory, the figures, each file's sha256), the adapter's weights (``adapter.safetensors``;
with ``adapter: none`` the whole model in ``model/``), the tokenizer it trained with, ``recipe.yaml`` and
``report.html``. It is written atomically and checked when opened; an adapter refuses any base but its own.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import yaml
from pydantic import ValidationError

from seekforge.core import report as r
from seekforge.core.config import BaseConfig
from seekforge.core.deps import require
from seekforge.core.errors import PackageError
from seekforge.core.io import atomic_dir, sha256_file
from seekforge.core.package import verify_files
from seekforge.finetune._causal_base import MANIFEST, device, load_transformers, quantization, targets_of
from seekforge.finetune._causal_recipe import CausalModel, Generation
from seekforge.models import base_sha256, check_base, load_tensors, peft_model, resolve_pretrained


def load_base(model: CausalModel, *, dequantized: bool = False) -> tuple[Any, Any, Path]:
    """The base model with LoRA layers when asked, its tokenizer, and its folder; on the GPU where there is
    one. The base is float32, but QLoRA's: 4-bit (or, ``dequantized``, those 4-bit weights dequantized to
    float32: what its adapter merges into, never into the 4-bit weights)."""
    tf = load_transformers()
    folder = resolve_pretrained(model.base)
    tokenizer = tf.AutoTokenizer.from_pretrained(folder)
    if model.adapter == "qlora":
        torch_model = tf.AutoModelForCausalLM.from_pretrained(folder, quantization_config=quantization(tf),
                                                              device_map={"": device()})  # fmt: skip
        for module in torch_model.modules():
            # On a CPU with AVX-512 BF16, bitsandbytes repacks a 4-bit layer's weights in place the first time it
            # runs in eval mode, for a bf16 kernel: numbers other than training's, and a kernel that backward
            # cannot go through (training after an evaluation would silently lose its gradients). Keep to the
            # float32 path that training takes, on every CPU.
            if hasattr(module, "support_avx512bf16_for_cpu"):
                module.support_avx512bf16_for_cpu = False
        if dequantized:
            torch_model = torch_model.dequantize().to(torch.float32)
        else:
            with warnings.catch_warnings():  # transformers' renames of gradient checkpointing, seen by PEFT
                warnings.simplefilter("ignore", FutureWarning)
                torch_model = require("peft", purpose="QLoRA").prepare_model_for_kbit_training(
                    torch_model,
                    gradient_checkpointing_kwargs={"use_reentrant": False},  # torch's advice
                )
    else:
        torch_model = tf.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).to(device())
    if model.adapter in ("lora", "qlora"):
        peft = require("peft", purpose="LoRA adapters")
        alpha = model.alpha if model.alpha is not None else 2.0 * model.rank
        config = peft.LoraConfig(task_type="CAUSAL_LM", r=model.rank, lora_alpha=alpha, lora_dropout=model.dropout,
                                 target_modules=targets_of(model.target_modules, folder))  # fmt: skip
        torch_model = peft_model(torch_model, config)
    return torch_model, tokenizer, folder


def trainable_weights(model: Any) -> dict[str, torch.Tensor]:
    """A copy of the weights that train (the adapters', or every weight with ``adapter: none``)."""
    return {k: p.detach().clone() for k, p in model.named_parameters() if p.requires_grad}


def held_as(section: dict[str, Any], model: Any) -> dict[str, Any]:
    """How the base was held while training: its bytes in memory, and for QLoRA the 4-bit format."""
    held: dict[str, Any] = {"bytes": int(model.get_memory_footprint()), "dtype": "float32"}
    if section["adapter"] == "qlora":
        compute = quantization(load_transformers()).bnb_4bit_compute_dtype
        held |= {"dtype": "nf4", "double_quantization": True, "compute_dtype": str(compute).removeprefix("torch.")}
    return held


def write_causal_package(dest: Path, *, name: str, recipe: BaseConfig, section: dict[str, Any], model: Any,
                         tokenizer: Any, parts: dict[str, Any], rows: Sequence[tuple[str, Any]],
                         sections: Sequence[tuple[str, str]]) -> Path:  # fmt: skip
    """Write the package atomically (see the module's docstring). ``section``: the model's base and adapter,
    target modules resolved; ``parts``: what the manifest holds besides; ``rows`` and ``sections``: what the
    report shows besides the base, the adapter and the parameters."""
    from safetensors.torch import save_file

    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    with atomic_dir(dest, overwrite=True) as tmp:
        if section["adapter"] == "none":
            model.save_pretrained(tmp / "model")
        else:
            adapter = {k: v.contiguous().cpu() for k, v in trainable_weights(model).items()}
            save_file(adapter, str(tmp / "adapter.safetensors"))
        tokenizer.save_pretrained(tmp / "tokenizer")
        (tmp / "recipe.yaml").write_text(yaml.safe_dump(recipe.model_dump(mode="json"), sort_keys=False), "utf-8")
        manifest = {
            "format": 1,
            "kind": "causal_lm",
            "name": name,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "base": section["base"],
            "base_sha256": base_sha256(resolve_pretrained(section["base"])),
            "model": section,
            "parameters": {"trainable": trainable, "total": total},
            "base_in_memory": held_as(section, model),
            **parts,
        }
        (tmp / "report.html").write_text(_report(manifest, rows, sections), "utf-8")
        files = {str(p.relative_to(tmp)): sha256_file(p) for p in sorted(tmp.rglob("*")) if p.is_file()}
        (tmp / MANIFEST).write_text(json.dumps({**manifest, "files": files}, indent=2), "utf-8")
    return dest


def adapter_text(section: dict[str, Any]) -> str:
    """The adapter in words: ``LoRA rank 16 on q_proj, v_proj (4-bit NF4 base: QLoRA)``."""
    if section["adapter"] == "none":
        return "none (every weight trained)"
    text = f"LoRA rank {section['rank']} on {', '.join(section['target_modules'])}"
    return text + (" (4-bit NF4 base: QLoRA)" if section["adapter"] == "qlora" else "")


def _report(manifest: dict[str, Any], rows: Sequence[tuple[str, Any]], sections: Sequence[tuple[str, str]]) -> str:
    share = 100 * manifest["parameters"]["trainable"] / max(manifest["parameters"]["total"], 1)
    held = manifest["base_in_memory"]
    summary = [
        ("base", f"{manifest['base']} (weights sha256 {manifest['base_sha256'][:12]}…)"),
        ("adapter", adapter_text(manifest["model"])),
        ("trainable parameters", f"{manifest['parameters']['trainable']:,} of {manifest['parameters']['total']:,} ({share:.2f}%)"),
        ("model in memory while training", f"{held['bytes'] / 2**20:.2f} MiB ({held['dtype']} base)"),
        *rows,
    ]  # fmt: skip
    samples = [(s["prompt"], s["output"]) for s in manifest["samples"]]
    parts = [("Fine-tuning", r.table(summary)), *sections,
             ("Sample generations", r.table(samples, ["prompt", "generated"]) if samples else "<p>none</p>")]  # fmt: skip
    what = "preference-tuned causal language model" if manifest.get("preference") else "causal language model"
    return r.page(f"seekforge: {manifest['name']}", f"{what}, created {manifest['created']}", parts)


class CausalPackage:
    """A causal-LM package, opened: every file checked, the base checked against its sha256."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        where = self.path / MANIFEST
        if not where.is_file():
            raise PackageError(f"{self.path} is not a causal language model package (no {MANIFEST})",
                               hint="make one with seekforge finetune and task: causal_lm")  # fmt: skip
        try:
            self.manifest = json.loads(where.read_text(encoding="utf-8"))
            files = dict(self.manifest["files"])
            section = dict(self.manifest["model"])
            self.generation = Generation.model_validate(self.manifest.get("generation", {}))
        except (ValueError, KeyError, TypeError) as exc:
            raise PackageError(f"{where} is damaged ({exc})") from None
        verify_files(self.path, files)
        try:  # checks its base as a recipe's: found, a causal LM, its layers there, QLoRA possible here
            self.model = CausalModel.model_validate(section)
        except ValidationError as exc:
            problems = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())
            raise PackageError(f"{self.path}: its model cannot be loaded here: {problems}") from None

    def load(self, *, merge: bool = False) -> tuple[Any, Any]:
        """The model (in eval mode) and tokenizer: the adapter loaded onto the checked base (QLoRA's: the 4-bit
        base), its weights trainable; ``merge``: merged into the base's weights (QLoRA's: dequantized first)."""
        tf = load_transformers()
        tokenizer = tf.AutoTokenizer.from_pretrained(self.path / "tokenizer")
        if self.model.adapter == "none":
            model = tf.AutoModelForCausalLM.from_pretrained(self.path / "model", dtype=torch.float32).to(device())
            return model.eval(), tokenizer
        check_base(resolve_pretrained(self.model.base), self.model.base, self.manifest["base_sha256"])
        model, _, _ = load_base(self.model, dequantized=merge)
        weights = load_tensors(self.path / "adapter.safetensors")
        expected = {k for k, p in model.named_parameters() if p.requires_grad}
        if set(weights) != expected:
            wrong = sorted(set(weights) ^ expected)[:3]
            raise PackageError(f"{self.path / 'adapter.safetensors'} does not fit the base's adapter layers: {wrong}")
        model.load_state_dict(weights, strict=False)
        return (model.merge_and_unload() if merge else model).eval(), tokenizer
