"""Quantization-aware training (``seekforge compress --quantize qat``): fine-tune a model with torchao's fake
quantizers (see :mod:`seekforge.models` for the capture, conversion and rebuilding of QAT models) and
keep the fine-tuned float weights and the fake-quantization state side by side in the stage's package.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from seekforge.compress._stage import Stage
from seekforge.core.io import atomic_path
from seekforge.core.progress import console
from seekforge.models import QUANT_FILE, check_qat_supported, prepare_qat, quantized_model, split_state

if TYPE_CHECKING:
    from seekforge.compress._job import Compression

__all__ = ["QUANT_FILE", "check_qat_supported", "quantize_stage"]


def quantize_stage(job: Compression, previous: Stage | None) -> Stage:
    """Fine-tune ``previous`` (or the parent) with fake quantization in ``<work>/qat``."""
    from safetensors.torch import save_file

    from seekforge.build import write_trained

    quantize = job.config.quantize
    assert quantize is not None
    base = previous.model if previous is not None else job.parent
    config = previous.config if previous is not None else job.model_config
    name = "qat int8" if previous is None else f"{previous.name} + qat int8"
    stage = job.folder / "qat"
    prepared = prepare_qat(base, job.example)
    if (stage / "trained" / QUANT_FILE).is_file():
        trained = _trained_float(stage, base)
        return Stage(name, stage, quantized_model(stage / "trained", trained, job.example), config, float_model=trained)
    console.print(f"[bold]quantization-aware training[/] {quantize.epochs} epochs")
    lr = quantize.lr or (job.config.lr or job.recipe.train.lr) / 10
    result = job.train_module(stage, prepared, quantize.epochs, lr)
    weights, fake_quant = split_state(prepared, base)
    trained = copy.deepcopy(base)
    trained.load_state_dict(weights)
    write_trained(stage / "trained", trained, config, job.io, result)
    with atomic_path(stage / "trained" / QUANT_FILE) as tmp:
        save_file(fake_quant, str(tmp))
    return Stage(name, stage, quantized_model(stage / "trained", trained, job.example), config, float_model=trained)


def _trained_float(stage: Path, base: nn.Module) -> nn.Module:
    from safetensors.torch import load_file

    model = copy.deepcopy(base)
    model.load_state_dict(load_file(stage / "trained" / "model.safetensors"))
    return model.eval()
