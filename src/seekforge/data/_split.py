"""Loading a recipe's data and splitting it into train / validation / test with the recipe's seed."""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from seekforge.core.errors import DataError
from seekforge.data._history import check_history_columns, time_order, with_history
from seekforge.data._sources import read_source
from seekforge.data._validate import check_table
from seekforge.data.config import DataConfig, FeaturesConfig


@dataclass(frozen=True)
class Splits:
    """The three splits of a recipe's data, a fingerprint of the data they came from, and, when the
    recipe cleans or balances its data, what cleaning did (``accounting`` and ``steps``) and what
    balancing did (class counts before and after)."""

    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame
    data_hash: str
    cleaning: dict[str, Any] | None = None
    balancing: dict[str, Any] | None = None


def frame_fingerprint(frame: pd.DataFrame) -> str:
    """sha256 of a table's column names and values (arrays in cells included), independent of dtype widths."""
    digest = hashlib.sha256()
    for name in frame.columns:
        digest.update(f"\x00{name}\x00".encode())
        column = frame[name]
        if pd.api.types.is_numeric_dtype(column):
            digest.update(np.ascontiguousarray(column.to_numpy(dtype=np.float64)).tobytes())
        else:
            for value in column:
                if isinstance(value, np.ndarray):
                    digest.update(np.ascontiguousarray(value).tobytes())
                else:
                    digest.update(f"{value}\x1f".encode())
    return digest.hexdigest()


def load_splits(data: DataConfig, features: FeaturesConfig, seed: int, *, keep: Sequence[str] = ()) -> Splits:
    """Read ``data.source`` (and ``data.test``), check them against ``features`` and split them.

    ``keep`` names columns carried along unchecked, beside the features (a fairness check's groups).

    Classification splits are stratified by the output unless ``data.split.stratify`` is false. The same
    data and seed always give the same split.

    Raises:
        DataError: The data cannot be read, does not match the features, or is too small to split.
    """
    raw = read_source(data.source, data.read)
    rejected = 0
    if data.clean is not None and data.clean.coerce:
        raw, rejected = _set_aside_unparseable(raw, features)
    test_raw = read_source(data.test, data.read) if data.test else None
    if features.history is None:
        frame = _carry(check_table(raw, features), raw, keep, features)
        train_pos, val_pos, test_pos = _positions(frame, raw, data, features, seed, explicit_test=test_raw is not None)
        explicit_test = None if test_raw is None else _carry(check_table(test_raw, features), test_raw, keep, features)
    else:  # split first: each split's derived inputs come from the rows it may see
        if data.split.order is None and features.derived():
            warnings.warn(
                f"{data.source}: inputs derived from earlier rows with a shuffled split: a training row's history "
                f"holds only the training rows (about {data.split.train:.0%} of each entity's past), a served "
                f"row's all of it; set data.split.order: {features.history.time} to train on the past as it was",
                UserWarning,
                stacklevel=2,
            )
        train_pos, val_pos, test_pos = _positions(raw, raw, data, features, seed, explicit_test=test_raw is not None)
        check_history_columns(raw, features)
        if test_raw is None:
            raw = with_history(raw, features, [train_pos, np.r_[train_pos, val_pos], np.arange(len(raw))])
        else:  # the test file's rows see every row of the source and of the test file
            check_history_columns(test_raw, features)
            source = raw
            raw = with_history(raw, features, [train_pos, np.arange(len(raw))])
            both = pd.concat([source, test_raw])  # each row keeps its index: errors name the test file's rows
            both.attrs = dict(test_raw.attrs)
            columns = [*test_raw.columns, *(f.name for f in features.derived())]
            attrs = test_raw.attrs
            test_raw = with_history(both, features, [np.arange(len(both))]).iloc[len(source) :][columns]
            test_raw.attrs = dict(attrs)
        frame = _carry(check_table(raw, features), raw, keep, features)
        explicit_test = None if test_raw is None else _carry(check_table(test_raw, features), test_raw, keep, features)
    fingerprint = frame_fingerprint(frame)
    if explicit_test is not None:
        fingerprint = hashlib.sha256((fingerprint + frame_fingerprint(explicit_test)).encode()).hexdigest()

    def take(pos: np.ndarray) -> pd.DataFrame:
        part = frame.iloc[np.sort(pos)]  # the index keeps each row's place in the source for error messages
        part.attrs = dict(frame.attrs)
        return part

    test = explicit_test if explicit_test is not None else take(test_pos)
    train = take(train_pos)
    cleaning = balancing = None
    if data.clean is not None:
        train, cleaning = _clean_training_rows(train, data, features, seed)
        cleaning["rejected_before_split"] = rejected
    if data.balance is not None:
        train, balancing = _balance_training_rows(train, data, features, seed)
    return Splits(train, take(val_pos), test, fingerprint, cleaning, balancing)


def _positions(
    frame: pd.DataFrame,
    raw: pd.DataFrame,
    data: DataConfig,
    features: FeaturesConfig,
    seed: int,
    *,
    explicit_test: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Positions of the training, validation and test rows of ``frame`` (``raw`` as read, row for row):
    shuffled (stratified by the label for a classifier unless told not to) with ``seed``, or in time order
    by the column ``data.split.order`` of ``raw``.

    Raises:
        DataError: The split leaves no training rows, or a stratified split cannot be made.
    """
    split = data.split
    test_fraction = 0.0 if explicit_test else split.test
    remaining = split.train + split.validation if not explicit_test else 1.0
    if split.order is not None:
        order = time_order(raw, split.order)
        n_test = _held_out(len(order), test_fraction)
        rest, test_pos = order[: len(order) - n_test], order[len(order) - n_test :]
        n_val = _held_out(len(rest), split.validation / remaining)
        train_pos, val_pos = rest[: len(rest) - n_val], rest[len(rest) - n_val :]
    else:
        stratify = features.task == "classification" and split.stratify
        if stratify and features.output.name not in frame.columns:
            shown = ", ".join(repr(str(c)) for c in list(frame.columns)[:20])
            raise DataError(f"{data.source}: the output column '{features.output.name}' not found; columns present: {shown}",
                            hint="fix features.output.name, or add the column to the data")  # fmt: skip
        labels = frame[features.output.name].map(str) if stratify else None
        rest, test_pos = _divide(np.arange(len(frame)), labels, test_fraction, seed, "test")
        rest_labels = labels.iloc[rest] if labels is not None else None
        train_pos, val_pos = _divide(rest, rest_labels, split.validation / remaining, seed + 1, "validation")
    if len(train_pos) == 0:
        raise DataError(f"{data.source}: {len(frame)} rows leave no training rows after the split")
    return train_pos, val_pos, test_pos


def _carry(checked: pd.DataFrame, raw: pd.DataFrame, keep: Sequence[str], features: FeaturesConfig) -> pd.DataFrame:
    """``checked`` with the ``keep`` columns of ``raw`` beside it (check_table keeps every row and its index).

    Raises:
        DataError: A ``keep`` column is not in the data.
    """
    declared = {f.name for f in (*features.inputs, features.output)}
    extra = [c for c in keep if c not in declared]
    missing = [c for c in extra if c not in raw.columns]
    if missing:
        shown = ", ".join(repr(str(c)) for c in list(raw.columns)[:20])
        raise DataError(
            f"{raw.attrs.get('source', 'data')}: column{'s' * (len(missing) > 1)} {', '.join(map(repr, missing))} "
            f"(fairness.sensitive) not found; columns present: {shown}",
            hint="fix the name in fairness.sensitive, or add the column to the data",
        )
    if not extra:
        return checked
    carried = checked.copy()
    for column in extra:
        carried[column] = raw.loc[checked.index, column]
    return carried


def _declared_types(features: FeaturesConfig) -> dict[str, str]:
    return {f.name: f.type for f in (*features.inputs, features.output)}


def _set_aside_unparseable(raw: pd.DataFrame, features: FeaturesConfig) -> tuple[pd.DataFrame, int]:
    """``raw`` without the rows whose numeric cells do not parse, and how many there were."""
    from seekforge.data._clean import coerce_types

    kept, rejected = coerce_types(raw, {k: v for k, v in _declared_types(features).items() if k in raw.columns})
    kept.attrs = dict(raw.attrs)
    return kept, len(rejected)


def _clean_training_rows(
    train: pd.DataFrame, data: DataConfig, features: FeaturesConfig, seed: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    from seekforge.data._clean import clean_frame
    from seekforge.data.quality_config import DataQualityConfig

    assert data.clean is not None
    # the recipe's cleaning without its column-dropping steps, validated again as a new config
    steps = data.clean.model_dump()
    steps["coerce"] = False
    steps["columns"].update(drop_id_like=False, drop_constant=False)
    steps["missing"]["drop_columns_above"] = None
    steps["privacy"] = None  # refused in a recipe: serving data would not be cleaned the same way
    config = DataQualityConfig(
        label=features.output.name,
        task=features.task,
        types=_declared_types(features),
        seed=seed,
        clean=type(data.clean).model_validate(steps),
    )
    result = clean_frame(train[[c for c in train.columns if c in config.types]], config)
    cleaned = result.frame.drop(columns=[c for c in ("is_outlier", "label_issue") if c in result.frame.columns])
    cleaned.attrs = dict(train.attrs)
    return cleaned, {"accounting": result.accounting, "steps": result.steps}


def _balance_training_rows(
    train: pd.DataFrame, data: DataConfig, features: FeaturesConfig, seed: int
) -> tuple[pd.DataFrame, dict[str, Any]]:
    from seekforge.data._balance import balance_frame

    assert data.balance is not None
    types = _declared_types(features)
    result = balance_frame(
        train[[c for c in train.columns if c in types]], features.output.name, data.balance, types=types, seed=seed
    )
    return result.frame, result.report


def _held_out(rows: int, fraction: float) -> int:
    """How many of ``rows`` a held-out ``fraction`` takes: rounded up, as scikit-learn's split does (so a
    small split is not left empty), ignoring the float noise of fractions such as 0.1 / 0.9."""
    return math.ceil(rows * fraction - 1e-9) if fraction > 0 else 0


def _divide(
    positions: np.ndarray, labels: pd.Series | None, fraction: float, seed: int, what: str
) -> tuple[np.ndarray, np.ndarray]:
    if fraction <= 0:
        return positions, positions[:0]
    from sklearn.model_selection import train_test_split

    try:
        keep, held = train_test_split(
            positions,
            test_size=fraction,
            random_state=seed,
            stratify=None if labels is None else labels.map(str).to_numpy(),
        )
    except ValueError as exc:
        raise DataError(
            f"cannot carve a {fraction:.0%} {what} split out of {len(positions)} rows: {exc}",
            hint="set data.split.stratify: false, change the fractions, or add rows",
        ) from None
    return np.asarray(keep), np.asarray(held)
