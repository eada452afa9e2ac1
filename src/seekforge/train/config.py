"""Configuration of the training section and the optimizer extension point."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, ClassVar, Literal

import torch
from pydantic import BeforeValidator, Field, model_validator

from seekforge.core.config import BaseConfig, PluggableConfig, pluggable
from seekforge.core.registry import Registry

PositiveFloat = Annotated[float, Field(gt=0)]
#: a class name as the preprocessor compares it: 3, 3.0 and "3" are the same class
ClassName = Annotated[
    str, BeforeValidator(lambda v: str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
]
Params = Iterable[torch.nn.Parameter] | Iterable[dict]


class OptimizerConfig(PluggableConfig):
    """Base of every optimizer. Subclasses declare ``type: Literal["name"]`` and implement ``build``."""

    registry: ClassVar[Registry[type[OptimizerConfig]]]
    weight_decay: Annotated[float, Field(ge=0)] = 0.0

    def build(self, params: Params, lr: float) -> torch.optim.Optimizer:
        """Return the optimizer over ``params`` with learning rate ``lr``."""
        raise NotImplementedError


OPTIMIZERS: Registry[type[OptimizerConfig]] = Registry("optimizer", "seekforge.optimizers")
OptimizerConfig.registry = OPTIMIZERS


@OPTIMIZERS.register("adamw")
class AdamWConfig(OptimizerConfig):
    type: Literal["adamw"] = "adamw"
    weight_decay: Annotated[float, Field(ge=0)] = 0.01
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = (0.9, 0.999)
    eps: PositiveFloat = 1e-8

    def build(self, params: Params, lr: float) -> torch.optim.Optimizer:
        return torch.optim.AdamW(params, lr=lr, betas=self.betas, eps=self.eps, weight_decay=self.weight_decay)


@OPTIMIZERS.register("sgd")
class SGDConfig(OptimizerConfig):
    type: Literal["sgd"] = "sgd"
    momentum: Annotated[float, Field(ge=0, lt=1)] = 0.9
    nesterov: bool = True

    def build(self, params: Params, lr: float) -> torch.optim.Optimizer:
        return torch.optim.SGD(
            params,
            lr=lr,
            momentum=self.momentum,
            nesterov=self.nesterov and self.momentum > 0,
            weight_decay=self.weight_decay,
        )


@OPTIMIZERS.register("adafactor")
class AdafactorConfig(OptimizerConfig):
    type: Literal["adafactor"] = "adafactor"
    beta2_decay: Annotated[float, Field(lt=0)] = -0.8

    def build(self, params: Params, lr: float) -> torch.optim.Optimizer:
        return torch.optim.Adafactor(params, lr=lr, beta2_decay=self.beta2_decay, weight_decay=self.weight_decay)


@OPTIMIZERS.register("lamb")
class LambConfig(OptimizerConfig):
    type: Literal["lamb"] = "lamb"
    weight_decay: Annotated[float, Field(ge=0)] = 0.01
    betas: tuple[Annotated[float, Field(ge=0, lt=1)], Annotated[float, Field(ge=0, lt=1)]] = (0.9, 0.999)
    eps: PositiveFloat = 1e-6

    def build(self, params: Params, lr: float) -> torch.optim.Optimizer:
        from seekforge.train._lamb import Lamb

        return Lamb(params, lr=lr, betas=self.betas, eps=self.eps, weight_decay=self.weight_decay)


class ScheduleConfig(BaseConfig):
    """Learning-rate schedule over optimizer steps: linear warm-up, then cosine, linear or constant.

    The warm-up lasts ``warmup`` (a share of all optimizer steps) or, when set, ``warmup_steps`` steps
    (at most all of them).
    """

    type: Literal["cosine", "linear", "constant"] = "cosine"
    warmup: Annotated[float, Field(ge=0, lt=1)] = 0.05
    warmup_steps: Annotated[int, Field(ge=0)] | None = None
    min_lr_ratio: Annotated[float, Field(ge=0, le=1)] = 0.0


class EarlyStoppingConfig(BaseConfig):
    """Stop when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs; the best weights
    are kept."""

    monitor: str = "val_loss"
    patience: Annotated[int, Field(ge=1)] = 5
    min_delta: Annotated[float, Field(ge=0)] = 0.0


class ProgressiveConfig(BaseConfig):
    """Progressive data: epoch ``e`` (from 0) trains on a share ``start + grow * e`` (at most all) of the
    training rows, drawn at random each epoch; the learning-rate schedule spans the steps this makes."""

    start: Annotated[float, Field(gt=0, le=1)] = 0.1
    grow: Annotated[float, Field(gt=0, le=1)] = 0.2


class TrainConfig(BaseConfig):
    """How to train. ``batch_size`` is the global batch: with ``--nproc N`` each process takes 1/N.

    ``class_weights`` weights the classification loss: ``balanced`` by inverse class frequency in the
    training split, or ``{class: weight}`` (classes left out weigh 1).
    """

    epochs: Annotated[int, Field(ge=1)] = 10
    #: Rows per optimizer step; ``auto``: the largest power of two (times grad_accum) whose estimated peak
    #: fits ``memory_budget``, and at most an eighth of the training rows (an epoch keeps eight steps).
    batch_size: Annotated[int, Field(ge=1)] | Literal["auto"] = 32
    lr: PositiveFloat = 1e-3
    optimizer: pluggable(OPTIMIZERS, OptimizerConfig, default="adamw") = AdamWConfig()  # type: ignore[valid-type]
    schedule: ScheduleConfig = ScheduleConfig()
    grad_accum: Annotated[int, Field(ge=1)] = 1
    grad_clip: PositiveFloat | None = 1.0
    precision: Literal["fp32", "bf16"] = "fp32"
    class_weights: Literal["none", "balanced"] | dict[ClassName, PositiveFloat] = "none"
    early_stopping: EarlyStoppingConfig | None = None
    checkpoint_every: Annotated[int, Field(ge=1)] | None = None
    eval_batch_size: Annotated[int, Field(ge=1)] = 256
    threads: Annotated[int, Field(ge=1)] | None = None
    device: Literal["auto", "cpu", "cuda"] = "auto"
    #: Recompute each encoder layer's activations in the backward pass instead of keeping them: less memory,
    #: more time (transformer models). ``auto``: on when training's estimated peak exceeds ``memory_budget``.
    gradient_checkpointing: bool | Literal["auto"] = False
    #: Train early epochs on a growing share of the rows (see ProgressiveConfig); each epoch records its rows.
    progressive: ProgressiveConfig | None = None
    #: MiB training may use (``gradient_checkpointing``, ``batch_size``: auto); default: 80% of what is available.
    memory_budget: Annotated[int, Field(ge=1)] | None = None
    #: Every this many epochs (and after the last), each layer's weight histogram and gradient norm go to
    #: ``weights.jsonl`` in the run folder (``seekforge studio`` draws them); 0: never.
    histograms_every: Annotated[int, Field(ge=0)] = 1

    @model_validator(mode="after")
    def _batch_fits_accumulation(self) -> TrainConfig:
        if self.batch_size != "auto" and self.batch_size % self.grad_accum:
            raise ValueError(f"batch_size ({self.batch_size}) must be divisible by grad_accum ({self.grad_accum})")
        return self
