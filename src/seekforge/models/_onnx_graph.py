"""A model made elsewhere, as an ONNX graph inside a package (``seekforge import``): model type ``onnx``.

The graph's bytes are the module's one buffer (``graph``, uint8), so ``model.safetensors`` holds them and
the package's checksums cover them like any weights. The module runs the graph on onnxruntime (CPU): the
batch keys the preprocessor makes (``numeric``, an image's key, a text's token ids and mask) feed the graph
inputs named in ``feeds``, each in the element type the graph declares; the graph inputs in ``zeros`` (a
text's segment ids) get zeros shaped as the batch tensor they name; the ``output`` it reads is turned into logits (the log of probabilities, for a graph that ends
in a softmax), so every stage that reads a seekforge model's logits reads this one's. It is imported, not
trained: it has no parameters, and building it to train is refused.
"""

from __future__ import annotations

import threading
from typing import Annotated, Any, Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from seekforge.core.deps import require
from seekforge.core.errors import ConfigError, DataError, PackageError, first_line
from seekforge.models.config import MODELS, ModelConfig, ModelIO

#: the element types a graph input may take, as onnxruntime names them
_NUMPY_TYPES = {"tensor(float)": np.float32, "tensor(int64)": np.int64, "tensor(int32)": np.int32,
                "tensor(bool)": np.bool_, "tensor(float16)": np.float16}  # fmt: skip


@MODELS.register("onnx")
class OnnxGraphConfig(ModelConfig):
    """An imported ONNX graph: ``size`` bytes; ``feeds`` maps a batch key to the graph input it fills;
    ``zeros`` maps a graph input fed zeros to the batch key whose shape they take; ``output`` is the graph
    output read; ``scores`` says whether it holds logits or probabilities."""

    type: Literal["onnx"] = "onnx"
    size: Annotated[int, Field(ge=1)]
    feeds: Annotated[dict[str, str], Field(min_length=1)]
    zeros: dict[str, str] = {}
    output: Annotated[str, Field(min_length=1)]
    scores: Literal["logits", "probabilities", "values"] = "logits"

    def build(self, io: ModelIO, *, pretrained: bool = True) -> nn.Module:
        if pretrained:  # only a package's rebuild (pretrained=False: the bytes come from model.safetensors)
            raise ConfigError("model type 'onnx' is a model imported with seekforge import; it is not trained",
                              hint="train another model type, or import the ONNX file: seekforge import MODEL.onnx")  # fmt: skip
        return OnnxGraph(self, io)


class OnnxGraph(nn.Module):
    """The graph on onnxruntime: batch dict in, logits (or values) out; no gradients."""

    def __init__(self, config: OnnxGraphConfig, io: ModelIO) -> None:
        super().__init__()
        self.config = config
        self.output_dim = io.output_dim
        self.register_buffer("graph", torch.zeros(config.size, dtype=torch.uint8))
        self._session: Any = None
        self._types: dict[str, Any] = {}  # each graph input's numpy element type
        self._lock = threading.Lock()
        self.register_load_state_dict_post_hook(lambda module, _: setattr(module, "_session", None))

    def session(self) -> Any:
        """The onnxruntime session, made on first use with torch's thread count (as the torch backend's
        own models run), so that a bench or optimize row of this model is timed on the same threads."""
        with self._lock:
            if self._session is None:
                ort = require("onnxruntime", purpose="an imported ONNX model")
                options = ort.SessionOptions()
                options.intra_op_num_threads = torch.get_num_threads()
                try:
                    self._session = ort.InferenceSession(self.graph.cpu().numpy().tobytes(), options,
                                                         providers=["CPUExecutionProvider"])  # fmt: skip
                except Exception as exc:  # onnxruntime's own error types
                    raise PackageError(f"onnxruntime cannot load the imported graph: {first_line(exc, limit=300)}",
                                       hint="import the ONNX file again: seekforge import MODEL.onnx") from None  # fmt: skip
                self._types = {i.name: _NUMPY_TYPES.get(i.type, np.float32) for i in self._session.get_inputs()}
            return self._session

    def forward(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        rows = next(iter(batch.values())).shape[0]
        if self.graph.device.type == "meta" or rows == 0:  # sizing on the meta device; an empty batch
            return torch.empty(rows, self.output_dim, device=next(iter(batch.values())).device)
        session = self.session()
        feeds = {name: batch[key].detach().cpu().numpy().astype(self._types[name], copy=False)
                 for key, name in self.config.feeds.items()}  # fmt: skip
        feeds |= {name: np.zeros(tuple(batch[key].shape), dtype=self._types[name])
                  for name, key in self.config.zeros.items()}  # fmt: skip
        try:
            (out,) = session.run([self.config.output], feeds)
        except Exception as exc:  # a shape the graph does not take, say: said, not a raw onnxruntime trace
            raise DataError(f"the imported graph could not run on this batch: {first_line(exc, limit=300)}") from None
        scores = torch.from_numpy(np.asarray(out, dtype=np.float32))
        if scores.numel() != rows * self.output_dim:
            raise DataError(f"the imported graph's output {self.config.output!r} has shape {list(scores.shape)} for "
                            f"{rows} rows; {self.output_dim} score(s) per row are declared")  # fmt: skip
        scores = scores.reshape(rows, self.output_dim)
        if self.config.scores == "probabilities":  # log-probabilities: their softmax is the probabilities
            scores = torch.log(scores.clamp_min(1e-12))
        return scores.to(next(iter(batch.values())).device)
