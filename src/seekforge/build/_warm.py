"""Warm starts: a run that continues a package on new rows, with the parent's preprocessor kept, grown
(new categories) or refitted, a replay sample of the parent's own training rows, and the parent's weights
as the starting point."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import torch
from torch import nn

from seekforge.core.errors import ConfigError
from seekforge.core.io import sha256_file
from seekforge.core.package import read_manifest, read_package_json
from seekforge.core.variants import model_version
from seekforge.data import Preprocessor
from seekforge.models import ModelConfig, ModelIO, load_tensors
from seekforge.recipe import Recipe
from seekforge.runtime import canonical
from seekforge.train import Tensors


@dataclass
class Parent:
    """The package a run starts from."""

    path: Path
    manifest: dict[str, Any]
    preprocessor: Preprocessor
    io: ModelIO

    @functools.cached_property
    def weights(self) -> dict[str, torch.Tensor]:
        """The parent's tensors, read once for both the embedding widths and the starting weights."""
        return load_tensors(self.path / "model.safetensors")

    def lineage(self) -> dict[str, Any]:
        """The lineage fields naming the parent, as a compressed package names its own."""
        return {
            "parent": str(self.path),
            "parent_sha256": sha256_file(self.path / "package.json"),
            "parent_version": model_version(self.manifest),
        }


def load_parent(recipe: Recipe) -> Parent:
    """The recipe's ``warm_start.package``, checked against the recipe: the same inputs (names and types),
    output and model type.

    Raises:
        PackageError: Not a package, or a file was modified.
        ConfigError: The recipe's inputs, output or model differ from the parent's (each difference named).
    """
    assert recipe.warm_start is not None
    path = Path(recipe.warm_start.package)
    manifest = read_manifest(path)
    ours = {f.name: f.type for f in recipe.features.inputs}
    theirs = {f["name"]: f["type"] for f in manifest["inputs"]}
    problems = [f"'{n}' is an input here, not of the parent" for n in ours if n not in theirs]
    problems += [f"the parent's input '{n}' is missing here" for n in theirs if n not in ours]
    problems += [
        f"'{n}' is {ours[n]} here, {theirs[n]} in the parent" for n in ours if n in theirs and ours[n] != theirs[n]
    ]
    output = recipe.features.output
    if (output.name, output.type) != (manifest["output"]["name"], manifest["output"]["type"]):
        problems.append(f"the output is '{output.name}' ({output.type}) here, '{manifest['output']['name']}' "
                        f"({manifest['output']['type']}) in the parent")  # fmt: skip
    model_json = read_package_json(path, "model.json")
    if model_json["config"]["type"] != recipe.model.type:
        problems.append(f"the model is {recipe.model.type} here, {model_json['config']['type']} in the parent")
    if problems:
        raise ConfigError(
            f"warm_start.package {path} does not fit this recipe: {'; '.join(problems)}",
            hint="continue a package with its own recipe (its recipe.yaml), changing data.source",
        )
    preprocessor = Preprocessor.from_dict(read_package_json(path, "preprocessor.json"))
    return Parent(path, manifest, preprocessor, ModelIO.from_dict(model_json["io"]))


def warm_preprocessor(recipe: Recipe, parent: Parent, train: pd.DataFrame) -> tuple[Preprocessor, dict[str, Any]]:
    """The run's preprocessor (see ``WarmStartConfig.preprocessor``) and what changed from the parent's.

    Raises:
        ConfigError: ``refit`` changed a vocabulary's size or the classes, which the parent's weights
            cannot take (the columns named, with the option that can).
    """
    assert recipe.warm_start is not None
    mode = recipe.warm_start.preprocessor
    if mode == "refit":
        fitted = Preprocessor(recipe.features, tokenizer_path=recipe.model.tokenizer_paths(recipe.features))
        fitted.fit(train)
        changed = [f"'{n}' has {len(v)} categories, the parent {len(parent.preprocessor.categories_[n])}"
                   for n, v in fitted.categories_.items() if len(v) != len(parent.preprocessor.categories_[n])]  # fmt: skip
        if getattr(fitted, "classes_", None) != getattr(parent.preprocessor, "classes_", None):
            changed.append(f"the classes are {fitted.classes_}, the parent's {parent.preprocessor.classes_}")
        if changed:
            raise ConfigError(
                f"warm_start.preprocessor refit: the parent's weights do not fit the refitted preprocessor: "
                f"{'; '.join(changed)}",
                hint="use preprocessor: grow (new categories get new embedding rows) or keep",
            )
        return fitted, {"preprocessor": "refit"}
    pre = Preprocessor.from_dict(parent.preprocessor.to_dict())
    grown: dict[str, list[str]] = {}
    if mode == "grow":
        features = {f.name: f for f in recipe.features.inputs}
        for name, vocab in pre.categories_.items():
            counts = train[name].dropna().map(canonical).value_counts()
            minimum = getattr(features[name], "min_frequency", 1)
            new = sorted((v for v, c in counts.items() if c >= minimum and v not in set(vocab)),
                         key=lambda v: (-counts[v], v))  # fmt: skip
            cap = getattr(features[name], "max_categories", None)
            if cap is not None:
                new = new[: max(cap - len(vocab), 0)]
            if new:
                pre.categories_[name] = [*vocab, *new]  # old codes keep their rows: the replay stays valid
                grown[name] = new
    return pre, {"preprocessor": mode, "grown": grown}


def replay_rows(parent: Parent, share: float, new_rows: int, seed: int) -> Tensors | None:
    """Rows of the parent's training sample (``calibration.safetensors``) making ``share`` of the
    training rows beside ``new_rows`` new ones (as many as it holds, at most)."""
    if share <= 0:
        return None
    sample = Tensors.load(parent.path / "calibration.safetensors")
    wanted = min(len(sample), round(share / (1 - share) * new_rows))
    order = torch.randperm(len(sample), generator=torch.Generator().manual_seed(seed))[:wanted].sort().values
    return Tensors({k: v[order] for k, v in sample.inputs.items()}, sample.target[order])


def widths_io(io: ModelIO, parent: Parent) -> ModelIO:
    """``io`` keeping the parent's embedding widths (its weights' shapes) where its vocabularies grew."""
    if not io.category_cardinalities:
        return io
    state = parent.weights
    widths = [int(state[f"embeddings.{i}.weight"].shape[1]) for i in range(len(io.category_cardinalities))
              if f"embeddings.{i}.weight" in state]  # fmt: skip
    if len(widths) != len(io.category_cardinalities):
        return io
    return ModelIO.from_dict({**io.to_dict(), "extra": {**io.extra, "embedding_dims": widths}})


def start_from_parent(model: nn.Module, parent: Parent, config: ModelConfig) -> None:
    """Load the parent's weights into ``model``; a grown embedding keeps its old rows and starts its new
    ones at their mean.

    Raises:
        ConfigError: A parameter the parent lacks, or whose shape differs otherwise (the model section
            differs from the parent's).
    """
    state = parent.weights
    ours = config.stored_state(model)
    wrong = [f"{k} {list(v.shape)} (parent: {list(state[k].shape) if k in state else 'none'})"
             for k, v in ours.items() if k not in state or (v.shape != state[k].shape and not _grown(k, v, state[k]))]  # fmt: skip
    if wrong:
        raise ConfigError(
            f"the parent's weights do not fit this model: {'; '.join(wrong[:4])}",
            hint="keep the parent's model section (its recipe.yaml) when continuing it",
        )
    with torch.no_grad():
        for key, value in ours.items():
            old = state[key]
            if value.shape == old.shape:
                value.copy_(old)
            else:
                value[: old.shape[0]] = old
                value[old.shape[0] :] = old.mean(dim=0)
    model.load_state_dict(ours, strict=False)


def _grown(key: str, new: torch.Tensor, old: torch.Tensor) -> bool:
    """An embedding table with rows added for new categories."""
    return "embeddings." in key and new.dim() == 2 and new.shape[1] == old.shape[1] and new.shape[0] > old.shape[0]
