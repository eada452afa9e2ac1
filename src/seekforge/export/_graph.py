"""What onnxruntime's graph optimiser does to a graph: the operators before and after (fused kernels such
as FusedConv, Gelu, LayerNormalization or Attention appear; the nodes they replace go), as a package's
optimised export records it and as ``seekforge import`` reports it for a model made elsewhere."""

from __future__ import annotations

import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from seekforge.core.deps import require


def operator_counts(model: Any) -> dict[str, int]:
    """Each operator of an ONNX ``ModelProto`` (or file) and how many nodes use it; operators outside the
    standard domain are named with theirs (``com.microsoft.FusedConv``)."""
    if isinstance(model, str | Path):
        model = require("onnx", purpose="Reading an ONNX graph").load(str(model), load_external_data=False)
    names = (n.op_type if n.domain in ("", "ai.onnx") else f"{n.domain}.{n.op_type}" for n in model.graph.node)
    return dict(sorted(Counter(names).items()))


def graph_changes(before: Path, after: Path) -> dict[str, Any]:
    """How ``after`` (an optimised graph) differs from ``before``: node counts, and the operators it gained
    (the fusions that fired) and lost, with their counts."""
    old, new = Counter(operator_counts(before)), Counter(operator_counts(after))
    return {
        "nodes": [sum(old.values()), sum(new.values())],
        "added": dict(sorted((new - old).items())),
        "removed": dict(sorted((old - new).items())),
    }


def fusions_of(path: Path) -> dict[str, Any]:
    """:func:`graph_changes` of onnxruntime's full optimisation of ``path`` (the file is only read)."""
    from seekforge.runtime import session

    with tempfile.TemporaryDirectory(prefix="seekforge-fusions-") as tmp:
        optimized = Path(tmp) / "optimized.onnx"
        session(path, optimized=optimized)
        return graph_changes(path, optimized)
