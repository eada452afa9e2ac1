"""An early-exit model on onnxruntime: one ONNX graph per segment between exits, chained here.

Segment ``k`` takes the token ids (the first) or the states the previous segment left, and gives its states
and its exit's logits. Between segments the policy (the same code as the torch model's) decides which rows
leave; the others go on as a smaller batch, their padding trimmed to the longest row left. One graph per
segment rather than one graph with control flow: onnxruntime runs each as it runs any graph (its
optimisations, INT8 and fp16 conversions apply per file), and the rows that leave cost nothing more.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from seekforge.export._onnx import ExportError, _session, export_onnx
from seekforge.models import Departures, ExitPolicy, collate, num_rows


def segment_file(file: str, k: int) -> str:
    """Where segment ``k`` of a variant whose file is ``file`` goes: the first at ``file`` itself, the others
    beside it (``onnx/model.onnx``, ``onnx/model.part2.onnx``, ...)."""
    if k == 0:
        return file
    path = Path(file)
    return str(path.with_name(f"{path.stem}.part{k + 1}{path.suffix}"))


def export_segments(model: nn.Module, example: dict[str, torch.Tensor], folder: Path, *, opset: int) -> list[Path]:
    """Export each segment of ``model`` (see ``LayerwiseExits.segments``) to ``folder/segment<k>.onnx``, each
    traced on the states the previous segments give ``example``."""
    model = model.for_export() if hasattr(model, "for_export") else model  # type: ignore[operator]
    model.eval()
    paths = []
    feeds = dict(example)
    for k, segment in enumerate(model.segments()):  # type: ignore[operator]
        path = folder / f"segment{k}.onnx"
        export_onnx(segment.eval(), {name: feeds[name] for name in segment.inputs}, path, opset=opset,
                    outputs=segment.outputs)  # fmt: skip
        paths.append(path)
        if not segment.last:
            with torch.no_grad():
                feeds["hidden"] = segment(feeds)[0]
    return paths


class ExitChain:
    """Runs an exported early-exit model: its segments' graphs on onnxruntime, rows leaving between them.

    Called on encoded batch dicts, it returns every row's logits at the exit it left at and that exit's
    layer number (as ``infer_exits`` does for the torch model).
    """

    def __init__(self, paths: list[Path], policy: ExitPolicy, *, threads: int | None = None) -> None:
        if len(paths) != len(policy.exits):
            raise ExportError(
                f"an early-exit model with {len(policy.exits)} exits needs as many graphs, not {len(paths)}"
            )
        self.sessions = [_session(path, threads=threads, chained=True) for path in paths]
        self.paths = paths
        self.policy = policy

    def __call__(
        self, inputs: Mapping[str, torch.Tensor], *, batch_size: int = 256
    ) -> tuple[torch.Tensor, torch.Tensor]:
        logits, layers = [], []
        for start in range(0, num_rows(dict(inputs)), batch_size):
            out, exits = self._batch(collate(dict(inputs), slice(start, start + batch_size)))
            logits.append(out)
            layers.append(exits)
        if not logits:
            return torch.empty(0), torch.empty(0, dtype=torch.long)
        return torch.cat(logits), torch.cat(layers)

    def _batch(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        going = Departures(self.policy, batch["attention_mask"])
        feeds: dict[str, np.ndarray] = {"input_ids": batch["input_ids"].numpy(), "attention_mask": going.mask.numpy()}
        for k, session in enumerate(self.sessions):
            try:
                outputs = session.run(None, feeds)
            except Exception as exc:  # onnxruntime's errors derive from Exception only
                raise ExportError(f"onnxruntime failed to run {self.paths[k]}: {exc}") from exc
            staying = going.leave(k, torch.from_numpy(np.asarray(outputs[-1])))
            if going.finished:
                break
            hidden = outputs[0]
            if staying is not None:
                stay, length = staying
                hidden = hidden[stay.numpy(), :length]
            feeds = {"hidden": np.ascontiguousarray(hidden), "attention_mask": going.mask.numpy()}
        return going.result()


def exit_runner(package: Path, record: dict[str, Any], *, paths: list[Path] | None = None,
                threads: int | None = None) -> ExitChain:  # fmt: skip
    """The chain an early-exit export ``record`` describes (``paths`` override its files)."""
    spec = record["early_exit"]
    policy = ExitPolicy(spec["policy"], spec["threshold"], tuple(spec["exits"]))
    return ExitChain(paths or [package / f for f in record["segments"]], policy, threads=threads)
