"""Preparation: load and split the data, fit the preprocessor on the training split, encode every split,
and cache the result in ``<run>/prepared/`` so resumed and distributed runs skip the work."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from seekforge.core.io import atomic_dir
from seekforge.data import Preprocessor, load_splits
from seekforge.monitor import build_reference
from seekforge.recipe import Recipe
from seekforge.train import Tensors

SPLITS = ("train", "validation", "test")


@dataclass
class Prepared:
    """Everything training and evaluation need from the data."""

    preprocessor: Preprocessor
    splits: dict[str, Tensors]
    data_hash: str
    reference: dict[str, Any]
    key: str


def preparation_key(recipe: Recipe) -> str:
    """Fingerprint of the recipe parts that change the prepared data."""
    relevant = {
        "seed": recipe.seed,
        "data": recipe.data.model_dump(mode="json"),
        "features": recipe.features.model_dump(mode="json"),
        "tokenizer": str(getattr(recipe.model, "pretrained", None)),
    }
    return hashlib.sha256(json.dumps(relevant, sort_keys=True).encode()).hexdigest()


def prepare(recipe: Recipe, run_dir: Path) -> Prepared:
    """Prepare the recipe's data, reusing ``<run_dir>/prepared`` when it was made from the same inputs."""
    folder = run_dir / "prepared"
    key = preparation_key(recipe)
    cached = load_prepared(folder)
    if cached is not None and cached.key == key:
        return cached
    tokenizer = getattr(recipe.model, "tokenizer_path", lambda: None)()
    splits = load_splits(recipe.data, recipe.features, recipe.seed)
    preprocessor = Preprocessor(recipe.features, tokenizer_path=tokenizer).fit(splits.train)
    encoded = {}
    for name in SPLITS:
        frame = getattr(splits, name)
        inputs = preprocessor.transform(frame) if len(frame) else {}
        target = preprocessor.transform_target(frame) if len(frame) else torch.empty(0)
        encoded[name] = Tensors(inputs, target)
    reference = build_reference(splits.train, preprocessor)
    with atomic_dir(folder, overwrite=True) as tmp:
        preprocessor.save(tmp / "preprocessor.json")
        for name, data in encoded.items():
            if len(data.target):
                data.save(tmp / f"{name}.safetensors")
        (tmp / "reference.json").write_text(json.dumps(reference), encoding="utf-8")
        meta = {
            "key": key,
            "data_hash": splits.data_hash,
            "rows": {n: len(getattr(splits, n)) for n in SPLITS},
        }
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return Prepared(preprocessor, encoded, splits.data_hash, reference, key)


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
    return Prepared(preprocessor, splits, meta["data_hash"], reference, meta["key"])
