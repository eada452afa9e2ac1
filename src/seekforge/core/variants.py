"""The kinds of exported model a package can hold, and what a package's manifest says of them: which
export a backend runs, whether it passed its parity gate, which backends this install can run, and the
model's version. Every stage that reads exports (load, serve, bench, optimize, monitor) asks these.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BACKENDS",
    "BY_BACKEND",
    "PRECISIONS",
    "TORCH_BACKENDS",
    "VARIANTS",
    "Variant",
    "available_backends",
    "channels_last_applies",
    "model_version",
    "passing_export",
    "raw_onnx_exports",
    "runtime_onnx_exports",
]


@dataclass(frozen=True)
class Variant:
    """One kind of exported model: its name in ``package.json``, the backend that runs it, its file."""

    name: str
    backend: str
    format: str
    precision: str
    file: str
    graph_optimized: bool = False

    @property
    def library(self) -> str:
        """The module that runs it."""
        return "onnxruntime" if self.format == "onnx" else "openvino"


#: Every export variant, by name. A backend runs exactly one variant.
VARIANTS = {
    v.name: v
    for v in (
        Variant("onnx", "onnxruntime", "onnx", "fp32", "onnx/model.onnx"),
        Variant("onnx-optimized", "onnxruntime-optimized", "onnx", "fp32", "onnx/model-optimized.onnx", True),
        Variant("onnx-fp16", "onnxruntime-fp16", "onnx", "fp16", "onnx/model-fp16.onnx"),
        Variant("onnx-int8", "onnxruntime-int8", "onnx", "int8", "onnx/model-int8.onnx"),
        Variant("openvino", "openvino", "openvino", "fp32", "openvino/model.xml"),
        Variant("openvino-bf16", "openvino-bf16", "openvino", "bf16", "openvino/model-bf16.xml"),
        Variant("openvino-int8", "openvino-int8", "openvino", "int8", "openvino/model-int8.xml"),
    )
}
#: backend name -> the variant it runs
BY_BACKEND = {v.backend: v for v in VARIANTS.values()}
#: the backends that run the package's own torch model: as it was trained, or with its 4-D weights in
#: channels-last (NHWC) memory order, in which oneDNN's CPU convolutions (and the layers after them) then
#: compute, often faster than in NCHW (``optimize`` measures both and keeps the faster)
TORCH_BACKENDS = ("torch", "torch-channels-last")
BACKENDS = (*TORCH_BACKENDS, *BY_BACKEND)
PRECISIONS = {"onnx": ("fp32", "fp16", "int8"), "openvino": ("fp32", "bf16", "int8")}


def passing_export(manifest: dict[str, Any], backend: str) -> dict[str, Any] | None:
    """The export record ``backend`` runs, if the package holds one that passed its parity gate."""
    variant = BY_BACKEND.get(backend)
    export = manifest.get("exports", {}).get(variant.name) if variant else None
    return export if export and export["parity"]["passed"] else None


def channels_last_applies(manifest: dict[str, Any]) -> bool:
    """Whether the package's torch model convolves images (a model seekforge built, not an imported graph),
    so that running it channels-last can change its speed."""
    images = any(f.get("type") == "image" for f in manifest.get("inputs", []))
    return images and manifest.get("model", {}).get("type") != "onnx"


def available_backends(manifest: dict[str, Any]) -> list[str]:
    """torch (channels-last too, for a model over images), and the backend of each export that passed its
    parity gate and whose library is installed."""
    return [b for b in TORCH_BACKENDS if b == "torch" or channels_last_applies(manifest)] + [
        b for b, v in BY_BACKEND.items() if passing_export(manifest, b) and importlib.util.find_spec(v.library)
    ]


def takes_raw(export: dict[str, Any] | None) -> bool:
    """Whether an export record's graph holds the package's preprocessing, so it takes raw feature values."""
    return export is not None and export.get("inputs") == "raw"


def raw_onnx_exports(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ONNX exports onnxruntime alone can run, by backend: those that passed their gate and take raw
    feature values (their graph holds the preprocessing)."""
    return {
        record["backend"]: record
        for record in manifest.get("exports", {}).values()
        if record.get("format") == "onnx" and record["parity"]["passed"] and takes_raw(record)
    }


def runtime_onnx_exports(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The ONNX exports the runtime install can serve, by backend: those that passed their gate and are one
    graph (not an early-exit chain), whether they take raw values or inputs the runtime encodes in numpy."""
    return {
        record["backend"]: record
        for record in manifest.get("exports", {}).values()
        if record.get("format") == "onnx" and record["parity"]["passed"] and "segments" not in record
    }


def model_version(manifest: dict[str, Any]) -> str:
    """What identifies a package's model in logs and metrics: its name and the start of its weights' sha256."""
    weights = manifest.get("files", {}).get("model.safetensors", "")
    return f"{manifest['name']}:{str(weights)[:12] or manifest.get('created', '')}"
