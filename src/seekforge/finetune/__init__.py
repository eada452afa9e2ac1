"""Fine-tuning pretrained models (``seekforge finetune``): encoders with a classification or regression head,
and causal language models, through LoRA adapters (PEFT; QLoRA on a 4-bit base) or every weight, then
preference tuning (DPO through TRL); ``seekforge generate``."""

from seekforge.finetune._causal import CausalResult, encode, finetune_causal, generate, perplexity
from seekforge.finetune._causal_base import qlora_problem
from seekforge.finetune._causal_package import CausalPackage
from seekforge.finetune._causal_recipe import (
    CausalData,
    CausalModel,
    CausalRecipe,
    CausalTraining,
    Generation,
    PreferenceData,
    PreferenceModel,
    PreferenceRecipe,
    PreferenceTraining,
)
from seekforge.finetune._preference import finetune_preference, pair_preference
from seekforge.finetune._recipe import (
    DEFAULT_LR,
    FinetuneData,
    FinetuneModel,
    FinetuneRecipe,
    FinetuneTraining,
    load_finetune_recipe,
)

__all__ = [
    "DEFAULT_LR",
    "CausalData",
    "CausalModel",
    "CausalPackage",
    "CausalRecipe",
    "CausalResult",
    "CausalTraining",
    "FinetuneData",
    "FinetuneModel",
    "FinetuneRecipe",
    "FinetuneTraining",
    "Generation",
    "PreferenceData",
    "PreferenceModel",
    "PreferenceRecipe",
    "PreferenceTraining",
    "encode",
    "finetune_causal",
    "finetune_preference",
    "generate",
    "load_finetune_recipe",
    "pair_preference",
    "perplexity",
    "qlora_problem",
]
