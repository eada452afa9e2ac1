"""Fine-tuning pretrained models (``seekforge finetune``): encoders with a classification or regression head,
and causal language models, through LoRA adapters (PEFT) or every weight; ``seekforge generate``."""

from seekforge.finetune._causal import CausalPackage, CausalResult, encode, finetune_causal, generate, perplexity
from seekforge.finetune._causal_recipe import CausalData, CausalModel, CausalRecipe, CausalTraining, Generation
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
    "encode",
    "finetune_causal",
    "generate",
    "load_finetune_recipe",
    "perplexity",
]
