"""ONNX export with torch's dynamo exporter, and an onnxruntime runner for exported models."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from seekforge.core.batch import trim_tokens
from seekforge.core.deps import quiet, require
from seekforge.core.errors import SeekforgeError
from seekforge.models import collate, is_token_key, num_rows


class ExportError(SeekforgeError, RuntimeError):
    """An export failed, or its model does not agree with the torch model."""


class _Positional(nn.Module):
    """Named tensors in, logits out: the graph's inputs carry the batch dict's keys as names."""

    def __init__(self, model: nn.Module, keys: list[str]) -> None:
        super().__init__()
        self.model = model
        self.keys = keys

    def forward(self, *tensors: torch.Tensor) -> Any:
        return self.model(dict(zip(self.keys, tensors, strict=True)))


@contextmanager
def _fresh_rnn_kernels() -> Iterator[None]:
    """Clear the cached kernels of GRU and LSTM around an export.

    With a dynamic sequence axis the exporter swaps in a while-loop decomposition of these operators by
    editing their kernel tables, and leaves the operators' dispatch caches as they were: in a process that
    has exported one before, a second export then unrolls the recurrence and fixes the sequence axis at the
    example's length (torch 2.13), and the cached while-loop kernel would outlive the export.
    """
    caches = [getattr(op, "_dispatch_cache", {}) for op in (torch.ops.aten.gru.input, torch.ops.aten.lstm.input)]
    for cache in caches:
        cache.clear()
    try:
        yield
    finally:
        for cache in caches:
            cache.clear()


def _quiet_exporter() -> AbstractContextManager[None]:
    return quiet("torch.onnx", "torch._dynamo", "torch.export", "onnxscript")


def export_onnx(
    model: nn.Module,
    example: dict[str, torch.Tensor],
    path: Path,
    *,
    opset: int,
    outputs: tuple[str, ...] = ("logits",),
) -> None:
    """Export ``model`` to one self-contained ONNX file with a dynamic batch (and sequence) axis.

    Args:
        model: A seekforge model (batch dict in, logits out). A model with a ``for_export()`` method is
            exported as the copy it returns (e.g. without rows of tables no input reaches).
        example: A batch of at least two rows, as the preprocessor makes it.
        path: The ``.onnx`` file to write.
        opset: ONNX opset version.
        outputs: The names of the model's outputs (a tuple of tensors when more than one).

    Raises:
        ExportError: The exporter could not capture or convert the model.
    """
    require("onnxscript", purpose="ONNX export")
    keys = list(example)
    batch = torch.export.Dim("batch")
    longest: dict[str, int] = {}  # one sequence axis per text input ("" for a model's only one)
    for key in filter(is_token_key, keys):
        text = key.partition(".")[2]
        longest[text] = max(longest.get(text, 0), int(example[key].shape[1]))
    sequences: dict[str, Any] = {}
    names: set[str] = set()
    for text, n in longest.items():  # one axis per input, named after it (numbered where cleaned names clash)
        base = name = re.sub(r"\W", "_", f"sequence_{text}" if text else "sequence")
        number = 1
        while name in names:
            name, number = f"{base}_{number}", number + 1
        names.add(name)
        sequences[text] = torch.export.Dim(name, max=n)
    shapes = tuple({0: batch, 1: sequences[key.partition(".")[2]]} if is_token_key(key) else {0: batch} for key in keys)
    model = model.for_export() if hasattr(model, "for_export") else model  # type: ignore[operator]
    wrapper = _Positional(model.eval(), keys).eval()
    try:
        with _quiet_exporter(), _fresh_rnn_kernels(), torch.no_grad():
            program = torch.onnx.export(
                wrapper,
                tuple(example[k] for k in keys),
                input_names=keys,
                output_names=list(outputs),
                dynamic_shapes=(shapes,),
                opset_version=opset,
                dynamo=True,
                external_data=False,
                verbose=False,
            )
            program.save(str(path), external_data=False)
        _strip_debug_info(path)
    except Exception as exc:  # the exporter raises many types; the message is what matters
        first = (str(exc).splitlines() or [""])[0]
        raise ExportError(
            f"the ONNX exporter could not convert this model: {type(exc).__name__}: {first}",
            hint="run with --debug to see the exporter's traceback",
        ) from exc


def _strip_debug_info(path: Path) -> None:
    """Drop the exporter's per-node debug metadata (Python stack traces, FX node text): it is a few
    percent of a transformer's file and says nothing at run time."""
    onnx = require("onnx", purpose="ONNX export")
    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    onnx.save(model, str(path))


class OnnxRunner:
    """Runs an exported model with onnxruntime: on batch dicts from the preprocessor, or, for a graph
    that holds its preprocessing, on raw feeds (:func:`seekforge.runtime.raw_feeds`)."""

    def __init__(self, path: Path, *, threads: int | None = None) -> None:
        self.session = _session(path, threads=threads)
        self.path = path
        self.names = [i.name for i in self.session.get_inputs()]

    def __call__(self, inputs: Mapping[str, torch.Tensor | np.ndarray], *, batch_size: int = 256) -> torch.Tensor:
        """Logits for every row of ``inputs``, in order."""
        missing = [name for name in self.names if name not in inputs]
        if missing:
            raise ExportError(f"the ONNX model needs inputs {missing} that were not given")
        outputs: list[np.ndarray] = []
        raw = not all(isinstance(v, torch.Tensor) for v in inputs.values())
        rows = len(next(iter(inputs.values()))) if raw else num_rows(inputs)  # type: ignore[arg-type]
        for start in range(0, rows, batch_size):
            if raw:
                feeds = trim_tokens({name: np.asarray(inputs[name][start : start + batch_size]) for name in self.names})
            else:
                batch = collate(inputs, slice(start, start + batch_size))  # type: ignore[arg-type]
                feeds = {name: batch[name].numpy() for name in self.names}
            try:
                outputs.append(self.session.run(None, feeds)[0])
            except Exception as exc:
                raise ExportError(f"onnxruntime failed to run {self.path}: {exc}") from exc
        return torch.from_numpy(np.concatenate(outputs)) if outputs else torch.empty(0)


def _session(path: Path, *, threads: int | None = None, optimized: Path | None = None, chained: bool = False) -> Any:
    from seekforge.core.errors import PackageError
    from seekforge.runtime import session

    try:
        return session(path, threads=threads, optimized=optimized, chained=chained)
    except PackageError as exc:
        raise ExportError(exc.message, hint=exc.hint) from exc


def optimize_graph(source: Path, out: Path) -> None:
    """Save onnxruntime's graph optimisations of ``source`` (fusions, constant folding) to ``out``."""
    _session(source, optimized=out)
    if not out.is_file():
        raise ExportError("onnxruntime did not write the optimised graph")


def to_fp16(source: Path, out: Path) -> None:
    """Convert the weights and computation of ``source`` to float16, keeping float32 inputs and outputs."""
    onnx = require("onnx", purpose="fp16 export")
    float16 = require("onnxruntime.transformers.float16", purpose="fp16 export")
    try:
        with _quiet_exporter():
            model = float16.convert_float_to_float16(onnx.load(str(source)), keep_io_types=True)
    except Exception as exc:
        raise ExportError(f"the fp16 conversion failed: {exc}") from exc
    _sort_nodes(model.graph)  # the converter appends its input casts after the nodes that read them
    onnx.save(model, str(out))


def _sort_nodes(graph: Any) -> None:
    """Order ``graph``'s nodes so that each comes after the nodes whose outputs it reads."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        waiting = []
        for node in pending:
            if all(name in ready for name in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                waiting.append(node)
        if len(waiting) == len(pending):
            raise ExportError(f"the graph has a cycle or an undefined input near node {waiting[0].name!r}")
        pending = waiting
    del graph.node[:]
    graph.node.extend(ordered)


def load_samples(package: Path, manifest: dict[str, Any]) -> Any:
    """The package's held-out rows (a :class:`~seekforge.train.Tensors`), which every export is checked on.

    Raises:
        PackageError: The package has none, or too few to export with.
    """
    from seekforge.core.errors import PackageError
    from seekforge.train import Tensors

    if "samples.safetensors" not in manifest["files"]:
        raise PackageError(
            f"{package} holds no held-out rows (samples.safetensors) to check exports against",
            hint="re-create the package with this seekforge version",
        )
    samples = Tensors.load(package / "samples.safetensors")
    if len(samples) < 2:
        raise PackageError(f"{package} holds {len(samples)} held-out row; exports need at least 2 to check")
    return samples
