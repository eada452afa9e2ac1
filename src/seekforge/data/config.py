"""Configuration of the data section and of feature declarations."""

from __future__ import annotations

import codecs
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from seekforge.core.config import BaseConfig
from seekforge.data.clean_config import BalanceConfig, CleanConfig

Fraction = Annotated[float, Field(ge=0.0, lt=1.0)]


class SplitConfig(BaseConfig):
    """Fractions of the source used for each split; the test fraction is ignored when ``data.test`` is set.

    ``order`` names a column of times (ISO 8601, dates, seconds since 1970): the earliest rows train, the
    next validate and the latest test, with no shuffling or stratification, as a model meets the future.
    """

    train: Annotated[float, Field(gt=0.0, le=1.0)] = 0.8
    validation: Fraction = 0.1
    test: Fraction = 0.1
    stratify: bool = True
    order: Annotated[str, Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _sum_to_one(self) -> SplitConfig:
        total = self.train + self.validation + self.test
        if abs(total - 1.0) > 1e-6:
            raise ValueError(
                f"train + validation + test must equal 1, got {self.train} + {self.validation} + "
                f"{self.test} = {total:g}"
            )
        return self


class ReadConfig(BaseConfig):
    """How to read delimited text files."""

    delimiter: Annotated[str, Field(min_length=1, max_length=1)] | None = None
    encoding: str = "utf-8"

    @field_validator("encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        try:
            codecs.lookup(value)
        except LookupError:
            raise ValueError(f"unknown text encoding '{value}' (e.g. utf-8, latin-1, cp1252)") from None
        return value


class DataConfig(BaseConfig):
    """Where the data comes from and how it is split.

    ``source`` is a file (``.csv``, ``.tsv``, ``.parquet``, ``.jsonl``), an image folder laid out as
    ``class_name/*.png``, or ``builtin:NAME`` (see ``seekforge datasets list``). Relative paths are
    resolved against the recipe file's folder.

    ``clean`` (the steps of ``seekforge data clean``) cleans the training split before training: rows
    whose cells do not parse are set aside from every split, and the other steps touch the training rows
    only, so the validation and test rows stay as they are. Declared features are never dropped.

    ``balance`` (the methods of ``seekforge data balance``) evens out the classes of the training split,
    after cleaning; ``class_weights`` weights the training loss instead of changing rows.
    """

    source: Annotated[str, Field(min_length=1)]
    test: str | None = None
    split: SplitConfig = SplitConfig()
    read: ReadConfig = ReadConfig()
    clean: CleanConfig | None = None
    balance: BalanceConfig | None = None

    @model_validator(mode="after")
    def _has_a_test_set(self) -> DataConfig:
        if self.test is None and self.split.test == 0:
            raise ValueError("there is no test set: set data.split.test above 0, or data.test to a test source")
        if self.clean is not None and self.clean.privacy is not None:
            raise ValueError(
                "clean.privacy cleans a data file, not a run's training rows (the rows served later would not "
                "be cleaned the same way): run seekforge data clean FILE with clean.privacy in its "
                "data_quality.yaml, and train on the cleaned file"
            )
        return self


class _Feature(BaseConfig):
    name: Annotated[str, Field(min_length=1)]


class History(BaseConfig):
    """How a numeric input is derived from its entity's earlier rows (``features.history`` names the entity
    and time columns): exactly one of ``lag`` (the value ``of`` a column k rows back), ``window`` (a
    statistic of the last w rows' values ``of`` a column), ``count`` (how many earlier rows) and ``gap``
    (days since the previous row)."""

    of: Annotated[str, Field(min_length=1)] | None = None
    lag: Annotated[int, Field(ge=1, le=1000)] | None = None
    window: Annotated[int, Field(ge=2, le=1000)] | None = None
    stat: Literal["mean", "sum", "min", "max", "std", "count"] | None = None  # a window's; mean when not given
    count: bool = False
    gap: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> History:
        kinds = [k for k in ("lag", "window", "count", "gap") if getattr(self, k)]
        if len(kinds) != 1:
            raise ValueError(f"give exactly one of lag, window, count: true and gap: true, got {kinds or 'none'}")
        if (self.of is None) == bool(self.lag or self.window):
            raise ValueError(
                f"{kinds[0]} {'needs' if self.of is None else 'takes no'} 'of' (the column to look back on)"
            )
        if self.stat is not None and not self.window:
            raise ValueError("stat is for a window")
        return self

    def spec(self) -> dict[str, Any]:
        """What the derivation needs, as package.json records it: ``{"lag": 1, "of": "amount"}``, ..."""
        kind = next(k for k in ("lag", "window", "count", "gap") if getattr(self, k))
        spec: dict[str, Any] = {kind: getattr(self, kind)}
        if self.of is not None:
            spec["of"] = self.of
        if self.window:
            spec["stat"] = self.stat or "mean"
        return spec


class NumericFeature(_Feature):
    """A number; missing values are imputed with the training median, then scaled. With ``history``, a
    number derived from the same entity's earlier rows (see :class:`History`)."""

    type: Literal["numeric"] = "numeric"
    scaler: Literal["standard", "minmax", "none"] = "standard"
    history: History | None = None


class CategoryFeature(_Feature):
    """A categorical value; values seen fewer than ``min_frequency`` times go to the unknown bucket."""

    type: Literal["category"] = "category"
    min_frequency: Annotated[int, Field(ge=1)] = 1
    max_categories: Annotated[int, Field(ge=1)] | None = None


class BinaryFeature(_Feature):
    """A two-valued column: booleans, 0/1, yes/no, true/false, or any two distinct values."""

    type: Literal["binary"] = "binary"


class TextFeature(_Feature):
    """Free text, tokenized by a tokenizer fitted on the training split or the pretrained model's own.

    ``missing``: a row without text reads as the empty text (``empty``), or is refused with its line
    (``error``: every row must have its text, as a fine-tuning corpus must).
    """

    type: Literal["text"] = "text"
    max_length: Annotated[int, Field(ge=4, le=4096)] = 128
    vocab_size: Annotated[int, Field(ge=100)] = 8000
    lowercase: bool = True
    missing: Literal["empty", "error"] = "empty"


class ImageFeature(_Feature):
    """An image: a file path (PNG, JPEG, ...) or an array; resized, scaled to [0, 1], normalised."""

    type: Literal["image"] = "image"
    size: tuple[Annotated[int, Field(ge=1)], Annotated[int, Field(ge=1)]] | None = None
    channels: Literal[1, 3] | None = None


DatetimePart = Literal["elapsed", "year", "month", "day_of_week", "day_of_month", "hour", "minute", "weekend"]


class DatetimeFeature(_Feature):
    """A point in time: ISO 8601 text (``2024-05-01T13:45:00Z``), a date or datetime, or seconds since 1970.
    A time without a zone is read as UTC. The model sees the ``parts`` of it: ``elapsed`` (days since
    1970) and ``year`` standardised with the training values; ``month``, ``day_of_week``, ``day_of_month``,
    ``hour`` (with its minutes) and ``minute`` as a point on a circle (sine and cosine, so December sits
    beside January); ``weekend`` as 0/1. A missing time reads as the training split's median.
    """

    type: Literal["datetime"] = "datetime"
    parts: Annotated[list[DatetimePart], Field(min_length=1)] = ["elapsed", "month", "day_of_week", "hour"]

    @model_validator(mode="after")
    def _unique_parts(self) -> DatetimeFeature:
        if len(set(self.parts)) != len(self.parts):
            raise ValueError(f"parts lists a part twice: {self.parts}")
        return self


class SequenceFeature(_Feature):
    """A list per row, of any length: numbers (amounts) or category tokens (clicks, codes). A cell holds a
    list (JSON Lines, Parquet) or a JSON list in text (CSV: ``"[12.5, 3, 40]"``); an empty or missing cell
    is the empty list.

    ``values``: ``numbers`` (standardised with the training values' mean and spread), ``tokens`` (a
    vocabulary of the training tokens seen at least ``min_frequency`` times; the others read as unknown), or
    ``auto`` (numbers when every training value is one). Lists longer than ``max_length`` keep their last
    items (``keep: last``, the most recent for a history) or their first.
    """

    type: Literal["sequence"] = "sequence"
    values: Literal["auto", "numbers", "tokens"] = "auto"
    max_length: Annotated[int, Field(ge=1, le=4096)] = 64
    keep: Literal["last", "first"] = "last"
    min_frequency: Annotated[int, Field(ge=1)] = 1
    max_tokens: Annotated[int, Field(ge=1)] | None = None


InputFeature = Annotated[
    NumericFeature | CategoryFeature | BinaryFeature | TextFeature | ImageFeature | SequenceFeature | DatetimeFeature,
    Field(discriminator="type"),
]


class OutputFeature(_Feature):
    """The prediction target: ``category`` (multiclass), ``binary`` or ``numeric`` (regression)."""

    type: Literal["category", "binary", "numeric"]


class EntityHistory(BaseConfig):
    """The columns that make rows one entity's history: ``key`` names the entity (a customer, a device),
    ``time`` orders its rows (ISO 8601 times, dates, or seconds since 1970)."""

    key: Annotated[str, Field(min_length=1)]
    time: Annotated[str, Field(min_length=1)]


class FeaturesConfig(BaseConfig):
    """Inputs the model sees and the output it predicts; ``history`` where inputs are derived from each
    entity's earlier rows."""

    inputs: Annotated[list[InputFeature], Field(min_length=1)]
    output: OutputFeature
    history: EntityHistory | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> FeaturesConfig:
        names = [f.name for f in self.inputs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"input feature names must be unique, got duplicates: {', '.join(dup)}")
        if self.output.name in names:
            raise ValueError(f"the output '{self.output.name}' is also declared as an input")
        keys = ("image", "input_ids", "attention_mask", "sequence", "sequence_mask")
        for feature in self.inputs:  # a column's raw graph input would take the name of another input's tensor
            if feature.type in ("numeric", "binary", "category", "datetime") and feature.name.split(".")[0] in keys:
                raise ValueError(
                    f"input '{feature.name}' ({feature.type}) is named like the tensor of an image, text or sequence "
                    f"input ({', '.join(keys)}, with or without '.NAME'): rename it"
                )
        derived = {f.name: f.history for f in self.derived()}
        if derived and self.history is None:
            raise ValueError(
                f"inputs {', '.join(map(repr, derived))} are derived from history: declare the entity and time "
                "columns as features.history: {key: COLUMN, time: COLUMN}"
            )
        for name, spec in derived.items():
            if spec.of in derived:  # type: ignore[union-attr]
                raise ValueError(
                    f"input '{name}' looks back on '{spec.of}', itself derived: look back on a column of the data"
                )  # type: ignore[union-attr]
        if self.history is not None:
            for role in ("key", "time"):
                if getattr(self.history, role) in derived:
                    raise ValueError(f"history.{role} '{getattr(self.history, role)}' is a derived input")
        return self

    def derived(self) -> list[NumericFeature]:
        """The inputs derived from each entity's earlier rows."""
        return [f for f in self.inputs if isinstance(f, NumericFeature) and f.history is not None]

    @property
    def task(self) -> Literal["classification", "regression"]:
        return "regression" if self.output.type == "numeric" else "classification"

    def of_type(self, kind: str) -> list[InputFeature]:
        return [f for f in self.inputs if f.type == kind]
