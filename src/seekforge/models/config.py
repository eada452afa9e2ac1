"""The model extension point: a registered config class per model type that builds an ``nn.Module``.

A model takes a batch dict from the :class:`~seekforge.data.Preprocessor` (keys ``numeric``,
``category``, ``image``, ``input_ids``, ``attention_mask``, whichever the features produce; with more than
one text or image input, each input's keys carry its name: ``input_ids.title``, ``image.photo``) and
returns logits of shape ``[batch, output_dim]`` (``output_dim`` is 1 for regression).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import model_validator

from seekforge.core.batch import TOKEN_KEYS, image_key, is_token_key, mask_key, sequence_keys, text_keys
from seekforge.core.config import PluggableConfig
from seekforge.core.registry import Registry

__all__ = [
    "MODELS",
    "TOKEN_KEYS",
    "ModelConfig",
    "ModelIO",
    "image_key",
    "is_token_key",
    "mask_key",
    "sequence_keys",
    "text_keys",
]

if TYPE_CHECKING:
    import torch
    from torch import nn

    from seekforge.data.config import FeaturesConfig


@dataclass(frozen=True)
class ModelIO:
    """What the fitted preprocessor feeds a model and what the model must output.

    Attributes:
        numeric_dim: Width of the ``numeric`` tensor (numeric and binary features).
        category_cardinalities: Vocabulary size of each column of the ``category`` tensor.
        image_shape: ``(channels, height, width)`` of the ``image`` tensor.
        vocab_size: Tokenizer vocabulary size for ``input_ids``.
        max_length: Longest token sequence.
        output_dim: Number of classes, or 1 for regression.
        inputs: Each text and image input, in the recipe's order: ``{"name", "type": "text", "ids",
            "mask", "vocab_size", "max_length"}`` or ``{"name", "type": "image", "key", "shape"}`` (the
            batch keys that carry it; a model over several of them reads these).
        extra: Model-specific facts needed to rebuild it (e.g. a pretrained encoder's config).
    """

    output_dim: int
    numeric_dim: int = 0
    category_cardinalities: tuple[int, ...] = ()
    image_shape: tuple[int, int, int] | None = None
    vocab_size: int | None = None
    max_length: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    inputs: tuple[dict[str, Any], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelIO:
        data = dict(data)
        data["category_cardinalities"] = tuple(data.get("category_cardinalities", ()))
        if data.get("image_shape") is not None:
            data["image_shape"] = tuple(data["image_shape"])
        data["inputs"] = tuple(data.get("inputs", ()))
        return cls(**data)


class ModelConfig(PluggableConfig):
    """Base of every model type. Subclasses declare ``type: Literal["name"]`` and implement ``build``."""

    registry: ClassVar[Registry[type[ModelConfig]]]

    @model_validator(mode="before")
    @classmethod
    def _exits_need_layers(cls, data: Any) -> Any:
        if isinstance(data, dict) and "early_exit" in data and "early_exit" not in cls.model_fields:
            raise ValueError(
                f"early_exit: a {data.get('type', cls.__name__)} model has no encoder layers to exit from; early "
                "exit is for model.type: transformer (remove early_exit)"
            )
        return data

    def check_features(self, features: FeaturesConfig) -> list[str]:
        """Problems with using this model for ``features``; empty when they fit."""
        return []

    def tokenizer_paths(self, features: FeaturesConfig) -> Mapping[str, Path]:
        """The pretrained ``tokenizer.json`` of each text input that needs one (by input name); the others
        get a tokenizer fitted on their training texts."""
        return {}

    def prepare_io(self, io: ModelIO) -> ModelIO:
        """Add facts the model needs to be rebuilt later without its original sources (called once)."""
        return io

    def build(self, io: ModelIO, *, pretrained: bool = True) -> nn.Module:
        """Build the module. ``pretrained=False`` skips loading pretrained weights (they come from a package)."""
        raise NotImplementedError

    def adapt(self, model: nn.Module, io: ModelIO, inputs: Mapping[str, torch.Tensor], preprocessor: Any) -> ModelIO:
        """Fit the parts of a freshly built ``model`` that depend on the training rows (``inputs``, encoded
        by the fitted ``preprocessor``), such as a token table trimmed to the tokens they use; returns the
        ModelIO that rebuilds it (called once, before training)."""
        return io

    def stored_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The tensors a package stores for ``model`` (all of its state, unless part of it comes from
        elsewhere, like an adapter's frozen base)."""
        return model.state_dict()

    def merged(self, model: nn.Module) -> tuple[ModelConfig, nn.Module]:
        """The config and module of ``model`` with any adapter merged into its weights: an ordinary model of
        this type (``self`` and ``model`` themselves when there is nothing to merge)."""
        return self, model

    # Structured pruning (seekforge compress): a model type that supports it says which layers must keep
    # their width and how to describe the pruned module as a config that rebuilds it.

    def unprunable(self, model: nn.Module) -> list[nn.Module]:
        """Layers whose outputs must keep their width (the output layer, embeddings).

        Raises:
            ConfigError: This model type cannot be pruned.
        """
        from seekforge.core.errors import ConfigError

        raise ConfigError(f"model type '{self.type}' does not support structured pruning")

    def pruning_options(self, model: nn.Module, ratio: float) -> dict[str, Any]:
        """Extra torch-pruning ``BasePruner`` arguments for a step removing ``ratio`` (attention heads, say)."""
        return {}

    def pruned(self, model: nn.Module) -> ModelConfig:
        """The config that builds ``model``'s (pruned) architecture."""
        raise NotImplementedError


MODELS: Registry[type[ModelConfig]] = Registry("model", "seekforge.models")
ModelConfig.registry = MODELS
