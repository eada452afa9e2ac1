"""Fine-tuning pretrained encoders: LoRA adapters through PEFT, or every weight (``seekforge finetune``)."""

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
    "FinetuneData",
    "FinetuneModel",
    "FinetuneRecipe",
    "FinetuneTraining",
    "load_finetune_recipe",
]
