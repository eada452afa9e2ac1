"""The Preprocessor: feature transforms fitted on the training split only, saved in the package, and
the one code path from raw rows to tensors for training, evaluation, prediction and serving.

It follows scikit-learn's estimator contract: ``__init__`` stores the declaration, ``fit`` learns state
into attributes ending in ``_``, and using it unfitted raises :class:`NotFittedError`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from seekforge.core.batch import input_keys
from seekforge.core.errors import DataError, NotFittedError
from seekforge.data._images import ImageStats, fit_images
from seekforge.data._sequences import fit_datetime, fit_sequence
from seekforge.data._text import TextEncoder
from seekforge.data._validate import check_table, require_some, row_place
from seekforge.data.config import FeaturesConfig
from seekforge.models.config import ModelIO
from seekforge.runtime import FALSE, TRUE, InputEncoder, add_history, canonical, columns_of, datetime_columns

FORMAT_VERSION = 1


def _sort_labels(values: list[Any]) -> list[Any]:
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


class Preprocessor:
    """Turns a DataFrame of raw feature values into the batch dict a model consumes.

    Args:
        features: The recipe's feature declarations.
        tokenizer_path: A pretrained ``tokenizer.json`` for text features, or one per text feature's name
            (a mapping); a text feature without one gets a WordPiece tokenizer fitted on its training texts.

    Example:
        >>> pre = Preprocessor(recipe.features).fit(train_frame)
        >>> batch = pre.transform(frame)          # {"numeric": tensor, ...}
        >>> target = pre.transform_target(frame)  # class indices or scaled values
    """

    def __init__(
        self, features: FeaturesConfig, *, tokenizer_path: str | Path | Mapping[str, str | Path] | None = None
    ) -> None:
        self.features = features
        self.tokenizer_path = tokenizer_path

    # ------------------------------------------------------------------------------------------ fitting

    def fit(self, frame: pd.DataFrame) -> Preprocessor:
        """Learn every transform from ``frame`` (the training split, output column included)."""
        frame = check_table(frame, self.features)
        self.fitted_, self._encoder = False, None  # a fit that fails leaves it unfitted, not half-refitted
        self.numeric_: dict[str, dict[str, float]] = {}
        self.binary_: dict[str, list[str]] = {}
        self.categories_: dict[str, list[str]] = {}
        self.text_: dict[str, TextEncoder] = {}
        self.images_: dict[str, ImageStats] = {}
        self.sequences_: dict[str, dict[str, Any]] = {}
        self.datetimes_: dict[str, dict[str, Any]] = {}
        for feature in self.features.inputs:
            column = frame[feature.name]
            if feature.type == "numeric":
                self.numeric_[feature.name] = _fit_numeric(column, feature.scaler)
            elif feature.type == "binary":
                self.binary_[feature.name] = _fit_binary(column)
            elif feature.type == "category":
                self.categories_[feature.name] = _fit_category(column, feature.min_frequency, feature.max_categories)
            elif feature.type == "text":
                texts = column.fillna("").astype(str).tolist()
                require_some(any(text.strip() for text in texts), frame, feature.name, "text")
                self.text_[feature.name] = TextEncoder.fit(
                    texts,
                    max_length=feature.max_length,
                    vocab_size=feature.vocab_size,
                    lowercase=feature.lowercase,
                    pretrained=self._tokenizer_of(feature.name),
                )
            elif feature.type == "image":
                self.images_[feature.name] = fit_images(column, frame, feature.size, feature.channels)
            elif feature.type == "sequence":
                self.sequences_[feature.name] = fit_sequence(column, frame, feature)
            elif feature.type == "datetime":
                self.datetimes_[feature.name] = fit_datetime(column, frame, feature)
        target = frame[self.features.output.name]
        if self.task == "classification":
            self.classes_: list[Any] = _sort_labels(
                [v.item() if isinstance(v, np.generic) else v for v in target.unique()]
            )
            if len(self.classes_) < 2:
                raise DataError(
                    f"the output '{self.features.output.name}' has a single value in the training split "
                    f"({self.classes_[0]!r}); a classifier needs at least two classes"
                )
            if self.features.output.type == "binary" and len(self.classes_) > 2:
                raise DataError(
                    f"the output '{self.features.output.name}' is declared binary but has {len(self.classes_)} classes",
                    hint="declare it as type category",
                )
        else:
            values = target.to_numpy(dtype=float)
            self.target_mean_ = float(values.mean())
            self.target_std_ = float(values.std()) or 1.0
        self.fitted_ = True
        return self

    def _tokenizer_of(self, name: str) -> str | Path | None:
        if isinstance(self.tokenizer_path, Mapping):
            return self.tokenizer_path.get(name)
        return self.tokenizer_path

    @property
    def task(self) -> str:
        return self.features.task

    def _check_fitted(self) -> None:
        if not getattr(self, "fitted_", False):
            raise NotFittedError("this Preprocessor is not fitted yet; call fit(train_frame) first")

    # -------------------------------------------------------------------------------------- transforms

    def transform(self, frame: pd.DataFrame) -> dict[str, torch.Tensor]:
        """Encode the input columns of ``frame`` (extra columns are ignored).

        Raises:
            DataError: A declared column is missing or holds a value that cannot be encoded.
        """
        self._check_fitted()
        frame = check_table(self.with_history(frame), self.features, with_output=False)
        columns = {name: frame[name].to_numpy() for name in self.encoder.columns}
        feeds = self.encoder.feeds(columns, place=functools.partial(row_place, frame))
        return {key: torch.from_numpy(values) for key, values in feeds.items()}

    def with_history(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (not modified) with each derived input it lacks computed from its own rows: the entity's
        earlier rows must be among them (see :func:`seekforge.runtime.add_history`).

        Raises:
            DataError: A column it is computed from is missing too, or holds a value it cannot use.
        """
        if self.features.history is None:  # the common case, on every transform: nothing to derive
            return frame
        schema = [e for e in self.input_schema() if "history" in e and e["name"] not in frame.columns]
        if not schema:
            return frame
        sources = {c for e in schema for c in columns_of(e["history"])}
        columns = {str(c): frame[c].tolist() for c in frame.columns if c in sources}
        derived = add_history(columns, schema, place=functools.partial(row_place, frame))
        out = frame.copy()
        for entry in schema:
            out[entry["name"]] = derived[entry["name"]]
        return out

    @property
    def encoder(self) -> InputEncoder:
        """The fitted transforms as the runtime's numpy encoder (the one code path, with or without torch)."""
        self._check_fitted()
        if getattr(self, "_encoder", None) is None:
            self._encoder = InputEncoder(self.to_dict(text=False), tokens=self.text_)
        return self._encoder

    def transform_target(self, frame: pd.DataFrame) -> torch.Tensor:
        """Encode the output column: class indices (int64) or standardised values (float32)."""
        self._check_fitted()
        name = self.features.output.name
        if name not in frame.columns:
            raise DataError(f"{frame.attrs.get('source', 'data')}: the output column '{name}' is missing")
        target = frame[name]
        if self.task == "regression":
            values = pd.to_numeric(target, errors="coerce").to_numpy(dtype=np.float64)
            return torch.from_numpy(((values - self.target_mean_) / self.target_std_).astype(np.float32))
        index = {canonical(c): i for i, c in enumerate(self.classes_)}
        codes = []
        for pos, value in enumerate(target):
            code = index.get(canonical(value))
            if code is None:
                raise DataError(
                    f"{row_place(frame, pos)}: label {value!r} of '{name}' was never seen in training; "
                    f"known: {', '.join(map(repr, self.classes_))}",
                    hint="remove those rows or retrain with them",
                )
            codes.append(code)
        return torch.tensor(codes, dtype=torch.int64)

    def decode_target(self, values: torch.Tensor) -> np.ndarray:
        """Standardised regression values (targets or outputs) back in the output's own units."""
        self._check_fitted()
        return values.detach().float().reshape(-1).numpy().astype(np.float64) * self.target_std_ + self.target_mean_

    def decode(self, logits: torch.Tensor) -> tuple[list[Any], np.ndarray | None]:
        """Model outputs -> (predictions in the label's own values, class probabilities or None)."""
        self._check_fitted()
        logits = logits.detach().float()
        if self.task == "regression":
            return self.decode_target(logits).tolist(), None
        proba = torch.softmax(logits, dim=1).numpy()
        return [self.classes_[i] for i in proba.argmax(axis=1)], proba

    # ----------------------------------------------------------------------------------- introspection

    def model_io(self) -> ModelIO:
        """What the fitted transforms feed a model."""
        self._check_fitted()
        text = next(iter(self.text_.values()), None)
        image = next(iter(self.images_.values()), None)
        inputs: list[dict[str, Any]] = []
        keys = input_keys((f.name, f.type) for f in self.features.inputs)
        for feature in self.features.inputs:
            if feature.type == "text":
                ids_key, mask_key = keys[feature.name]
                encoder = self.text_[feature.name]
                inputs.append({"name": feature.name, "type": "text", "ids": ids_key, "mask": mask_key,
                               "vocab_size": encoder.vocab_size, "max_length": encoder.max_length})  # fmt: skip
            elif feature.type == "image":
                shape = list(self.images_[feature.name].shape)
                inputs.append({"name": feature.name, "type": "image", "key": keys[feature.name][0], "shape": shape})
            elif feature.type == "sequence":
                spec = self.sequences_[feature.name]
                items_key, mask_key = keys[feature.name]
                inputs.append({"name": feature.name, "type": "sequence", "kind": spec["kind"], "items": items_key,
                               "mask": mask_key, "vocab_size": len(spec.get("vocab", ())) + 2,
                               "max_length": spec["max_length"]})  # fmt: skip
        return ModelIO(
            output_dim=1 if self.task == "regression" else len(self.classes_),
            numeric_dim=len(self.numeric_columns()),
            category_cardinalities=tuple(len(v) + 1 for v in self.categories_.values()),
            image_shape=image.shape if image else None,
            vocab_size=text.vocab_size if text else None,
            max_length=text.max_length if text else None,
            inputs=tuple(inputs),
        )

    def numeric_columns(self) -> list[str]:
        """The names of the ``numeric`` tensor's columns: numeric features, binary ones, then each datetime
        input's calendar parts (``signup.month_sin``, ...)."""
        self._check_fitted()
        parts = [column for name, spec in self.datetimes_.items() for column in datetime_columns(name, spec["parts"])]
        return [*self.numeric_, *self.binary_, *parts]

    def input_schema(self) -> list[dict[str, Any]]:
        """Names, types and allowed values of the inputs, for package.json and request validation."""
        self._check_fitted()
        schema = []
        for feature in self.features.inputs:
            entry: dict[str, Any] = {"name": feature.name, "type": feature.type}
            if feature.type == "category":
                entry["values"] = self.categories_[feature.name]
            elif feature.type == "binary":
                entry["values"] = self.binary_[feature.name]
            elif feature.type == "image":
                entry["shape"] = list(self.images_[feature.name].shape)
            elif feature.type == "sequence":
                entry["values"] = self.sequences_[feature.name]["kind"]
                entry["max_length"] = self.sequences_[feature.name]["max_length"]
            elif getattr(feature, "history", None) is not None and self.features.history is not None:
                entry["history"] = {**self.features.history.model_dump(), **feature.history.spec()}  # type: ignore[union-attr]
            schema.append(entry)
        return schema

    def output_schema(self) -> dict[str, Any]:
        self._check_fitted()
        out: dict[str, Any] = {"name": self.features.output.name, "type": self.features.output.type}
        if self.task == "classification":
            out["classes"] = self.classes_
        return out

    # ---------------------------------------------------------------------------------- serialisation

    def to_dict(self, *, text: bool = True) -> dict[str, Any]:
        """The fitted state as JSON values (``text=False``: without the tokenizers, for the encoder)."""
        self._check_fitted()
        state: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "features": self.features.model_dump(mode="json"),
            "numeric": self.numeric_,
            "binary": self.binary_,
            "categories": self.categories_,
            "text": {k: v.to_dict() for k, v in self.text_.items()} if text else {k: {} for k in self.text_},
            "images": {k: v.to_dict() for k, v in self.images_.items()},
            "sequences": self.sequences_,
            "datetimes": self.datetimes_,
        }
        if self.task == "classification":
            state["classes"] = self.classes_
        else:
            state["target"] = {"mean": self.target_mean_, "std": self.target_std_}
        return state

    @classmethod
    def from_dict(cls, state: dict[str, Any]) -> Preprocessor:
        if state.get("format_version") != FORMAT_VERSION:
            raise DataError(
                f"preprocessor format {state.get('format_version')!r} is not supported "
                f"(this seekforge reads {FORMAT_VERSION})",
                hint="re-create the package with this seekforge version",
            )
        pre = cls(FeaturesConfig.model_validate(state["features"]))
        pre.numeric_ = state["numeric"]
        pre.binary_ = state["binary"]
        pre.categories_ = state["categories"]
        pre.text_ = {k: TextEncoder.from_dict(v) for k, v in state["text"].items()}
        pre.images_ = {k: ImageStats.from_dict(v) for k, v in state["images"].items()}
        pre.sequences_ = state.get("sequences", {})
        pre.datetimes_ = state.get("datetimes", {})
        if "classes" in state:
            pre.classes_ = state["classes"]
        else:
            pre.target_mean_, pre.target_std_ = state["target"]["mean"], state["target"]["std"]
        pre.fitted_ = True
        return pre

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_dict()), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> Preprocessor:
        return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))


def _fit_numeric(column: pd.Series, scaler: str) -> dict[str, float]:
    values = column.to_numpy(dtype=np.float64)
    present = values[~np.isnan(values)]
    if present.size == 0:
        raise DataError(f"numeric column '{column.name}' has no values in the training split")
    fill = float(np.median(present))
    if scaler == "standard":
        center, scale = float(present.mean()), float(present.std())
    elif scaler == "minmax":
        center, scale = float(present.min()), float(present.max() - present.min())
    else:
        center, scale = 0.0, 1.0
    return {"fill": fill, "center": center, "scale": scale if scale > 0 else 1.0}


def _fit_binary(column: pd.Series) -> list[str]:
    keys = sorted({canonical(v).lower() for v in column.dropna()})
    if len(keys) == 2 and keys[0] in FALSE | TRUE and keys[1] in FALSE | TRUE:
        keys.sort(key=lambda k: k in TRUE)
    if len(keys) == 1:  # a constant column still knows which side it is on
        keys = ["", keys[0]] if keys[0] in TRUE else [keys[0], ""]
    return keys


def _fit_category(column: pd.Series, min_frequency: int, max_categories: int | None) -> list[str]:
    return categories_of(column.dropna().map(canonical).value_counts(), min_frequency, max_categories)


def categories_of(counts: pd.Series, min_frequency: int, max_categories: int | None) -> list[str]:
    """The vocabulary of a category column from its values' counts (canonical value -> rows)."""
    counts = counts[counts >= min_frequency]
    # most frequent first, ties by value, so the vocabulary does not depend on row order
    ordered = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    if max_categories is not None:
        ordered = ordered[:max_categories]
    return [k for k, _ in ordered]
