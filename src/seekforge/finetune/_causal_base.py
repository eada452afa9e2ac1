"""What a causal-LM base must be: a local Hugging Face causal language model with its tokenizer, whose
layers the adapter's target modules name; and where QLoRA's 4-bit base runs."""

from __future__ import annotations

import importlib.metadata
import platform
from pathlib import Path
from typing import Any

import torch

from seekforge.core.deps import install_command
from seekforge.core.errors import SeekforgeError
from seekforge.models import adaptable_layers, default_targets, hf_transformers, resolve_pretrained, target_problems

#: The manifest of a causal-LM package.
MANIFEST = "causal.json"


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
    if adapter == "qlora" and (missing := qlora_problem()):
        return [missing]
    if adapter in ("lora", "qlora"):
        with torch.device("meta"):
            skeleton = tf.AutoModelForCausalLM.from_config(config)
        targets = targets_of(target_modules, folder)
        if targets is None:
            return ["target_modules: PEFT knows no default for this architecture: name the layers to adapt"]
        problems = target_problems(adaptable_layers(skeleton), targets)
        return problems + ([] if adapter == "lora" or torch.cuda.is_available() else block_problems(skeleton))
    return []


def targets_of(target_modules: list[str] | None, folder: Path) -> list[str] | None:
    """The layers to adapt: those named, else PEFT's choice for the architecture of the model in ``folder``."""
    return list(target_modules) if target_modules else default_targets(folder)


#: The first bitsandbytes whose 4-bit layers run on an x86-64 CPU (its CPU backend).
BNB_CPU = (0, 46)
#: The inputs per block bitsandbytes' CPU backend quantizes together.
BNB_BLOCK = 64


def qlora_problem() -> str | None:
    """What stops QLoRA's 4-bit base here (None: nothing): bitsandbytes missing, or neither a CUDA GPU nor
    bitsandbytes' CPU backend (an x86-64 CPU and bitsandbytes >= 0.46)."""
    try:
        version = importlib.metadata.version("bitsandbytes")
    except importlib.metadata.PackageNotFoundError:
        return f"adapter: qlora needs bitsandbytes, which is not installed; run: {install_command('bitsandbytes')}"
    if torch.cuda.is_available():
        return None
    parts = tuple(int(p) for p in version.split(".")[:2] if p.isdigit())
    if platform.machine().lower() in ("x86_64", "amd64") and parts >= BNB_CPU:
        return None
    return (f"adapter: qlora needs a CUDA GPU or bitsandbytes' CPU backend (x86-64 and bitsandbytes >= 0.46); this "
            f"machine: no CUDA GPU, CPU {platform.machine()}, bitsandbytes {version}; use adapter: lora")  # fmt: skip


def block_problems(skeleton: torch.nn.Module) -> list[str]:
    """What bitsandbytes' CPU backend cannot hold in 4 bits: it quantizes a linear layer's weights in blocks of
    64 inputs, so every linear layer it quantizes (all but the output head) needs a multiple of 64 inputs."""
    odd = [(name, module.in_features) for name, module in skeleton.named_modules()
           if isinstance(module, torch.nn.Linear) and module.in_features % BNB_BLOCK and name != "lm_head"]  # fmt: skip
    if not odd:
        return []
    return [f"adapter: qlora on the CPU quantizes in blocks of {BNB_BLOCK} inputs, and {len(odd)} linear layers have "
            f"another count (e.g. {odd[0][0]}: {odd[0][1]}); use adapter: lora, or a CUDA GPU"]  # fmt: skip


def device() -> torch.device:
    """Where causal LMs train and run: the first CUDA GPU when there is one, else the CPU."""
    return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")


def quantization(tf: Any) -> Any:
    """QLoRA's base: 4-bit NormalFloat weights with their scales quantized too (double quantization),
    computed in bf16 on a GPU that has it, else in float32."""
    bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return tf.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                                 bnb_4bit_compute_dtype=torch.bfloat16 if bf16 else torch.float32)  # fmt: skip
