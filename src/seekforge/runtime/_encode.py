"""Raw feature values -> onnxruntime feeds, with numpy only.

The package's ONNX graph holds the fitted preprocessing for numeric, binary and category features
(imputation, scaling, vocabularies); what is left to Python is turning each value into the graph's input
type: numbers into float64 (missing as NaN), categories and binary values into their canonical strings.
The full Predictor feeds such graphs through the same functions, after its own table checks.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from seekforge.core.deps import extra_command
from seekforge.core.errors import DataError

TRUE = frozenset({"1", "true", "t", "yes", "y", "1.0"})
FALSE = frozenset({"0", "false", "f", "no", "n", "0.0"})
#: What a missing category or binary value is fed as: never a key of the graph's tables.
MISSING = "\x00missing"
#: Feature types whose preprocessing the ONNX graph can hold.
GRAPH_TYPES = frozenset({"numeric", "binary", "category"})


def graph_holds(types: Iterable[str]) -> bool:
    """Whether the ONNX graph can hold the preprocessing of inputs of these feature types."""
    return all(kind in GRAPH_TYPES for kind in types)


#: pandas' missing-value markers, recognised by type name so that pandas need not be imported
_PANDAS_MISSING = frozenset({"NAType", "NaTType"})


def is_missing(value: Any) -> bool:
    """None, NaN, pandas' NA and NaT, and numpy's NaT."""
    if value is None or type(value).__name__ in _PANDAS_MISSING:
        return True
    if isinstance(value, float | np.floating):
        return math.isnan(value)
    return isinstance(value, np.datetime64) and bool(np.isnat(value))


def canonical(value: Any) -> str:
    """Canonical string of a category value: 3, 3.0 and '3' are the same category."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value)


@functools.lru_cache(maxsize=256)
def binary_table(negative: str, positive: str) -> dict[str, float]:
    """Every (lower-cased, canonical) value a binary feature accepts and its code: 0 or 1.

    ``negative`` and ``positive`` are the two values seen in training ("" when training saw only one);
    the usual spellings of true and false count too when the trained values are themselves such words.
    """
    table: dict[str, float] = {}
    if negative in FALSE | {""}:
        table.update(dict.fromkeys(FALSE, 0.0))
    if positive in TRUE | {""}:
        table.update(dict.fromkeys(TRUE, 1.0))
    table.update({k: v for k, v in ((negative, 0.0), (positive, 1.0)) if k})
    return table


def as_columns(records: Any, *, lists: Collection[str] = ()) -> dict[str, list[Any]]:
    """Columns of ``records``: a DataFrame, a list of row mappings, a mapping of columns, or one record.
    ``lists``: inputs whose one value is itself a list (sequences, pixel rows), which a mapping's other
    fields, or the look of its items, tell apart from a column.

    Raises:
        DataError: Neither shape, or a mapping that mixes columns and single values.
    """
    if hasattr(records, "columns") and hasattr(records, "to_dict"):  # a pandas DataFrame
        return {str(k): list(v) for k, v in records.to_dict(orient="list").items()}
    if isinstance(records, Mapping):
        plain = [k for k in records if k not in lists]
        columns = [k for k, v in records.items() if _is_column(v)]
        one = not [k for k in columns if k in plain] if plain else not all(map(_holds_cells, records.values()))
        if one:
            return {str(k): [v] for k, v in records.items()}  # one record
        if len(columns) < len(records):
            single = next(k for k in records if k not in columns)
            raise DataError(
                f"records mix columns (lists) and single values ('{single}'); give every field as a list, "
                "or every field as one value"
            )
        return {str(k): list(v) for k, v in records.items()}
    rows = list(records)
    if not all(isinstance(r, Mapping) for r in rows):
        raise DataError("records must be mappings of feature name to value", hint='e.g. [{"age": 41, ...}]')
    names = list(dict.fromkeys(k for r in rows for k in r))
    return {str(name): [r.get(name) for r in rows] for name in names}


def _holds_cells(value: Any) -> bool:
    """Whether a list-valued field is a column of list cells (lists, arrays, JSON lists) rather than one list."""
    return _is_column(value) and all(
        is_missing(c) or isinstance(c, list | tuple | np.ndarray) or (isinstance(c, str) and c.lstrip().startswith("["))
        for c in value
    )


def _is_column(value: Any) -> bool:
    return not isinstance(value, str | bytes) and (isinstance(value, Sequence) or hasattr(value, "tolist"))


def raw_feeds(
    schema: Sequence[Mapping[str, Any]],
    columns: Mapping[str, Sequence[Any]],
    *,
    place: Callable[[int], str] | None = None,
) -> dict[str, np.ndarray]:
    """The graph's feeds, one 1-D array per input feature, from raw columns.

    Args:
        schema: The package's input schema (``package.json`` ``inputs``): name, type, and for binary
            features the two trained values.
        columns: Raw values by column name; extra columns are ignored.
        place: Names the row at a position for error messages (default ``row <position>``).

    Raises:
        DataError: A column is missing, columns differ in length, or a value cannot be encoded (the
            message names the row and column).
    """
    missing = [f["name"] for f in schema if f["name"] not in columns]
    if missing:
        raise DataError(
            f"records lack the input column(s) {', '.join(map(repr, missing))}",
            hint=f"each record needs: {', '.join(f['name'] for f in schema)}",
        )
    lengths = {len(columns[f["name"]]) for f in schema}
    if len(lengths) > 1:
        raise DataError(f"input columns differ in length: {sorted(lengths)}")
    where = place or (lambda row: f"row {row}")
    feeds: dict[str, np.ndarray] = {}
    for feature in schema:
        name, kind, values = feature["name"], feature["type"], columns[feature["name"]]
        if kind == "numeric":
            feeds[name] = _numbers(name, values, where)
        elif kind == "category":
            feeds[name] = np.array([MISSING if is_missing(v) else canonical(v) for v in values], dtype=object)
        elif kind == "binary":
            feeds[name] = _binary(name, values, feature["values"], where)
        else:
            raise DataError(
                f"input '{name}' is a {kind} feature, whose preprocessing the ONNX graph does not hold",
                hint=f"predict with the full install: {extra_command('all')}",
            )
    return feeds


def _numbers(name: str, values: Sequence[Any], where: Callable[[int], str]) -> np.ndarray:
    """float64 values, missing as NaN; strings must spell a number, as for training data."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "fiub":
        return values.astype(np.float64)
    out = np.empty(len(values), dtype=np.float64)
    for row, value in enumerate(values):
        if is_missing(value):
            out[row] = np.nan
            continue
        try:
            if isinstance(value, str) and "_" in value:
                raise ValueError(value)
            out[row] = float(value)
            if math.isnan(out[row]):
                raise ValueError(value)
        except (TypeError, ValueError):
            raise DataError(
                f"{where(row)}: numeric column '{name}' holds {value!r}, which is not a number",
                hint="fix the value; give a missing value as null (None)",
            ) from None
    return out


def _binary(name: str, values: Sequence[Any], trained: Sequence[str], where: Callable[[int], str]) -> np.ndarray:
    table = binary_table(*trained)
    out = np.empty(len(values), dtype=object)
    for row, value in enumerate(values):
        if is_missing(value):
            out[row] = MISSING
            continue
        key = canonical(value).lower()
        if key not in table:
            raise DataError(
                f"{where(row)}: binary column '{name}' holds {value!r}; training saw only "
                f"{' and '.join(repr(v) for v in trained if v)}"
            )
        out[row] = key
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of ``[rows, classes]`` logits."""
    if logits.size <= _SMALL:  # a served request's few numbers: numpy's fixed cost per call would dominate
        rows = []
        for row in logits.tolist():
            top = max(row)
            exps = [math.exp(v - top) for v in row]
            total = math.fsum(exps)
            rows.append([v / total for v in exps])
        return np.array(rows, dtype=np.result_type(logits.dtype, np.float32)).reshape(logits.shape)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


#: Up to this many logits, softmax is computed in Python rather than numpy
_SMALL = 16


def session(path: Any, *, threads: int | None = None, optimized: Any = None, chained: bool = False) -> Any:
    """An onnxruntime CPU session for ``path``; ``optimized`` saves its optimised graph there.

    ``chained``: one of several sessions that run in turn (an early-exit model's segments). Their threads do not
    spin waiting for work after a run (each session has its own pool, and spinning pools starve the next
    session of the cores: 3.5x slower at batch 1 on 2 cores), and they keep no memory arena (each would hold
    its own peak of activations).

    Raises:
        PackageError: onnxruntime cannot load the file.
    """
    from seekforge.core.deps import require
    from seekforge.core.errors import PackageError

    ort = require("onnxruntime", purpose="the onnxruntime backend")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
    if chained:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.enable_cpu_mem_arena = False
    if optimized is not None:
        # EXTENDED, not ALL: ALL adds layout changes tied to this CPU, which a saved model must not carry
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
        options.optimized_model_filepath = str(optimized)
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime's errors derive from Exception only
        outside = "External data path" in str(exc)  # weights named outside the model's folder: refused
        raise PackageError(
            f"onnxruntime {ort.__version__} cannot load {path}: {exc}",
            hint="the file names weights outside its folder: export the package again (seekforge export)"
            if outside
            else "export again with a lower --opset, or update onnxruntime",
        ) from exc
