"""A package's model: rebuilt from ``model.json`` (its config and input facts) and ``model.safetensors``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import nn

from seekforge.core.errors import PackageError
from seekforge.models.config import MODELS, ModelConfig, ModelIO


def model_spec_of(folder: Path, model_json: dict[str, Any] | None = None) -> tuple[ModelConfig, ModelIO]:
    """The model config and input facts in ``folder/model.json`` (or in ``model_json``)."""
    spec = model_json or json.loads((folder / "model.json").read_text(encoding="utf-8"))
    return MODELS.get(spec["config"]["type"]).model_validate(spec["config"]), ModelIO.from_dict(spec["io"])


def build_model(package: Path, *, model_json: dict[str, Any] | None = None) -> nn.Module:
    """Rebuild the package's ``nn.Module`` from ``model.json`` and load ``model.safetensors``."""
    from safetensors.torch import load_file

    config, io = model_spec_of(package, model_json)
    model = config.build(io, pretrained=False)
    state = load_file(package / "model.safetensors")
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # a weight whose shape is not the one model.json builds
        shapes = "; ".join(line.strip() for line in str(exc).splitlines()[1:4] if line.strip())
        raise PackageError(
            f"{package}/model.safetensors does not fit model.json: {shapes or exc}",
            hint="the two files come from different models: rebuild the package with seekforge run or compress",
        ) from None
    if missing or unexpected:
        raise PackageError(
            f"{package}/model.safetensors does not fit model.json: missing {list(missing)[:5]}, "
            f"unexpected {list(unexpected)[:5]}"
        )
    return model.eval()
