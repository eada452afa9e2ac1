"""Quantized models of quantization-aware training, through torchao's PT2E flow (torch.ao.quantization is deprecated in this
torch): the model is captured with ``torch.export``, fake-quantized by the x86 quantizer's QAT settings
(int8 activations per tensor, int8 weights per channel), fine-tuned, and converted. The converted model
exports to a QDQ ONNX graph that onnxruntime runs with int8 kernels.

A QAT package keeps the fine-tuned float weights in ``model.safetensors`` (so it loads like any other)
and the fake-quantization state (scales, zero points, observer ranges) in ``quantization.safetensors``;
:func:`quantized_model` rebuilds the converted model from the two.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seekforge.core.deps import quiet_imports, require
from seekforge.core.errors import ConfigError, PackageError
from seekforge.models.config import is_token_key

QUANT_FILE = "quantization.safetensors"
#: inputs whose sizes (batch, and tokens) vary between calls


def check_qat_supported() -> None:
    """Fail early, with the install command, when torchao is missing."""
    _torchao()


def _torchao() -> Any:
    quiet_imports()
    return require("torchao", purpose="Quantization-aware training")


@contextmanager
def _quiet() -> Iterator[None]:
    """torch.export and copies of exported graphs warn of pytree internals that are not ours to fix."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        yield


class Exported(nn.Module):
    """A ``torch.export`` graph as a module the Trainer can switch between train and eval: exported graphs
    change batch norm and dropout only through torchao's ``move_exported_model_to_*``."""

    def __init__(self, graph: nn.Module) -> None:
        super().__init__()
        self.graph = graph

    def train(self, mode: bool = True) -> Exported:
        from torchao.quantization.pt2e import move_exported_model_to_eval, move_exported_model_to_train

        (move_exported_model_to_train if mode else move_exported_model_to_eval)(self.graph)
        self.training = mode
        return self

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.graph(batch)


def prepare_qat(model: nn.Module, example: dict[str, torch.Tensor]) -> Exported:
    """Capture ``model`` (float, any batch size) and insert the fake quantizers for QAT."""
    _torchao()
    from torchao.quantization.pt2e.quantize_pt2e import prepare_qat_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as x86

    if any(map(is_token_key, example)):
        raise ConfigError(
            "compress.quantize: quantization-aware training supports MLP and CNN models; for a transformer "
            "use post-training int8 (seekforge export --precision int8, dynamic quantization)"
        )
    batch = torch.export.Dim("batch", min=2)
    shapes = ({key: {0: batch} for key in example},)
    model = copy.deepcopy(model).eval()
    quantizer = x86.X86InductorQuantizer().set_global(x86.get_default_x86_inductor_quantization_config(is_qat=True))
    with _quiet(), torch.no_grad():
        graph = torch.export.export(model, (example,), dynamic_shapes=shapes).module()
        return Exported(prepare_qat_pt2e(graph, quantizer))


def convert(prepared: Exported) -> Exported:
    """The converted model: int8 quantize/dequantize pairs around float ops, ready for ONNX export."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    with _quiet():
        prepared = copy.deepcopy(prepared).eval()
        return Exported(convert_pt2e(prepared.graph)).eval()


def split_state(prepared: Exported, base: nn.Module) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """(the float model's state with the trained weights, the fake-quantization state). The captured
    graph keeps no batch-norm step counters: those stay as they were."""
    state = {k.removeprefix("graph."): v.detach().contiguous() for k, v in prepared.state_dict().items()}
    float_state = base.state_dict()
    missing = [k for k in float_state if k not in state and not k.endswith("num_batches_tracked")]
    if missing:
        raise PackageError(f"the QAT graph lost float weights {missing[:5]}")
    weights = {k: state.get(k, v) for k, v in float_state.items()}
    return weights, {k: v.clone() for k, v in state.items() if k not in float_state}  # some are shared


def quantized_model(package: Path, model: nn.Module, example: dict[str, torch.Tensor]) -> Exported:
    """The converted int8 model of a QAT package: ``model`` (its float weights loaded) captured and prepared
    again the same way, with the saved fake-quantization state put back."""
    from seekforge.models._package import load_tensors

    prepared = prepare_qat(model, example)
    state = {f"graph.{k}": v for k, v in load_tensors(package / QUANT_FILE).items()}
    expected = prepared.state_dict()
    state.update({f"graph.{k}": v for k, v in model.state_dict().items() if f"graph.{k}" in expected})
    missing, unexpected = prepared.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise PackageError(
            f"{package / QUANT_FILE} does not fit the model: missing {list(missing)[:5]}, "
            f"unexpected {list(unexpected)[:5]}",
            hint="re-create the package with seekforge compress --quantize qat",
        )
    return convert(prepared)
