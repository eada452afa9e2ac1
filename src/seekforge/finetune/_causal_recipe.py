"""The recipes of a causal language model's fine-tune (``task: causal_lm``) and of its preference tuning
(``task: preference``: DPO)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, ValidationError, model_validator

from seekforge.core.config import BaseConfig
from seekforge.finetune._causal_base import MANIFEST, base_problems


class CausalModel(BaseConfig):
    """The base model (a local Hugging Face causal LM folder with its tokenizer; nothing is downloaded) and
    what trains: ``lora`` adapters (default targets: PEFT's choice for the architecture), ``qlora`` (the same
    adapters on the base's weights held in 4 bits: NF4 with double quantization, through bitsandbytes; on a
    CUDA GPU or bitsandbytes' x86-64 CPU backend) or ``none`` (every weight)."""

    base: Annotated[str, Field(min_length=1)]
    adapter: Literal["lora", "qlora", "none"] = "lora"
    rank: Annotated[int, Field(ge=1, le=4096)] = 16
    alpha: Annotated[float, Field(gt=0)] | None = None
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.05
    target_modules: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _base_is_a_causal_lm(self) -> CausalModel:
        problems = base_problems(self.base, self.adapter, self.target_modules)
        if problems:
            raise ValueError("; ".join(problems))
        return self


class CausalData(BaseConfig):
    """Rows of ``path`` (.jsonl, .csv, .parquet): ``{prompt, response}`` pairs (the loss counts the response
    tokens only) or ``{text}`` (every token counts). ``validation``: the share held out for perplexity."""

    path: Annotated[str, Field(min_length=1)]
    prompt: Annotated[str, Field(min_length=1)] = "prompt"
    response: Annotated[str, Field(min_length=1)] = "response"
    text: Annotated[str, Field(min_length=1)] = "text"
    validation: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1


class CausalTraining(BaseConfig):
    """AdamW at ``lr`` with a linear schedule warming up over ``warmup_steps``; sequences cut to ``max_length``
    tokens (the cut ones are counted)."""

    lr: Annotated[float, Field(gt=0)] = 2e-4
    epochs: Annotated[int, Field(ge=1)] = 1
    warmup_steps: Annotated[int, Field(ge=0)] = 0
    batch_size: Annotated[int, Field(ge=1)] = 8
    max_length: Annotated[int, Field(ge=8, le=32768)] = 512
    weight_decay: Annotated[float, Field(ge=0)] = 0.0
    grad_clip: Annotated[float, Field(gt=0)] | None = 1.0


class Generation(BaseConfig):
    """Sampling for the report's sample generations and ``seekforge generate``'s defaults: ``prompts`` (default:
    the first ``samples`` held-out prompts), ``temperature`` 0 decodes greedily."""

    prompts: list[Annotated[str, Field(min_length=1, max_length=20_000)]] = []
    samples: Annotated[int, Field(ge=0, le=50)] = 3
    max_new_tokens: Annotated[int, Field(ge=1, le=4096)] = 64
    temperature: Annotated[float, Field(ge=0.0, le=10.0)] = 0.7
    top_p: Annotated[float, Field(gt=0.0, le=1.0)] = 0.9


class CausalRecipe(BaseConfig):
    """``seekforge finetune``'s recipe for a causal language model."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)] = "causal"
    seed: Annotated[int, Field(ge=0, lt=2**31)] = 0
    task: Literal["causal_lm"] = "causal_lm"
    model: CausalModel
    data: CausalData
    training: CausalTraining = CausalTraining()
    generation: Generation = Generation()


ADAPTER_FIELDS = ("adapter", "rank", "alpha", "dropout", "target_modules")


class PreferenceModel(BaseConfig):
    """Where preference tuning starts: ``start``, a causal-LM package (``seekforge finetune``, task: causal_lm)
    whose adapters (or weights) go on training, that package's model being DPO's reference; or ``base``, a
    causal LM with new adapters (``adapter``, ``rank``, ... as for causal_lm), the base being the reference."""

    start: Annotated[str, Field(min_length=1)] | None = None
    base: Annotated[str, Field(min_length=1)] | None = None
    adapter: Literal["lora", "qlora", "none"] | None = None
    rank: Annotated[int, Field(ge=1, le=4096)] | None = None
    alpha: Annotated[float, Field(gt=0)] | None = None
    dropout: Annotated[float, Field(ge=0.0, lt=1.0)] | None = None
    target_modules: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _one_start(self) -> PreferenceModel:
        if (self.start is None) == (self.base is None):
            raise ValueError("name one of start (a causal-LM package to go on from) or base (a causal LM)")
        if self.start is not None:
            given = [name for name in ADAPTER_FIELDS if getattr(self, name) is not None]
            if given:
                raise ValueError(f"{', '.join(given)}: the package named in start sets the adapter; drop "
                                 f"{'it' if len(given) == 1 else 'them'}, or start from a base")  # fmt: skip
            if not (Path(self.start) / MANIFEST).is_file():
                raise ValueError(f"start: {self.start} is not a causal-LM package (no {MANIFEST}); make one with "
                                 "seekforge finetune and task: causal_lm")  # fmt: skip
            return self
        try:
            self.causal()
        except ValidationError as exc:
            raise ValueError("; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors())) from None
        return self

    def causal(self) -> CausalModel:
        """The base and its new adapters (only with ``base``)."""
        assert self.base is not None, "with start, the package holds the model"
        given = {name: getattr(self, name) for name in ADAPTER_FIELDS if getattr(self, name) is not None}
        return CausalModel.model_validate({"base": self.base, **given})


class PreferenceData(BaseConfig):
    """Rows of ``path`` (.jsonl, .csv, .parquet) with a prompt, the response preferred and the one rejected;
    ``validation``: the share of pairs held out for the reward margins and accuracy."""

    path: Annotated[str, Field(min_length=1)]
    prompt: Annotated[str, Field(min_length=1)] = "prompt"
    chosen: Annotated[str, Field(min_length=1)] = "chosen"
    rejected: Annotated[str, Field(min_length=1)] = "rejected"
    validation: Annotated[float, Field(gt=0.0, lt=1.0)] = 0.1


class PreferenceTraining(CausalTraining):
    """DPO through TRL: ``beta`` weighs the divergence from the reference (lower: further from it);
    ``loss``: ``sigmoid`` (DPO), ``ipo`` or ``hinge`` (SLiC); the rest as for causal_lm (a prompt with its
    response is cut to ``max_length`` tokens)."""

    lr: Annotated[float, Field(gt=0)] = 5e-5
    beta: Annotated[float, Field(gt=0)] = 0.1
    loss: Literal["sigmoid", "ipo", "hinge"] = "sigmoid"


class PreferenceRecipe(BaseConfig):
    """``seekforge finetune``'s recipe for preference tuning (DPO) of a causal language model."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)] = "preference"
    seed: Annotated[int, Field(ge=0, lt=2**31)] = 0
    task: Literal["preference"] = "preference"
    model: PreferenceModel
    data: PreferenceData
    training: PreferenceTraining = PreferenceTraining()
    generation: Generation = Generation()
