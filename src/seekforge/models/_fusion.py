"""A fusion model over any mix of inputs: one encoder per input (the tabular columns share one), and a
combiner that joins their encodings.

Encoders: ``mlp`` over the numeric, binary and category columns; ``bag`` (mean of token embeddings),
``transformer`` (trained from scratch) or ``pretrained`` (a local Hugging Face encoder, frozen or tuned)
for each text; ``cnn`` for each image. Combiners: ``concat`` (an MLP over the joined encodings) or
``cross_attention`` (each encoding becomes one token; a small transformer lets them attend to each other
and reads the answer off a [CLS] token).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import torch
from pydantic import Field, model_validator
from torch import nn

from seekforge.core.config import BaseConfig
from seekforge.models._cnn import CNN, CNNConfig
from seekforge.models._mlp import MLP, TABULAR_TYPES, MLPConfig, PeriodicConfig, periodic_parameters
from seekforge.models._transformer import TextTransformer, TransformerConfig, hf_transformers, resolve_pretrained
from seekforge.models.config import MODELS, ModelConfig, ModelIO

if TYPE_CHECKING:
    from seekforge.data.config import FeaturesConfig

TABULAR = TABULAR_TYPES
Width = Annotated[int, Field(ge=1)]


class TabularEncoder(BaseConfig):
    """The numeric, binary and category columns together: categories embedded, then an MLP."""

    type: Literal["mlp"] = "mlp"
    hidden: list[Width] = [64]
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    activation: Literal["relu", "gelu", "silu"] = "relu"
    norm: Literal["none", "batch", "layer"] = "none"
    numeric_embedding: PeriodicConfig | None = None


class BagEncoder(BaseConfig):
    """A text as the mean of its tokens' embeddings (a tokenizer fitted on the training texts)."""

    type: Literal["bag"] = "bag"
    dim: Width = 64


class ScratchTextEncoder(BaseConfig):
    """A transformer encoder trained from scratch: over a text's tokens (a tokenizer fitted on the training
    texts), or over a sequence's items (with a learned position per item)."""

    type: Literal["transformer"] = "transformer"
    layers: Annotated[int, Field(ge=1, le=12)] = 2
    heads: Width = 4
    hidden: Annotated[int, Field(ge=8)] = 64
    ffn: Annotated[int, Field(ge=8)] = 128
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    pooling: Literal["mean", "cls"] = "mean"

    @model_validator(mode="after")
    def _heads_divide(self) -> ScratchTextEncoder:
        if self.hidden % self.heads:
            raise ValueError(f"hidden {self.hidden} is not a multiple of heads {self.heads}")
        return self


class PretrainedTextEncoder(BaseConfig):
    """A local Hugging Face encoder (``builtin:minilm`` or a folder) and its own tokenizer; ``freeze`` keeps
    its weights as they are and trains only what comes after it."""

    type: Literal["pretrained"] = "pretrained"
    path: str = "builtin:minilm"
    freeze: bool = True
    pooling: Literal["mean", "cls"] = "mean"


class ImageEncoder(BaseConfig):
    """A convolutional network (conv -> batch norm -> ReLU blocks, then global average pooling)."""

    type: Literal["cnn"] = "cnn"
    channels: Annotated[list[Width], Field(min_length=1)] = [16, 32]
    kernel_size: Literal[3, 5, 7] = 3
    convs_per_block: Annotated[int, Field(ge=1, le=4)] = 2


class SequenceEncoder(BaseConfig):
    """A recurrent (``gru``, ``lstm``: the state after a row's last item) or convolutional (``conv1d``: mean
    over the items) encoder of a sequence's items, each first embedded (a token) or projected (a number)
    to ``hidden``."""

    type: Literal["gru", "lstm", "conv1d"] = "gru"
    hidden: Annotated[int, Field(ge=1)] = 64
    layers: Annotated[int, Field(ge=1, le=8)] = 1
    kernel_size: Literal[3, 5, 7] = 3
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1


Encoder = Annotated[
    TabularEncoder | BagEncoder | ScratchTextEncoder | PretrainedTextEncoder | ImageEncoder | SequenceEncoder,
    Field(discriminator="type"),
]
#: the encoder types that fit each kind of input, the first the default
ENCODERS: dict[str, tuple[str, ...]] = {
    "tabular": ("mlp",),
    "text": ("bag", "transformer", "pretrained"),
    "image": ("cnn",),
    "sequence": ("gru", "lstm", "conv1d", "transformer"),
}
_DEFAULTS: dict[str, BaseConfig] = {"tabular": TabularEncoder(), "text": BagEncoder(), "image": ImageEncoder(),
                                    "sequence": SequenceEncoder()}  # fmt: skip


class ConcatCombiner(BaseConfig):
    """The encodings joined side by side, then an MLP."""

    type: Literal["concat"] = "concat"
    hidden: list[Width] = [128]
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1


class CrossAttentionCombiner(BaseConfig):
    """Each input's encoding projected to ``dim`` as one token (plus a learned token per input and a [CLS]
    token); ``layers`` transformer layers let the inputs attend to each other; the head reads [CLS]."""

    type: Literal["cross_attention"] = "cross_attention"
    layers: Annotated[int, Field(ge=1, le=12)] = 2
    heads: Width = 4
    dim: Annotated[int, Field(ge=4)] = 64
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1

    @model_validator(mode="after")
    def _heads_divide(self) -> CrossAttentionCombiner:
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not a multiple of heads {self.heads}")
        return self


@MODELS.register("fusion")
class FusionConfig(ModelConfig):
    """One encoder per input and a combiner (see the module's docstring).

    ``encoders`` maps an input's kind (``tabular``, ``text``, ``image``) or a text or image input's name to
    its encoder; an input named there takes that one, the others their kind's, and a kind left out its
    default (``mlp``, ``bag``, ``cnn``).
    """

    type: Literal["fusion"] = "fusion"
    encoders: dict[str, Encoder] = {}
    combiner: Annotated[ConcatCombiner | CrossAttentionCombiner, Field(discriminator="type")] = ConcatCombiner()

    @model_validator(mode="before")
    @classmethod
    def _default_types(cls, data: Any) -> Any:
        """An encoder declared under its kind without a ``type`` takes that kind's default type; a combiner
        without one is ``concat``."""
        if not isinstance(data, dict):
            return data
        if isinstance(data.get("combiner"), dict) and "type" not in data["combiner"]:
            data = {**data, "combiner": {"type": "concat", **data["combiner"]}}
        encoders = data.get("encoders")
        if isinstance(encoders, dict):
            encoders = {key: {"type": ENCODERS[key][0], **spec} if key in ENCODERS and isinstance(spec, dict)
                        else spec for key, spec in encoders.items()}  # fmt: skip
            data = {**data, "encoders": encoders}
        return data

    def encoder_for(self, name: str, kind: str) -> Any:
        """The encoder of input ``name`` of ``kind`` (``tabular`` for the tabular columns)."""
        kind = "tabular" if kind in TABULAR else kind
        return self.encoders.get(name) or self.encoders.get(kind) or _DEFAULTS[kind]

    def check_features(self, features: FeaturesConfig) -> list[str]:
        kinds = {"tabular" if f.type in TABULAR else f.type for f in features.inputs}
        by_name = {f.name: f.type for f in features.inputs}
        problems = []
        for key, encoder in self.encoders.items():
            where = f"encoders.{key}"
            if key in ENCODERS:
                kind = key
                if kind not in kinds:
                    problems.append(f"{where}: the recipe has no {kind} input; remove this encoder")
                    continue
            elif key not in by_name:
                problems.append(f"{where}: no input is called '{key}' (inputs: {', '.join(by_name)}; or use "
                                f"a kind: {', '.join(ENCODERS)})")  # fmt: skip
                continue
            elif by_name[key] in TABULAR:
                problems.append(f"{where}: the tabular columns share one encoder; declare it as encoders.tabular")
                continue
            else:
                kind = by_name[key]
            if encoder.type not in ENCODERS[kind]:
                problems.append(f"{where}: {'an' if kind == 'image' else 'a'} {kind} input takes a {' | '.join(ENCODERS[kind])} encoder, not "
                                f"{encoder.type}")  # fmt: skip
        return problems

    def _pretrained(self, features: FeaturesConfig) -> dict[str, str]:
        """Text inputs whose encoder is pretrained, and its reference."""
        chosen = {f.name: self.encoder_for(f.name, "text") for f in features.of_type("text")}
        return {name: enc.path for name, enc in chosen.items() if isinstance(enc, PretrainedTextEncoder)}

    def tokenizer_paths(self, features: FeaturesConfig) -> dict[str, Path]:
        return {name: pretrained_tokenizer(ref) for name, ref in self._pretrained(features).items()}

    def prepare_io(self, io: ModelIO) -> ModelIO:
        extra = dict(io.extra)
        for entry in io.inputs:
            encoder = self.encoder_for(entry["name"], entry["type"])
            key = f"hf_config.{entry['name']}"
            if isinstance(encoder, PretrainedTextEncoder) and key not in extra:
                folder = resolve_pretrained(encoder.path)
                extra[key] = hf_transformers().AutoConfig.from_pretrained(folder).to_dict()
        return ModelIO(**{**io.to_dict(), "extra": extra})

    def build(self, io: ModelIO, *, pretrained: bool = True) -> nn.Module:
        return FusionModel(self, io, load_weights=pretrained)

    def unprunable(self, model: nn.Module) -> list[nn.Module]:
        """Everything but the tabular MLP's layers and a concat combiner's: text and image encoders keep
        their shapes (prune them as single-input models), as do the category embeddings and the head."""
        assert isinstance(model, FusionModel)
        keep: list[nn.Module] = [*model.encoders, model.combiner.head]
        if model.tabular is not None:
            keep += list(model.tabular.embeddings)
        if not isinstance(model.combiner, _Concat):
            keep.append(model.combiner)
        return keep

    def pruning_options(self, model: nn.Module, ratio: float) -> dict[str, Any]:
        assert isinstance(model, FusionModel)
        return {} if model.tabular is None else periodic_parameters(model.tabular)

    def pruned(self, model: nn.Module) -> FusionConfig:
        assert isinstance(model, FusionModel)
        data = self.model_dump()
        if model.tabular is not None:
            hidden = [layer.out_features for layer in model.tabular.body if isinstance(layer, nn.Linear)]
            spec = self.encoder_for("tabular", "tabular")
            data["encoders"] = {**data["encoders"], "tabular": {**spec.model_dump(), "hidden": hidden}}
        if isinstance(model.combiner, _Concat):
            hidden = [layer.out_features for layer in model.combiner.body if isinstance(layer, nn.Linear)]
            data["combiner"] = {**data["combiner"], "hidden": hidden}
        return self.model_validate(data)


def pretrained_tokenizer(ref: str) -> Path:
    """The ``tokenizer.json`` of the pretrained encoder ``ref``."""
    from seekforge.core.errors import ConfigError

    path = resolve_pretrained(ref) / "tokenizer.json"
    if not path.is_file():
        raise ConfigError(f"{path} is missing; only fast tokenizers are supported")
    return path


class FusionModel(nn.Module):
    """Encoders (``tabular`` and one per text or image input, in the recipe's order), then the combiner."""

    def __init__(self, config: FusionConfig, io: ModelIO, *, load_weights: bool) -> None:
        super().__init__()
        widths: list[int] = []
        self.tabular: MLP | None = None
        if io.numeric_dim or io.category_cardinalities:
            spec = config.encoder_for("tabular", "tabular")
            mlp_config = MLPConfig.model_validate({**spec.model_dump(), "type": "mlp"})
            self.tabular = MLP(mlp_config, ModelIO(**{**io.to_dict(), "output_dim": 1, "inputs": ()}))
            widths.append(self.tabular.head.in_features)
            self.tabular.head = nn.Identity()  # type: ignore[assignment]
        self.keys: list[tuple[str, ...]] = []
        self.encoders = nn.ModuleList()
        for entry in io.inputs:
            spec = config.encoder_for(entry["name"], entry["type"])
            if entry["type"] == "text":
                encoder: _Text | _Image | _Sequence = _Text(spec, entry, io.extra.get(f"hf_config.{entry['name']}"),
                                                            load_weights)  # fmt: skip
                self.keys.append((entry["ids"], entry["mask"]))
            elif entry["type"] == "sequence":
                encoder = _Sequence(spec, entry)
                self.keys.append((entry["items"], entry["mask"]))
            else:
                encoder = _Image(spec, tuple(entry["shape"]))
                self.keys.append((entry["key"],))
            self.encoders.append(encoder)
            widths.append(encoder.width)
        if not widths:
            raise ValueError("a fusion model needs at least one input")
        combiner = config.combiner
        self.combiner = (_Concat if isinstance(combiner, ConcatCombiner) else _CrossAttention)(
            widths,
            combiner,
            io.output_dim,  # type: ignore[arg-type]
        )

    def encode(self, batch: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        """Each input's encoding ``[rows, width]``, tabular first."""
        parts = [] if self.tabular is None else [self.tabular(batch)]  # type: ignore[arg-type]
        for keys, encoder in zip(self.keys, self.encoders, strict=True):
            parts.append(encoder(*(batch[key] for key in keys)))
        return parts

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.combiner(self.encode(batch))

    def for_export(self) -> nn.Module:
        """A copy for export whose pretrained text encoders keep only the positions their tokenizer produces."""
        if not any(isinstance(e, _Text) and e.model is not None and e.model.hf for e in self.encoders):
            return self
        from copy import deepcopy

        copy = deepcopy(self)
        for encoder in copy.encoders:
            if isinstance(encoder, _Text) and encoder.model is not None:
                encoder.model = encoder.model.for_export()  # type: ignore[assignment]
        return copy.eval()


class _Text(nn.Module):
    def __init__(self, spec: Any, entry: dict[str, Any], hf_config: dict[str, Any] | None, load_weights: bool) -> None:
        super().__init__()
        self.model: TextTransformer | None = None
        if isinstance(spec, BagEncoder):
            self.bag = nn.Embedding(entry["vocab_size"], spec.dim, padding_idx=0)
            self.width = spec.dim
            return
        if isinstance(spec, PretrainedTextEncoder):
            config = TransformerConfig(pretrained=spec.path, freeze_encoder=spec.freeze, pooling=spec.pooling)
        else:
            config = TransformerConfig(layers=spec.layers, heads=spec.heads, hidden=spec.hidden, ffn=spec.ffn,
                                       dropout=spec.dropout, pooling=spec.pooling)  # fmt: skip
        extra = {} if hf_config is None else {"hf_config": hf_config}
        io = ModelIO(output_dim=1, vocab_size=entry["vocab_size"], max_length=entry["max_length"], extra=extra)
        self.model = TextTransformer(config, io, load_weights=load_weights)
        self.width = self.model.head.in_features
        self.model.head = nn.Identity()  # type: ignore[assignment]

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.model is not None:
            return self.model.embed_text({"input_ids": ids, "attention_mask": mask})
        weights = mask.unsqueeze(-1).to(self.bag.weight.dtype)
        return (self.bag(ids) * weights).sum(1) / weights.sum(1).clamp(min=1.0)


class _Image(nn.Module):
    def __init__(self, spec: ImageEncoder, shape: tuple[int, ...]) -> None:
        super().__init__()
        config = CNNConfig(channels=spec.channels, kernel_size=spec.kernel_size, convs_per_block=spec.convs_per_block,
                           dropout=0.0)  # fmt: skip
        self.cnn = CNN(config, ModelIO(output_dim=1, image_shape=shape))  # type: ignore[arg-type]
        self.width = self.cnn.head.in_features
        self.cnn.head = nn.Identity()  # type: ignore[assignment]

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.cnn({"image": pixels})


class _Sequence(nn.Module):
    def __init__(self, spec: SequenceEncoder | ScratchTextEncoder, entry: dict[str, Any]) -> None:
        super().__init__()
        self.width = width = spec.hidden
        self.tokens = entry["kind"] == "tokens"
        self.embed: nn.Module = (
            nn.Embedding(entry["vocab_size"], width, padding_idx=0) if self.tokens else nn.Linear(1, width)
        )
        self.kind = spec.type
        if isinstance(spec, ScratchTextEncoder):
            self.position = nn.Embedding(entry["max_length"], width)
            layer = nn.TransformerEncoderLayer(width, spec.heads, dim_feedforward=spec.ffn, dropout=spec.dropout,
                                               activation="gelu", batch_first=True, norm_first=True)  # fmt: skip
            self.body: nn.Module = nn.TransformerEncoder(layer, spec.layers, enable_nested_tensor=False)
        elif spec.type == "conv1d":
            self.body = nn.ModuleList(
                nn.Sequential(
                    nn.Conv1d(width, width, spec.kernel_size, padding=spec.kernel_size // 2),
                    nn.ReLU(),
                    nn.Dropout(spec.dropout),
                )
                for _ in range(spec.layers)
            )
        else:
            rnn = nn.GRU if spec.type == "gru" else nn.LSTM
            self.body = rnn(width, width, num_layers=spec.layers, batch_first=True,
                            dropout=spec.dropout if spec.layers > 1 else 0.0)  # fmt: skip

    def forward(self, items: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        weights = mask.unsqueeze(-1).to(torch.float32)
        x = (self.embed(items) if self.tokens else self.embed(items.unsqueeze(-1))) * weights
        if self.kind in ("gru", "lstm"):  # items are left-aligned: the state after a row's last one
            states, _ = self.body(x)
            last = (mask.sum(dim=1) - 1).clamp(min=0)
            return states[torch.arange(states.shape[0], device=states.device), last] * weights[:, :1, 0]
        if self.kind == "conv1d":  # padding zeroed after each block, so no row depends on its batch's longest
            for block in self.body:  # type: ignore[union-attr]
                x = block(x.transpose(1, 2)).transpose(1, 2) * weights
        else:
            padding = mask == 0
            padding[:, 0] = False  # an empty row attends to its (zero) first item rather than to nothing
            x = self.body(
                x + self.position(torch.arange(x.shape[1], device=x.device))[None], src_key_padding_mask=padding
            )
        return (x * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)


class _Concat(nn.Module):
    def __init__(self, widths: list[int], spec: ConcatCombiner, output_dim: int) -> None:
        super().__init__()
        width, layers = sum(widths), []
        for size in spec.hidden:
            layers += [nn.Linear(width, size), nn.ReLU(), nn.Dropout(spec.dropout)]
            width = size
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, output_dim)

    def forward(self, parts: list[torch.Tensor]) -> torch.Tensor:
        return self.head(self.body(torch.cat(parts, dim=1)))


class _CrossAttention(nn.Module):
    def __init__(self, widths: list[int], spec: CrossAttentionCombiner, output_dim: int) -> None:
        super().__init__()
        dim = spec.dim
        self.project = nn.ModuleList(nn.Linear(width, dim) for width in widths)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.position = nn.Parameter(torch.randn(len(widths) + 1, dim) * 0.02)  # which input a token is
        layer = nn.TransformerEncoderLayer(dim, spec.heads, dim_feedforward=2 * dim, dropout=spec.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)  # fmt: skip
        self.encoder = nn.TransformerEncoder(layer, spec.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, output_dim)

    def forward(self, parts: list[torch.Tensor]) -> torch.Tensor:
        tokens = torch.stack([project(x) for project, x in zip(self.project, parts, strict=True)], dim=1)
        tokens = torch.cat([self.cls.expand(tokens.shape[0], -1, -1), tokens], dim=1) + self.position
        return self.head(self.norm(self.encoder(tokens))[:, 0])
