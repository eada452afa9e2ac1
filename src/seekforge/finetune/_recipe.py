"""The fine-tuning recipe: a pretrained encoder, an adapter, a text and a label column, how to train.

It is the short form of an ordinary recipe (a ``transformer`` model over one text input) and becomes one:
``seekforge finetune`` then runs it through the same chain as ``seekforge run``, so the package it makes
is an ordinary text package (export, serve, monitor all apply). A full recipe whose model has an
``adapter`` runs the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from seekforge.core.config import BaseConfig
from seekforge.core.config_file import load_config
from seekforge.core.errors import ConfigError, SeekforgeError
from seekforge.data.config import SplitConfig
from seekforge.finetune._causal_recipe import CausalRecipe, PreferenceRecipe
from seekforge.models import TransformerConfig, resolve_pretrained
from seekforge.recipe import Recipe, load_recipe

TASKS = ("classification", "regression", "causal_lm", "preference")
#: The learning rate when the recipe names none: adapters train well at ten times full fine-tuning's.
DEFAULT_LR = {"lora": 5e-4, "none": 5e-5}


class FinetuneModel(BaseConfig):
    """The pretrained encoder and what trains.

    Attributes:
        base: ``builtin:minilm`` or a local Hugging Face encoder folder (nothing is downloaded).
        adapter: ``lora`` (low-rank adapters on the frozen base; the package stores them and the head) or
            ``none`` (every weight trains: full fine-tuning).
        rank, alpha, dropout, target_modules: The LoRA adapters (see ``model.adapter`` of a recipe); the
            target modules default to PEFT's choice for the base's architecture.
        max_length: Tokens kept of each text; pooling: how the head reads the tokens.
    """

    base: Annotated[str, Field(min_length=1)]
    adapter: Literal["lora", "qlora", "none"] = "lora"
    rank: Annotated[int, Field(ge=1, le=4096)] = 16
    alpha: Annotated[float, Field(gt=0)] | None = None
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    target_modules: Annotated[list[str], Field(min_length=1)] | None = None
    max_length: Annotated[int, Field(ge=2, le=8192)] = 128
    pooling: Literal["mean", "cls"] = "mean"

    def section(self) -> dict[str, Any]:
        """The recipe's ``model`` section."""
        section: dict[str, Any] = {"type": "transformer", "pretrained": self.base, "pooling": self.pooling}
        if self.adapter == "lora":
            lora = {"type": "lora", "rank": self.rank, "dropout": self.dropout}
            given = {"alpha": self.alpha, "target_modules": self.target_modules}
            section["adapter"] = {**lora, **{k: v for k, v in given.items() if v is not None}}
        return section

    @model_validator(mode="after")
    def _base_fits(self) -> FinetuneModel:
        if self.adapter == "qlora":
            raise ValueError("adapter: qlora holds a causal language model's base in 4 bits (task: causal_lm); an "
                             "encoder classifier trains with adapter: lora")  # fmt: skip
        try:
            resolve_pretrained(self.base)
        except SeekforgeError as exc:
            raise ValueError(exc.message.replace("model.pretrained: ", "base: ")) from None
        try:
            TransformerConfig.model_validate(self.section())  # the adapter's target modules exist in the base
        except ValidationError as exc:
            raise ValueError("; ".join(e["msg"].removeprefix("Value error, adapter.") for e in exc.errors())) from None
        return self


class FinetuneData(BaseConfig):
    """The rows: ``path`` (a .jsonl, .csv or .parquet file, or builtin:NAME), its text and label fields.

    Attributes:
        test: Test rows from another file; else ``split.test`` of ``path`` is held out.
        batch_size: Rows per optimizer step (``training.batch_size`` says the same).
        shuffle: Training rows are shuffled every epoch, seeded by ``seed``; it cannot be turned off.
    """

    path: Annotated[str, Field(min_length=1)]
    text: Annotated[str, Field(min_length=1)] = "text"
    label: Annotated[str, Field(min_length=1)] = "label"
    test: str | None = None
    split: SplitConfig = SplitConfig()
    batch_size: Annotated[int, Field(ge=1)] | None = None
    shuffle: Literal[True] = True


class FinetuneTraining(BaseConfig):
    """How to train: ``lr`` (default 5e-4 for LoRA, 5e-5 for full fine-tuning), ``epochs``, a linear
    schedule warming up over ``warmup_steps`` optimizer steps, AdamW with ``weight_decay``."""

    lr: Annotated[float, Field(gt=0)] | None = None
    epochs: Annotated[int, Field(ge=1)] = 3
    warmup_steps: Annotated[int, Field(ge=0)] = 0
    batch_size: Annotated[int, Field(ge=1)] = 32
    weight_decay: Annotated[float, Field(ge=0)] = 0.01
    precision: Literal["fp32", "bf16"] = "fp32"


class FinetuneRecipe(BaseConfig):
    """``seekforge finetune``'s recipe (see the module's docstring)."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)] = "finetune"
    seed: Annotated[int, Field(ge=0, lt=2**31)] = 0
    task: Literal["classification", "regression"] = "classification"
    model: FinetuneModel
    data: FinetuneData
    training: FinetuneTraining = FinetuneTraining()

    @model_validator(mode="after")
    def _one_batch_size(self) -> FinetuneRecipe:
        given = self.data.batch_size
        if given is not None and "batch_size" in self.training.model_fields_set and given != self.training.batch_size:
            raise ValueError(
                f"data.batch_size ({given}) and training.batch_size ({self.training.batch_size}) differ: keep one"
            )
        return self

    def to_recipe(self) -> dict[str, Any]:
        """The ordinary recipe this one stands for."""
        training = self.training
        output = {"name": self.data.label, "type": "category" if self.task == "classification" else "numeric"}
        data: dict[str, Any] = {"source": self.data.path, "split": self.data.split.model_dump()}
        if self.data.test is not None:
            data["test"] = self.data.test
        return {
            "name": self.name,
            "seed": self.seed,
            "data": data,
            "features": {
                "inputs": [
                    {"name": self.data.text, "type": "text", "max_length": self.model.max_length, "missing": "error"}
                ],
                "output": output,
            },
            "model": self.model.section(),
            "train": {
                "epochs": training.epochs,
                "batch_size": self.data.batch_size or training.batch_size,
                "lr": training.lr if training.lr is not None else DEFAULT_LR[self.model.adapter],
                "optimizer": {"type": "adamw", "weight_decay": training.weight_decay},
                "schedule": {"type": "linear", "warmup": 0.0, "warmup_steps": training.warmup_steps},
                "precision": training.precision,
            },
        }


def load_finetune_recipe(
    source: str | Path, *, overrides: Iterable[str] = ()
) -> Recipe | CausalRecipe | PreferenceRecipe:
    """A fine-tuning recipe: with ``task: causal_lm`` a :class:`CausalRecipe`, with ``task: preference`` a
    :class:`PreferenceRecipe`; otherwise (the short form above, or a full recipe with a pretrained
    transformer) the recipe ``seekforge run`` takes.

    Raises:
        ConfigError: Every problem at once, with its line; or a full recipe whose model is not a
            pretrained transformer.
    """
    path = Path(source)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    except (OSError, yaml.YAMLError):
        raw = None  # load_config reports the file's problem with its line
    task = raw.get("task", "classification") if isinstance(raw, dict) else "classification"
    if task not in TASKS:
        raise ConfigError(
            f"{path}: task '{task}' is not one seekforge finetune knows; choose one of {', '.join(TASKS)}"
        )
    # the short forms are named after their file unless they say otherwise (an override still wins)
    named = [*([] if isinstance(raw, dict) and "name" in raw else [f"name='{_name(path)}'"]), *overrides]
    if task in ("causal_lm", "preference"):
        kind = CausalRecipe if task == "causal_lm" else PreferenceRecipe
        return load_config(path, kind, what="fine-tuning recipe", overrides=named, resolve_paths=True)
    if isinstance(raw, dict) and "features" in raw:
        recipe = load_recipe(path, overrides=overrides)
        if recipe.model.type != "transformer" or getattr(recipe.model, "pretrained", None) is None:
            raise ConfigError(
                f"{path}: seekforge finetune fine-tunes a pretrained encoder, but this recipe's model is "
                f"{recipe.model.type} without 'pretrained'",
                hint="set model.type: transformer and model.pretrained (e.g. builtin:minilm), or use seekforge run",
            )
        return recipe
    short = load_config(path, FinetuneRecipe, what="fine-tuning recipe", overrides=named, resolve_paths=True,
                        hint="see `seekforge finetune --help` for the recipe's shape")  # fmt: skip
    return load_recipe(short.to_recipe())


def _name(path: Path) -> str:
    """A run name from the file's name (characters a name may not hold become ``-``)."""
    stem = "".join(c if c.isalnum() or c in "_.-" else "-" for c in path.stem).lstrip("-_.")
    return stem[:100] or "finetune"
