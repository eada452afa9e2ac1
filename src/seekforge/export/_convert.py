"""Converting a package's model for runtimes beyond onnxruntime and OpenVINO: Core ML through coremltools
(its ML program, ``.mlpackage``); TensorFlow Lite and TensorRT are refused in one line naming what they
need where it is missing. A conversion is added to the package under ``conversions`` (not ``exports``: no
backend here serves it).

Core ML converts on Linux but predicts only on macOS. Here the converted program is checked by its
structure (its inputs are the model's batch keys with their shapes) and its weights are compared: each of
the model's parameters is looked for among the program's constants (same values within the precision's
rounding; a batch norm the converter folded into its convolution changes both, and is counted as not
found). On macOS it also predicts the package's held-out rows and goes through the parity gate as an
export does.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import itertools
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seekforge.core.deps import ensure, quiet, require
from seekforge.core.errors import ConfigError, PackageError
from seekforge.core.hardware import hardware
from seekforge.core.package import add_to_package, read_manifest
from seekforge.export._gate import check_parity
from seekforge.export._onnx import ExportError, _Positional, _quiet_exporter, load_samples
from seekforge.export.config import DEFAULT_LIMITS

TARGETS = ("coreml", "tflite", "tensorrt")
#: the largest batch the converted Core ML program takes
MAX_BATCH = 1024


@dataclass(frozen=True)
class ConvertResult:
    package: Path
    path: Path
    record: dict[str, Any]


def check_target(target: str) -> None:
    """Refuse in one line a target this machine cannot convert to, naming what it needs.

    Raises:
        ConfigError: An unknown target, or one whose converter or hardware is missing.
    """
    if target not in TARGETS:
        raise ConfigError(f"unknown conversion target {target!r}; choose one of {', '.join(TARGETS)}")
    if target == "coreml":
        ensure("coremltools", purpose="Core ML conversion")
    elif target == "tflite":
        raise ConfigError(
            "TensorFlow Lite conversion needs Google's litert-torch converter, which does not install beside "
            f"torch {torch.__version__.split('+')[0]} (it pins its own torch)",
            hint="convert the ONNX export in an environment with litert-torch (pip install litert-torch), or "
            "export to OpenVINO int8 for edge CPUs: seekforge export PACKAGE --format openvino --precision int8",
        )
    elif target == "tensorrt":
        if not torch.cuda.is_available():
            raise ConfigError("TensorRT builds engines on an NVIDIA GPU with CUDA, and this machine has none",
                              hint="run seekforge convert --to tensorrt on the GPU machine that will serve the model")  # fmt: skip
        if importlib.util.find_spec("tensorrt") is None:
            raise ConfigError("TensorRT conversion needs NVIDIA's TensorRT", hint="run: pip install tensorrt")
        raise ConfigError(
            "seekforge does not build TensorRT engines itself yet",
            hint="build one from the ONNX export: trtexec --onnx=PACKAGE/onnx/model.onnx --saveEngine=model.engine --fp16",
        )


def convert_package(package: str | Path, target: str, *, precision: str = "fp32", force: bool = False) -> ConvertResult:
    """Convert the package's model to ``target`` (see :data:`TARGETS`) and add it to the package.

    Raises:
        ConfigError: The target is refused here (:func:`check_target`), or the precision is not one it has.
        PackageError: A conversion is there already (unless ``force``), or the package has no held-out rows.
        ExportError: The converter failed, or the converted program's inputs are not the model's.
    """
    check_target(target)
    if precision not in ("fp32", "fp16"):
        raise ConfigError(f"--precision {precision}: Core ML conversion keeps fp32 or fp16", hint="--precision fp16")
    package = Path(package)
    manifest = read_manifest(package)
    if target in (manifest.get("conversions") or {}) and not force:
        raise PackageError(f"{package} holds a {target} conversion already", hint="--force replaces it")
    from seekforge.models import build_model

    if (manifest.get("model") or {}).get("type") == "onnx":
        raise ConfigError(f"{package} is an imported ONNX model, which Core ML converts from the model it came from",
                          hint="convert the original with coremltools (ct.convert) where its code is")  # fmt: skip
    samples = load_samples(package, manifest)
    model = build_model(package, merge=True).eval()
    model = model.for_export() if hasattr(model, "for_export") else model
    if getattr(model, "policy", None) is not None:
        raise ConfigError("a model with early exit runs as one graph per segment; Core ML takes one program",
                          hint="convert a package without early exit")  # fmt: skip
    example = {k: v[:2] for k, v in samples.inputs.items()}
    with tempfile.TemporaryDirectory(prefix="seekforge-coreml-") as scratch:
        built = Path(scratch) / "model.mlpackage"
        program = _to_coreml(model, example, built, precision=precision)
        structure = _structure(program, example)
        weights = _weights_found(program, model, precision)
        record: dict[str, Any] = {
            "file": "coreml/model.mlpackage",
            "format": "coreml",
            "precision": precision,
            "inputs": "encoded",
            "structure": structure,
            "weights": weights,
            "coremltools": sys.modules["coremltools"].__version__,
            "hardware": hardware().to_dict(),
        }
        record["parity"] = _parity(program, model, samples, manifest, precision)
        files = {f"coreml/model.mlpackage/{p.relative_to(built).as_posix()}": p for p in sorted(built.rglob("*"))
                 if p.is_file()}  # fmt: skip
        record["bytes"] = sum(p.stat().st_size for p in files.values())
        manifest = read_manifest(package)  # as it is now: an export added while this converted stays
        conversions = {**(manifest.get("conversions") or {}), target: record}
        add_to_package(package, files=files, manifest={"conversions": conversions}, drop="coreml/")
    return ConvertResult(package, package / record["file"], record)


def _to_coreml(model: torch.nn.Module, example: dict[str, torch.Tensor], out: Path, *, precision: str) -> Any:
    """torch.export (a dynamic batch), then coremltools' ML program, saved at ``out``."""
    with _quiet_coreml():  # importing it says which of its macOS parts it lacks, and which versions it never tried
        ct = require("coremltools", purpose="Core ML conversion")
    keys = list(example)
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    wrapper = _Positional(model, keys).eval()
    inputs = []
    for key in keys:
        rest = tuple(example[key].shape[1:])
        dtype = np.float32 if example[key].is_floating_point() else np.int32
        inputs.append(
            ct.TensorType(name=key, shape=ct.Shape((ct.RangeDim(1, MAX_BATCH, default=1), *rest)), dtype=dtype)
        )
    try:
        with _quiet_exporter(), _quiet_coreml(), torch.no_grad():
            program = torch.export.export(wrapper, tuple(example[k] for k in keys),
                                          dynamic_shapes=(tuple({0: batch} for _ in keys),)).run_decompositions({})  # fmt: skip
            converted = ct.convert(
                program, inputs=inputs, convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17,
                compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
            )  # fmt: skip
            converted.save(str(out))
    except Exception as exc:  # torch.export's and coremltools' own error types; the message is what matters
        first = (str(exc).splitlines() or [""])[0]
        raise ExportError(f"Core ML conversion failed: {type(exc).__name__}: {first}",
                          hint="run with --debug to see the converter's traceback") from exc  # fmt: skip
    return converted


@contextmanager
def _quiet_coreml() -> Iterator[None]:
    """coremltools' own chatter kept off the terminal: its log lines (untested versions, the macOS-only
    parts it cannot load here), its warnings, and the progress bars of its passes (written to stderr)."""
    with quiet("coremltools", "torch.utils._pytree"), contextlib.redirect_stderr(io.StringIO()):
        yield


def _structure(program: Any, example: dict[str, torch.Tensor]) -> dict[str, Any]:
    """The program's inputs (they must be the batch's keys, with their shapes past the batch) and outputs,
    and its operations by type.

    Raises:
        ExportError: The inputs are not the model's.
    """
    spec = program.get_spec()
    inputs, batches = {}, {}
    for item in spec.description.input:
        array = item.type.multiArrayType
        inputs[item.name] = [int(d) for d in array.shape]
        ranges = array.shapeRange.sizeRanges
        batches[item.name] = [int(ranges[0].lowerBound), int(ranges[0].upperBound)] if ranges else None
    wrong = [k for k in example if k not in inputs or inputs[k][1:] != list(example[k].shape[1:])
             or batches.get(k) != [1, MAX_BATCH]]  # fmt: skip
    if wrong or len(inputs) != len(example):
        raise ExportError(f"the Core ML program's inputs {inputs} (batches {batches}) are not the model's "
                          f"({', '.join(example)}, 1 to {MAX_BATCH} rows)")  # fmt: skip
    operations: Counter[str] = Counter()
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            operations.update(op.type for op in block.operations)
    return {"inputs": inputs, "batch": [1, MAX_BATCH], "outputs": [o.name for o in spec.description.output],
            "operations": dict(sorted(operations.items())), "spec_version": int(spec.specificationVersion)}  # fmt: skip


def _weights_found(program: Any, model: torch.nn.Module, precision: str) -> dict[str, Any]:
    """Each of the model's parameter tensors looked for among the program's constants: one of the same
    shape (or its transpose, as a dense layer's may be stored) equal within the precision's rounding."""
    constants: list[np.ndarray] = []
    mil = getattr(program, "_mil_program", None)  # coremltools' program as converted (its constants' values)
    if mil is not None:
        for function in mil.functions.values():
            constants += [np.asarray(op.val.val) for op in function.operations
                          if op.op_type == "const" and op.val is not None and isinstance(op.val.val, np.ndarray)]  # fmt: skip
    tolerance = 1e-2 if precision == "fp16" else 1e-4
    expected = _expected(model)
    missing = [name for name, value in expected.items() if not any(_close(value, c, tolerance) for c in constants)]
    return {"tensors": len(expected), "matched": len(expected) - len(missing), "missing": missing,
            "checked": mil is not None}  # fmt: skip


def _expected(model: torch.nn.Module) -> dict[str, np.ndarray]:
    """The weights the converted program should hold: the model's parameters, with each batch norm that
    follows a convolution folded into it (as the converter folds it)."""
    from torch import nn
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    found = {name: p.detach().float().numpy() for name, p in model.named_parameters()}
    for prefix, parent in model.named_modules():
        if not isinstance(parent, nn.Sequential):
            continue
        children = list(parent.named_children())
        for (conv_name, conv), (norm_name, norm) in itertools.pairwise(children):
            if not (isinstance(conv, nn.Conv1d | nn.Conv2d) and isinstance(norm, nn.BatchNorm1d | nn.BatchNorm2d)):
                continue
            at = f"{prefix}." if prefix else ""
            for name in (
                f"{at}{conv_name}.weight",
                f"{at}{conv_name}.bias",
                f"{at}{norm_name}.weight",
                f"{at}{norm_name}.bias",
            ):
                found.pop(name, None)
            weight, bias = fuse_conv_bn_weights(conv.weight, conv.bias, norm.running_mean, norm.running_var, norm.eps,
                                                norm.weight, norm.bias)  # fmt: skip
            found[f"{at}{conv_name}.weight (with {norm_name} folded)"] = weight.detach().float().numpy()
            found[f"{at}{conv_name}.bias (with {norm_name} folded)"] = bias.detach().float().numpy()
    return found


def _close(value: np.ndarray, constant: np.ndarray, tolerance: float) -> bool:
    constant = constant.astype(np.float32)
    scale = max(float(np.abs(value).max(initial=0.0)), 1.0)
    for candidate in (constant, constant.T if constant.ndim == 2 else None, constant.reshape(-1)):
        if candidate is not None and candidate.size == value.size:
            shaped = candidate.reshape(value.shape)
            if np.allclose(shaped, value, atol=tolerance * scale, rtol=tolerance):
                return True
    return False


def _parity(
    program: Any, model: torch.nn.Module, samples: Any, manifest: dict[str, Any], precision: str
) -> dict[str, Any]:
    """The parity gate on the held-out rows where Core ML predicts (macOS); elsewhere, said unchecked."""
    if sys.platform != "darwin":
        return {"passed": None, "checked": False, "reason": "Core ML predicts on macOS only; the structure and "
                "weights were checked here instead"}  # fmt: skip
    from seekforge.models import infer

    reference = infer(model, samples.inputs)
    rows = {k: v.numpy().astype(np.float32 if v.is_floating_point() else np.int32) for k, v in samples.inputs.items()}
    answer = program.predict(rows)
    candidate = torch.from_numpy(np.asarray(next(iter(answer.values())), dtype=np.float32))
    limits = DEFAULT_LIMITS[precision]
    parity = check_parity(reference, candidate, samples.target, task=manifest["task"], limits=limits)
    return {**parity.to_dict(), "checked": True}
