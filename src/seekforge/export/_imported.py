"""The fp32 ONNX graph of an imported model (model type ``onnx``): its own graph, unchanged inside, with a
new input named as each batch key the preprocessor fills (``Identity`` into the graph's own input, or
``Cast`` where the graph takes another element type, say int32 token ids), zeros made from the token ids'
shape for a text graph's segment ids, and a new output ``logits`` after the chosen output (the log of probabilities for a graph that gives probabilities;
one column for a regressor), so the exports of every other package apply: the raw-input preprocessing
prepended, reduced precisions, the parity gate. A graph older than opset 13 is converted to it first (the
preprocessing's operators need it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from seekforge.core.deps import require
from seekforge.export._onnx import ExportError
from seekforge.export._pregraph import _rename_uses
from seekforge.models import OnnxGraph

#: the opset the prepended preprocessing needs (Unsqueeze's axes as an input)
MIN_OPSET = 13
#: the element type of each kind of batch tensor the preprocessor makes (the others are float32)
_BATCH_TYPES = {"input_ids": 7, "attention_mask": 7, "sequence": 7, "sequence_mask": 7}  # TensorProto.INT64


def imported_graph(model: OnnxGraph, path: Path) -> int:
    """Write ``model``'s graph to ``path`` as seekforge's exports name their inputs and outputs; returns
    its opset.

    Raises:
        ExportError: A tensor of the graph already has a name this needs, or its opset cannot be raised.
    """
    onnx = require("onnx", purpose="ONNX export")
    helper, numpy_helper = onnx.helper, onnx.numpy_helper
    graph_model = onnx.load_from_string(model.graph.cpu().numpy().tobytes())
    opset = next((i.version for i in graph_model.opset_import if i.domain in ("", "ai.onnx")), MIN_OPSET)
    if opset < MIN_OPSET:
        try:
            graph_model = onnx.version_converter.convert_version(graph_model, MIN_OPSET)
        except Exception as exc:  # the converter's own errors
            raise ExportError(f"the imported graph's opset {opset} cannot be raised to {MIN_OPSET}: {exc}") from exc
        opset = MIN_OPSET
    graph = graph_model.graph
    initialisers = {i.name for i in graph.initializer}
    kept_inputs = [v for v in graph.input if v.name not in initialisers]  # old files list weights as inputs too
    del graph.input[:]
    graph.input.extend(kept_inputs)
    taken = {v.name for v in graph.input} | initialisers | {o for n in graph.node for o in n.output}
    own = {v.name: v for v in graph.input}
    kinds = {key: _BATCH_TYPES.get(key.split(".", 1)[0], onnx.TensorProto.FLOAT) for key in model.config.feeds}
    changed = {key: name for key, name in model.config.feeds.items()
               if key != name or own[name].type.tensor_type.elem_type != kinds[key]}  # fmt: skip
    wanted = {k for k, n in changed.items() if k != n} | ({"logits"} if model.config.output != "logits" else set())
    clash = sorted(wanted & taken)
    if clash:
        raise ExportError(f"the imported graph already names a tensor {', '.join(map(repr, clash))}, which its export "
                          "needs for its own input or output", hint="rename that tensor in the ONNX file")  # fmt: skip
    nodes = []
    for key, name in changed.items():  # a new input under the batch key, passed on to the graph's own
        value = own[name]
        inner = name if key != name else f"seekforge_{name}"
        _rename_uses(graph, {name: inner})
        graph_type = value.type.tensor_type.elem_type
        nodes.append(helper.make_node("Identity", [key], [inner]) if graph_type == kinds[key]
                     else helper.make_node("Cast", [key], [inner], to=graph_type))  # fmt: skip
        fresh = onnx.ValueInfoProto()
        fresh.CopyFrom(value)
        fresh.name = key
        fresh.type.tensor_type.elem_type = kinds[key]
        graph.input.remove(value)
        graph.input.append(fresh)
    for name, key in model.config.zeros.items():  # segment ids: zeros of the token ids' shape, in the graph's type
        value = own[name]
        zero = np.zeros(1, dtype=onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type))
        nodes += [helper.make_node("Shape", [key], [f"seekforge_{name}_shape"]),
                  helper.make_node("ConstantOfShape", [f"seekforge_{name}_shape"], [name],
                                   value=numpy_helper.from_array(zero))]  # fmt: skip
        graph.input.remove(value)
    source = model.config.output
    if source == "logits":  # the name the new output takes: the chosen tensor's producer renamed
        source = "seekforge_output"
        for node in graph.node:
            node.output[:] = [source if name == "logits" else name for name in node.output]
        _rename_uses(graph, {"logits": source})
    tail = []
    if model.config.scores == "probabilities":
        graph.initializer.append(numpy_helper.from_array(np.array(1e-12, dtype=np.float32), name="seekforge_floor"))
        tail += [helper.make_node("Max", [source, "seekforge_floor"], ["seekforge_clipped"]),
                 helper.make_node("Log", ["seekforge_clipped"], ["seekforge_scores"])]  # fmt: skip
        source = "seekforge_scores"
    shape = np.array([-1, model.output_dim], dtype=np.int64)
    graph.initializer.append(numpy_helper.from_array(shape, name="seekforge_shape"))
    tail.append(helper.make_node("Reshape", [source, "seekforge_shape"], ["logits"]))
    kept = list(graph.node)
    del graph.node[:]
    graph.node.extend([*nodes, *kept, *tail])
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["batch", model.output_dim]))
    del graph.value_info[:]  # intermediate types are inferred again where needed
    onnx.save(graph_model, str(path))
    return opset
