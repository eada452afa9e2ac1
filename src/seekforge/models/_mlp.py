"""A multilayer perceptron over numeric, binary and categorical features."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Annotated, Any, Literal

import torch
from pydantic import Field
from torch import nn

from seekforge.core.config import BaseConfig
from seekforge.models.config import MODELS, ModelConfig, ModelIO

if TYPE_CHECKING:
    from seekforge.data.config import FeaturesConfig


#: Input types an MLP reads (a datetime as its calendar parts, among the numbers)
TABULAR_TYPES = ("numeric", "binary", "category", "datetime")


def embedding_dim(cardinality: int) -> int:
    """fast.ai's rule of thumb for a category embedding width, capped at 32."""
    return int(min(32, round(1.6 * cardinality**0.56)))


class PeriodicConfig(BaseConfig):
    """Each numeric column through ``cos`` and ``sin`` of ``frequencies`` learned frequencies (drawn from
    N(0, sigma) at the start), then its own linear layer to ``dim`` and a ReLU: the PLR embedding of
    Gorishniy et al. 2022 ("On Embeddings for Numerical Features in Tabular Deep Learning"), which lets an
    MLP cut a number into ranges as a tree does."""

    type: Literal["periodic"] = "periodic"
    frequencies: Annotated[int, Field(ge=1, le=256)] = 16
    dim: Annotated[int, Field(ge=1, le=256)] = 16
    sigma: Annotated[float, Field(gt=0)] = 1.0


@MODELS.register("mlp")
class MLPConfig(ModelConfig):
    """Fully connected network; categories are embedded, then concatenated with the numeric features.

    ``hidden: []`` gives a linear model (multinomial logistic or linear regression), the right size for
    a few hundred rows. ``numeric_embedding: {type: periodic}`` embeds each numeric and binary column
    (:class:`PeriodicConfig`) instead of feeding its scaled value.
    """

    type: Literal["mlp"] = "mlp"
    hidden: list[Annotated[int, Field(ge=1)]] = [128, 64]
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    activation: Literal["relu", "gelu", "silu"] = "relu"
    norm: Literal["none", "batch", "layer"] = "none"
    numeric_embedding: PeriodicConfig | None = None

    def check_features(self, features: FeaturesConfig) -> list[str]:
        bad = [f"{f.name} ({f.type})" for f in features.inputs if f.type not in TABULAR_TYPES]
        if bad:
            return [f"model type 'mlp' takes numeric, binary, category and datetime inputs, not {', '.join(bad)}; "
                    "model type fusion takes any mix"]  # fmt: skip
        return []

    def build(self, io: ModelIO, *, pretrained: bool = True) -> nn.Module:
        return MLP(self, io)

    def unprunable(self, model: nn.Module) -> list[nn.Module]:
        assert isinstance(model, MLP)
        # embedding widths follow the categories' cardinalities; a periodic embedding's, its columns
        return [model.head, *model.embeddings, *([model.periodic] if model.periodic is not None else [])]

    def pruning_options(self, model: nn.Module, ratio: float) -> dict[str, Any]:
        assert isinstance(model, MLP)
        return periodic_parameters(model)

    def pruned(self, model: nn.Module) -> MLPConfig:
        assert isinstance(model, MLP)
        hidden = [layer.out_features for layer in model.body if isinstance(layer, nn.Linear)]
        return self.model_validate({**self.model_dump(), "hidden": hidden})


_ACTIVATIONS: dict[str, type[nn.Module]] = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


class MLP(nn.Module):
    def __init__(self, config: MLPConfig, io: ModelIO) -> None:
        super().__init__()
        # a package trained on and grown keeps its embeddings' widths (io.extra), so its weights still fit
        widths = io.extra.get("embedding_dims") or [embedding_dim(card) for card in io.category_cardinalities]
        self.embeddings = nn.ModuleList(
            nn.Embedding(card, width) for card, width in zip(io.category_cardinalities, widths, strict=True)
        )
        spec = config.numeric_embedding
        self.periodic = PeriodicEmbedding(io.numeric_dim, spec) if spec is not None and io.numeric_dim else None
        numeric = io.numeric_dim * spec.dim if self.periodic is not None and spec is not None else io.numeric_dim
        width = numeric + sum(e.embedding_dim for e in self.embeddings)
        layers: list[nn.Module] = []
        for size in config.hidden:
            layers.append(nn.Linear(width, size))
            if config.norm == "batch":
                layers.append(nn.BatchNorm1d(size))
            elif config.norm == "layer":
                layers.append(nn.LayerNorm(size))
            layers += [_ACTIVATIONS[config.activation](), nn.Dropout(config.dropout)]
            width = size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, io.output_dim)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.kaiming_uniform_(module.weight, a=math.sqrt(5))

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        parts = []
        if "numeric" in batch:
            parts.append(batch["numeric"] if self.periodic is None else self.periodic(batch["numeric"]))
        if self.embeddings:
            cats = batch["category"]
            parts += [emb(cats[:, i]) for i, emb in enumerate(self.embeddings)]
        return self.head(self.body(torch.cat(parts, dim=1)))


class PeriodicEmbedding(nn.Module):
    """``[rows, columns]`` numbers -> ``[rows, columns * dim]`` (see :class:`PeriodicConfig`)."""

    def __init__(self, columns: int, config: PeriodicConfig) -> None:
        super().__init__()
        self.frequencies = nn.Parameter(torch.randn(columns, config.frequencies) * config.sigma)
        bound = 1 / math.sqrt(2 * config.frequencies)  # nn.Linear's initialisation, column by column
        self.weight = nn.Parameter(torch.empty(columns, 2 * config.frequencies, config.dim).uniform_(-bound, bound))
        self.bias = nn.Parameter(torch.empty(columns, config.dim).uniform_(-bound, bound))

    def forward(self, numbers: torch.Tensor) -> torch.Tensor:
        angles = 2 * math.pi * numbers.unsqueeze(-1) * self.frequencies  # [rows, columns, frequencies]
        waves = torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1)
        return torch.relu(torch.einsum("rck,ckd->rcd", waves, self.weight) + self.bias).flatten(1)


def periodic_parameters(model: MLP) -> dict[str, Any]:
    """torch-pruning's ``unwrapped_parameters`` for ``model``'s periodic embedding (a layer it keeps whole),
    so that it need not guess their channel dimensions."""
    if model.periodic is None:
        return {}
    return {"unwrapped_parameters": [(p, p.dim() - 1) for p in model.periodic.parameters()]}
