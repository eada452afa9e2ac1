"""The fp32 ONNX graph of an imported model (model type ``onnx``): its own graph, with its input named as
the batch key the preprocessor fills and its output as ``logits`` (the log of probabilities for a graph
that gives probabilities, one column for a regressor), so the exports of every other package apply:
the raw-input preprocessing prepended, reduced precisions, the parity gate."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seekforge.core.deps import require
from seekforge.models import OnnxGraph


def imported_graph(model: OnnxGraph, path: Path) -> None:
    """Write ``model``'s graph to ``path`` as seekforge's exports name their inputs and outputs."""
    onnx = require("onnx", purpose="ONNX export")
    helper = onnx.helper
    graph_model = onnx.load_from_string(model.graph.cpu().numpy().tobytes())
    graph = graph_model.graph
    # inputs as the batch keys; the output read under a name of its own ("logits" is what comes out last)
    renames = {name: key for key, name in model.config.feeds.items()}
    renames[model.config.output] = source = "seekforge_output"
    for value in graph.input:
        value.name = renames.get(value.name, value.name)
    for node in graph.node:
        node.input[:] = [renames.get(name, name) for name in node.input]
        node.output[:] = [renames.get(name, name) for name in node.output]
    last = []
    if model.config.scores == "probabilities":
        floor = onnx.numpy_helper.from_array(np.array(1e-12, dtype=np.float32), name="seekforge_floor")
        graph.initializer.append(floor)
        last += [helper.make_node("Max", [source, "seekforge_floor"], ["seekforge_clipped"]),
                 helper.make_node("Log", ["seekforge_clipped"], ["seekforge_scores"])]  # fmt: skip
        source = "seekforge_scores"
    shape = onnx.numpy_helper.from_array(np.array([-1, model.output_dim], dtype=np.int64), name="seekforge_shape")
    graph.initializer.append(shape)
    last.append(helper.make_node("Reshape", [source, "seekforge_shape"], ["logits"]))
    graph.node.extend(last)
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["batch", model.output_dim]))
    onnx.save(graph_model, str(path))
