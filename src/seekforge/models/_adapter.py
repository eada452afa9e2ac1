"""LoRA adapters (through PEFT) on a pretrained Hugging Face encoder.

The base encoder stays frozen and outside the package: a package keeps the adapter weights and the head
(what training changed) and names its base by reference (``builtin:minilm`` or a folder) and by the
sha256 of its weight files, so it refuses to load on any other base. Export merges the adapter into a
copy of the base (``merge_and_unload``): the exported graph is an ordinary encoder.
"""

from __future__ import annotations

import functools
import hashlib
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field
from torch import nn

from seekforge.core.config import BaseConfig
from seekforge.core.deps import quiet_imports, require
from seekforge.core.errors import PackageError

#: Layer types PEFT's LoRA can wrap.
_WRAPPABLE = (nn.Linear, nn.Embedding, nn.Conv1d, nn.Conv2d)
#: The weight files of a Hugging Face folder, in the order their bytes enter the base's checksum.
_WEIGHT_PATTERNS = ("*.safetensors", "pytorch_model*.bin")


class AdapterConfig(BaseConfig):
    """Low-rank adapters (LoRA, Hu et al. 2021) trained on a frozen pretrained encoder.

    Attributes:
        type: ``lora``.
        rank: The adapters' rank ``r``: each adapted ``[out, in]`` weight gains ``r * (in + out)`` parameters.
        alpha: The scale numerator (the update is ``alpha / rank * B @ A``); default ``2 * rank``.
        dropout: Dropout on the adapters' input.
        target_modules: Names (or name suffixes, ``attention.self.query``) of the encoder's layers to adapt;
            default: PEFT's choice for the encoder's architecture (``query`` and ``value`` for BERT-like ones).
    """

    type: Literal["lora"] = "lora"
    rank: Annotated[int, Field(ge=1, le=4096)] = 8
    alpha: Annotated[float, Field(gt=0)] | None = None
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    target_modules: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)] | None = None

    def peft_config(self) -> Any:
        peft = _peft()
        alpha = self.alpha if self.alpha is not None else 2.0 * self.rank
        assert self.target_modules is not None, "filled from the base's architecture as the config is validated"
        return peft.LoraConfig(
            r=self.rank, lora_alpha=alpha, lora_dropout=self.dropout, target_modules=list(self.target_modules)
        )


def _peft() -> Any:
    quiet_imports()
    return require("peft", purpose="LoRA adapters")


def default_targets(folder: Path) -> list[str] | None:
    """PEFT's LoRA target modules for the architecture of the model in ``folder`` (None: it has none, or the
    folder holds no readable ``config.json``)."""
    import json

    try:
        model_type = json.loads((folder / "config.json").read_text(encoding="utf-8"))["model_type"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    _peft()  # a missing PEFT says how to install it
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as targets

    found = targets.get(model_type)
    return list(found) if found else None


def weight_files(folder: Path) -> list[Path]:
    """The weight files of a Hugging Face model folder (sorted by name)."""
    return sorted({p for pattern in _WEIGHT_PATTERNS for p in folder.glob(pattern)})


@functools.lru_cache(maxsize=8)
def _sha256_cached(files: tuple[tuple[str, int, int], ...]) -> str:
    digest = hashlib.sha256()
    for name, _, _ in files:
        with open(name, "rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


def base_sha256(folder: Path) -> str:
    """The sha256 of a model folder's weight files, concatenated in name order (cached by size and mtime).

    Raises:
        PackageError: The folder has no weight files.
    """
    files = weight_files(folder)
    if not files:
        raise PackageError(f"{folder} holds no weights (*.safetensors or pytorch_model*.bin)")
    return _sha256_cached(tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files))


def adaptable_layers(model: nn.Module) -> tuple[str, ...]:
    """The dotted names of the layers of ``model`` PEFT can adapt."""
    return tuple(name for name, module in model.named_modules() if name and isinstance(module, _WRAPPABLE))


def layer_names(layers: Sequence[str]) -> str:
    """The different last parts of dotted layer names, sorted: how target modules name them."""
    return ", ".join(sorted({name.rsplit(".", 1)[-1] for name in layers}))


def target_problems(layers: Sequence[str], targets: Sequence[str]) -> list[str]:
    """The targets that match none of ``layers`` (:func:`adaptable_layers`), with the layer names that exist."""
    missing = [t for t in targets if not any(n == t or n.endswith("." + t) for n in layers)]
    if not missing:
        return []
    return [
        f"target_modules: {', '.join(repr(t) for t in missing)} match no layer of the encoder; "
        f"its adaptable layers are named {layer_names(layers)}"
    ]


def with_adapter(encoder: nn.Module, config: AdapterConfig) -> nn.Module:
    """``encoder`` with LoRA layers added (PEFT's ``get_peft_model``); its own weights frozen."""
    return peft_model(encoder, config.peft_config())


def peft_model(model: nn.Module, peft_config: Any) -> nn.Module:
    """PEFT's ``get_peft_model(model, peft_config)``."""
    peft = _peft()
    with warnings.catch_warnings():
        # PEFT asks transformers a deprecated question about gradient checkpointing as it wraps a model.
        warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
        return peft.get_peft_model(model, peft_config)


def merged(encoder: nn.Module) -> nn.Module:
    """The plain encoder with the adapter's update added to its weights (``merge_and_unload``)."""
    return encoder.merge_and_unload()  # type: ignore[operator]


def check_base(folder: Path, ref: str, expected: str) -> None:
    """Refuse a base whose weights are not the ones the adapter was trained on.

    Raises:
        PackageError: With both checksums and the way out.
    """
    found = base_sha256(folder)
    if found != expected:
        raise PackageError(
            f"the adapter was trained on base '{ref}' with weights sha256 {expected[:12]}…, but {folder} now holds "
            f"weights with sha256 {found[:12]}…",
            hint="an adapter only fits the exact base it was trained on: restore that base, or fine-tune again on this one",
        )


def is_adapter_key(key: str) -> bool:
    return "lora_" in key
