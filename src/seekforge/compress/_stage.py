"""A step of a compression: the model it trained, in its own folder of the work folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from torch import nn

from seekforge.models import ModelConfig


@dataclass
class Stage:
    """A trained model in a stage folder, with its package."""

    name: str
    folder: Path
    model: nn.Module
    config: ModelConfig
    ratio: float | None = None
    #: the float module whose parameters and MACs are counted, when ``model`` is a converted int8 graph
    float_model: nn.Module | None = None
