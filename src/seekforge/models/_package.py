"""A package's model: rebuilt from ``model.json`` (its config and input facts) and ``model.safetensors``.

Neither file is trusted: the model ``model.json`` describes is built first on the ``meta`` device (no
memory), its parameters counted and one row's activations sized, and its weights' shapes compared with
the safetensors header, before any real tensor is allocated.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from pydantic import ValidationError
from torch import nn

from seekforge.core.errors import PackageError, SeekforgeError
from seekforge.core.limits import limits
from seekforge.core.package import read_package_json
from seekforge.core.safetensors_file import safetensors_shapes
from seekforge.models.config import MODELS, ModelConfig, ModelIO

_REBUILD = "the package was altered or built by another tool: re-create it with seekforge run or compress"


def model_spec_of(folder: Path, model_json: dict[str, Any] | None = None) -> tuple[ModelConfig, ModelIO]:
    """The model config and input facts in ``folder/model.json`` (or in ``model_json``).

    Raises:
        PackageError: ``model.json`` is not a model seekforge can build.
    """
    spec = model_json if model_json is not None else read_package_json(folder, "model.json")
    try:
        config = MODELS.get(spec["config"]["type"]).model_validate(spec["config"])
        io = ModelIO.from_dict(spec["io"])
        _check_io(io)
    except SeekforgeError as exc:
        raise PackageError(f"{folder / 'model.json'}: {exc.message}", hint=exc.hint or _REBUILD) from None
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in ("config", *error["loc"]))
        raise PackageError(f"{folder / 'model.json'}: {field}: {error['msg'].lower()}", hint=_REBUILD) from None
    except (KeyError, TypeError, ValueError) as exc:
        why = str(exc) if type(exc) is ValueError else f"{type(exc).__name__}: {exc}"
        raise PackageError(f"{folder / 'model.json'}: not a model description ({why})", hint=_REBUILD) from None
    return config, io


def _check_io(io: ModelIO) -> None:
    counts = [io.output_dim, io.numeric_dim, *io.category_cardinalities, *(io.image_shape or ())]
    counts += [n for n in (io.vocab_size, io.max_length) if n is not None]
    if any(type(n) is not int or n < 0 for n in counts):
        raise ValueError("its io sizes must be non-negative whole numbers")


def load_tensors(path: Path | str) -> dict[str, torch.Tensor]:
    """A safetensors file's tensors, its header checked first (:func:`safetensors_shapes`).

    Raises:
        PackageError: The file is missing or not a valid safetensors file.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    try:
        safetensors_shapes(path)
        return load_file(str(path))
    except FileNotFoundError:
        raise PackageError(f"{path} is missing", hint=_REBUILD) from None
    except (SafetensorError, OSError, ValueError) as exc:
        raise PackageError(f"{path} cannot be read as safetensors ({exc})", hint=_REBUILD) from None


def check_model_size(model: nn.Module, io: ModelIO, where: Path) -> None:
    """Refuse a model (built on the ``meta`` device) with more parameters than the limit, or whose forward
    pass makes a larger activation for one row than the limit.

    Raises:
        PackageError: With the figures and the flag that raises the limit.
    """
    bound = limits()
    parameters = sum(p.numel() for p in model.parameters())
    if parameters > bound.model_parameters:
        raise PackageError(
            f"{where} describes a model of {parameters:,} parameters, more than the limit of {bound.model_parameters:,}",
            hint="if the package is trusted, raise the limit: seekforge --max-model-parameters N ...",
        )
    largest = {"bytes": 0, "module": ""}

    def measure(module: nn.Module, _: Any, output: Any) -> None:
        for tensor in output if isinstance(output, tuple | list) else (output,):
            if isinstance(tensor, torch.Tensor):
                size = tensor.numel() * tensor.element_size()
                if size > largest["bytes"]:
                    largest.update(bytes=size, module=type(module).__name__)

    hooks = [m.register_forward_hook(measure) for m in model.modules()]
    try:
        with torch.no_grad():
            model.eval()(_meta_row(io))
    except (NotImplementedError, RuntimeError):  # an operation with no meta kernel: the parameter bound holds
        pass
    finally:
        for hook in hooks:
            hook.remove()
    if largest["bytes"] > bound.activation_bytes:
        mib = math.ceil(largest["bytes"] / 2**20)
        raise PackageError(
            f"{where} describes a model whose {largest['module']} makes {mib:,} MiB of activations for one row, "
            f"more than the limit of {bound.activation_bytes // 2**20:,} MiB",
            hint=f"if the package is trusted, raise the limit: seekforge --max-activation-mib {mib} ...",
        )


def _meta_row(io: ModelIO) -> dict[str, torch.Tensor]:
    """One row of every input ``io`` describes, on the ``meta`` device."""
    meta = torch.device("meta")
    row: dict[str, torch.Tensor] = {}
    if io.numeric_dim:
        row["numeric"] = torch.empty(1, io.numeric_dim, device=meta)
    if io.category_cardinalities:
        row["category"] = torch.zeros(1, len(io.category_cardinalities), dtype=torch.long, device=meta)
    for entry in io.inputs or _single_inputs(io):
        if entry["type"] == "image":
            row[entry["key"]] = torch.empty(1, *entry["shape"], device=meta)
        elif entry["type"] == "sequence":
            dtype = torch.float32 if entry["kind"] == "numbers" else torch.long
            row[entry["items"]] = torch.zeros(1, entry["max_length"], dtype=dtype, device=meta)
            row[entry["mask"]] = torch.ones(1, entry["max_length"], dtype=torch.long, device=meta)
        else:
            row[entry["ids"]] = torch.zeros(1, entry["max_length"], dtype=torch.long, device=meta)
            row[entry["mask"]] = torch.ones(1, entry["max_length"], dtype=torch.long, device=meta)
    return row


def _single_inputs(io: ModelIO) -> list[dict[str, Any]]:
    """The text and image inputs of a ModelIO written before it listed them (one of each at most)."""
    inputs: list[dict[str, Any]] = []
    if io.image_shape is not None:
        inputs.append({"type": "image", "key": "image", "shape": io.image_shape})
    if io.max_length is not None:
        inputs.append({"type": "text", "ids": "input_ids", "mask": "attention_mask", "max_length": io.max_length})
    return inputs


def build_model(package: Path, *, model_json: dict[str, Any] | None = None, merge: bool = False) -> nn.Module:
    """Rebuild the package's ``nn.Module`` from ``model.json`` and load ``model.safetensors``, once both
    are checked against each other and the limits (:func:`check_model_size`); ``merge``: with any adapter
    merged into its base's weights (for inference: one matrix product per layer instead of three).

    Raises:
        PackageError: ``model.json`` describes a model beyond the limits, or one that ``model.safetensors``
            does not fit, or either file is damaged.
    """
    config, io = model_spec_of(package, model_json)
    weights = package / "model.safetensors"
    shapes = safetensors_shapes(weights)
    try:
        with torch.device("meta"):
            skeleton = config.build(io, pretrained=False)
    except SeekforgeError as exc:
        raise PackageError(f"{package / 'model.json'}: {exc.message}", hint=exc.hint or _REBUILD) from None
    except (RuntimeError, ValueError, TypeError) as exc:
        raise PackageError(f"{package / 'model.json'}: cannot build its model ({exc})", hint=_REBUILD) from None
    check_model_size(skeleton, io, package / "model.json")
    stored = config.stored_state(skeleton)
    partial = len(stored) < len(skeleton.state_dict())  # the rest comes from elsewhere (an adapter's base)
    expected = {k: tuple(v.shape) for k, v in stored.items()}
    wrong = [f"{k} {list(shapes[k][1])} where model.json builds {list(v)}"
             for k, v in expected.items() if k in shapes and shapes[k][1] != v]  # fmt: skip
    missing = [k for k in expected if k not in shapes]
    unexpected = [k for k in shapes if k not in expected]
    if wrong or missing or unexpected:
        found = "; ".join(wrong[:3]) or f"missing {missing[:5]}, unexpected {unexpected[:5]}"
        raise PackageError(
            f"{weights} does not fit model.json: {found}",
            hint="the two files come from different models: rebuild the package with seekforge run or compress",
        )
    del skeleton
    try:
        model = config.build(io, pretrained=False)
    except SeekforgeError as exc:
        raise PackageError(f"{package / 'model.json'}: {exc.message}", hint=exc.hint or _REBUILD) from None
    model.load_state_dict(load_tensors(weights), strict=not partial)
    if merge:
        model = config.merged(model)[1]
    return model.eval()
