"""The recipe of a causal language model's fine-tune (``task: causal_lm``)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from seekforge.core.config import BaseConfig
from seekforge.finetune._causal_base import base_problems


class CausalModel(BaseConfig):
    """The base model (a local Hugging Face causal LM folder with its tokenizer; nothing is downloaded) and
    what trains: ``lora`` adapters (default targets: PEFT's choice for the architecture) or ``none`` (every
    weight)."""

    base: Annotated[str, Field(min_length=1)]
    adapter: Literal["lora", "none"] = "lora"
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
