"""What a causal-LM base must be: a local Hugging Face causal language model with its tokenizer, whose
layers the adapter's target modules name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from seekforge.core.errors import SeekforgeError
from seekforge.models import adaptable_layers, default_targets, hf_transformers, resolve_pretrained, target_problems


def load_transformers() -> Any:
    """``transformers`` (offline), with its warnings about generation settings kept quiet."""
    transformers = hf_transformers(purpose="causal language models")
    transformers.utils.logging.set_verbosity_error()
    return transformers


def base_problems(base: str, adapter: str, target_modules: list[str] | None) -> list[str]:
    """What is wrong with ``base`` as a causal LM to fine-tune with ``adapter`` (empty: nothing)."""
    try:
        folder = resolve_pretrained(base)
    except SeekforgeError as exc:
        return [exc.message.replace("model.pretrained: ", "base: ")]
    tf = load_transformers()
    try:
        config = tf.AutoConfig.from_pretrained(folder)
    except (OSError, ValueError, KeyError) as exc:
        return [f"base: {folder}/config.json is not a model configuration transformers reads ({exc})"]
    if type(config) not in tf.MODEL_FOR_CAUSAL_LM_MAPPING:
        return [f"base: {folder} holds a {config.model_type} model, which is not a causal language model; "
                "fine-tune encoders with task: classification"]  # fmt: skip
    if not (folder / "tokenizer.json").is_file() and not (folder / "tokenizer_config.json").is_file():
        return [f"base: {folder} has no tokenizer (tokenizer.json); save it beside the model with save_pretrained()"]
    if adapter == "lora":
        with torch.device("meta"):
            skeleton = tf.AutoModelForCausalLM.from_config(config)
        targets = targets_of(target_modules, folder)
        if targets is None:
            return ["target_modules: PEFT knows no default for this architecture: name the layers to adapt"]
        return target_problems(adaptable_layers(skeleton), targets)
    return []


def targets_of(target_modules: list[str] | None, folder: Path) -> list[str] | None:
    """The layers to adapt: those named, else PEFT's choice for the architecture of the model in ``folder``."""
    return list(target_modules) if target_modules else default_targets(folder)
