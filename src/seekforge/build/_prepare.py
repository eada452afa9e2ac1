"""Preparation: load and split the data, fit the preprocessor on the training split, encode every split,
and cache the result in ``<run>/prepared/`` so resumed and distributed runs skip the work."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from seekforge.build._warm import load_parent, replay_rows, warm_preprocessor
from seekforge.core.errors import ConfigError
from seekforge.core.io import atomic_dir
from seekforge.data import Preprocessor, check_table, load_splits
from seekforge.fairness import GROUP_METRICS, metric_kind
from seekforge.monitor import build_reference
from seekforge.recipe import Recipe
from seekforge.runtime import GRAPH_TYPES, canonical, is_missing, read_sequence
from seekforge.train import Tensors

SPLITS = ("train", "validation", "test")
#: Held-out rows a package carries to check exports against.
SAMPLE_ROWS = 512


@dataclass
class Prepared:
    """Everything training and evaluation need from the data."""

    preprocessor: Preprocessor
    splits: dict[str, Tensors]
    data_hash: str
    reference: dict[str, Any]
    key: str
    #: The first SAMPLE_ROWS test rows' raw input columns, when the ONNX graph can hold their preprocessing.
    raw_samples: dict[str, list[Any]] | None = None
    #: What ``data.clean`` did to the training rows, when the recipe cleans its data.
    cleaning: dict[str, Any] | None = None
    #: What ``data.balance`` did to the training rows, when the recipe balances its classes.
    balancing: dict[str, Any] | None = None
    #: The test rows' values of the recipe's ``fairness.sensitive`` columns (missing: None).
    sensitive: dict[str, list[Any]] | None = None
    #: A warm start's parent, what became of its preprocessor, and the replayed rows.
    warm: dict[str, Any] | None = None


def preparation_key(recipe: Recipe) -> str:
    """Fingerprint of the recipe parts that change the prepared data."""
    relevant = {
        "seed": recipe.seed,
        "data": recipe.data.model_dump(mode="json"),
        "features": recipe.features.model_dump(mode="json"),
        "tokenizer": {name: str(path) for name, path in recipe.model.tokenizer_paths(recipe.features).items()},
        "sensitive": _sensitive_columns(recipe),
        "warm_start": recipe.warm_start.model_dump(mode="json") if recipe.warm_start is not None else None,
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def prepare(recipe: Recipe, run_dir: Path) -> Prepared:
    """Prepare the recipe's data, reusing ``<run_dir>/prepared`` when it was made from the same inputs."""
    folder = run_dir / "prepared"
    key = preparation_key(recipe)
    cached = load_prepared(folder)
    if cached is not None and cached.key == key:
        return cached
    tokenizer = recipe.model.tokenizer_paths(recipe.features)
    parent = load_parent(recipe) if recipe.warm_start is not None else None  # checked before the data is read
    splits = load_splits(recipe.data, recipe.features, recipe.seed, keep=_sensitive_columns(recipe))
    warm = None
    if parent is None:
        preprocessor = Preprocessor(recipe.features, tokenizer_path=tokenizer).fit(splits.train)
    else:
        preprocessor, warm = warm_preprocessor(recipe, parent, splits.train)
    if recipe.fairness is not None:  # the metrics a gate can compare depend on the number of classes
        classes = getattr(preprocessor, "classes_", None)
        kind = metric_kind(recipe.task, len(classes) if classes is not None else None)
        wrong = [m for m in recipe.fairness.gated(kind) if m not in GROUP_METRICS[kind]]
        if wrong:
            raise ConfigError(
                f"fairness.metrics: {', '.join(wrong)} compare two classes; '{recipe.features.output.name}' has "
                f"{len(classes or [])}: {', '.join(map(str, classes or []))}",
                hint=f"gate on {', '.join(GROUP_METRICS[kind])}",
            )
    encoded = {}
    for name in SPLITS:
        frame = getattr(splits, name)
        inputs = preprocessor.transform(frame) if len(frame) else {}
        target = preprocessor.transform_target(frame) if len(frame) else torch.empty(0)
        encoded[name] = Tensors(inputs, target)
    if parent is not None and warm is not None:
        assert recipe.warm_start is not None
        new_rows = len(encoded["train"])
        replay = replay_rows(parent, recipe.warm_start.replay, new_rows, recipe.seed)
        if replay is not None:
            train = encoded["train"]
            encoded["train"] = Tensors({k: torch.cat([v, replay.inputs[k]]) for k, v in train.inputs.items()},
                                       torch.cat([train.target, replay.target]))  # fmt: skip
        warm.update(parent=parent.lineage(), new_rows=new_rows, replay_rows=len(replay) if replay is not None else 0)
    reference = build_reference(splits.train, preprocessor)
    raw = _raw_columns(splits.test.head(SAMPLE_ROWS), recipe) if len(splits.test) else None
    sensitive = None
    if recipe.fairness is not None:
        sensitive = {
            c: [None if is_missing(v) else canonical(v) for v in splits.test[c]] for c in _sensitive_columns(recipe)
        }
    with atomic_dir(folder, overwrite=True) as tmp:
        preprocessor.save(tmp / "preprocessor.json")
        for name, data in encoded.items():
            if len(data.target):
                data.save(tmp / f"{name}.safetensors")
        (tmp / "reference.json").write_text(json.dumps(reference), encoding="utf-8")
        if raw is not None:
            (tmp / "raw_samples.json").write_text(json.dumps(raw), encoding="utf-8")
        if sensitive is not None:
            (tmp / "sensitive.json").write_text(json.dumps(sensitive), encoding="utf-8")
        meta = {
            "key": key,
            "data_hash": splits.data_hash,
            "rows": {n: len(getattr(splits, n)) for n in SPLITS},
            "clean": splits.cleaning,
            "balance": splits.balancing,
            "warm": warm,
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return Prepared(
        preprocessor, encoded, splits.data_hash, reference, key, raw, splits.cleaning, splits.balancing, sensitive, warm
    )


def _sensitive_columns(recipe: Recipe) -> list[str]:
    return list(recipe.fairness.sensitive) if recipe.fairness is not None else []


def _raw_columns(frame: pd.DataFrame, recipe: Recipe) -> dict[str, list[Any]] | None:
    """JSON-ready raw input columns of ``frame`` (every input but images, whose files may be gone by the time
    the package is used): numbers as floats, categories and binary values as their canonical strings, texts
    and times as text, sequences as lists, missing values as null. None when no input is numeric, binary or
    category, whose preprocessing the ONNX graph could hold."""
    if not any(f.type in GRAPH_TYPES for f in recipe.features.inputs):
        return None
    checked = check_table(frame, recipe.features, with_output=False)
    columns: dict[str, list[Any]] = {}
    for feature in recipe.features.inputs:
        values = checked[feature.name]
        if feature.type == "numeric":
            columns[feature.name] = [None if np.isnan(v) else float(v) for v in values.to_numpy(dtype=np.float64)]
        elif feature.type == "sequence":
            columns[feature.name] = [_json_list(read_sequence(v, "", feature.name)) for v in values]
        elif feature.type == "datetime":
            columns[feature.name] = [_json_time(v) for v in values]
        elif feature.type == "text":
            columns[feature.name] = [None if is_missing(v) else str(v) for v in values]
        elif feature.type != "image":
            columns[feature.name] = [None if is_missing(v) else canonical(v) for v in values]
    return columns


def _json_list(items: list[Any]) -> list[Any]:
    return [None if is_missing(v) else v.item() if isinstance(v, np.generic) else v for v in items]


def _json_time(value: Any) -> Any:
    """A time as it was read, in a form :func:`seekforge.runtime.epoch_seconds` reads the same: ISO text, or
    seconds since 1970."""
    if is_missing(value):
        return None
    if isinstance(value, np.datetime64):
        value = pd.Timestamp(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return float(value) if isinstance(value, int | float | np.number) else str(value)


def load_prepared(folder: Path) -> Prepared | None:
    """The cached preparation in ``folder``, or None when there is none."""
    meta_path = folder / "meta.json"
    if not meta_path.is_file():
        return None
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    preprocessor = Preprocessor.load(folder / "preprocessor.json")
    splits = {}
    for name in SPLITS:
        path = folder / f"{name}.safetensors"
        splits[name] = Tensors.load(path) if path.is_file() else Tensors({}, torch.empty(0))
    reference = json.loads((folder / "reference.json").read_text(encoding="utf-8"))
    raw_path = folder / "raw_samples.json"
    raw = json.loads(raw_path.read_text(encoding="utf-8")) if raw_path.is_file() else None
    sensitive_path = folder / "sensitive.json"
    sensitive = json.loads(sensitive_path.read_text(encoding="utf-8")) if sensitive_path.is_file() else None
    return Prepared(preprocessor, splits, meta["data_hash"], reference, meta["key"], raw, meta.get("clean"),
                    meta.get("balance"), sensitive, meta.get("warm"))  # fmt: skip
