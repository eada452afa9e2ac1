"""Raw values -> the encoded inputs a package's model reads (its batch, as numpy arrays): numbers imputed
and scaled, binary values as 0/1, category codes, texts tokenized with the package's own tokenizer, images
decoded, resized and normalised. numpy alone, plus ``tokenizers`` for texts and Pillow for image files.

The training pipeline's Preprocessor encodes through this same code (and makes tensors of the arrays), so
the ONNX graph of a text, image or fusion model gets exactly the inputs it was checked on, with or without
torch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from seekforge.core.batch import input_keys
from seekforge.core.deps import require
from seekforge.core.errors import DataError
from seekforge.core.images import check_pixels, decode_image
from seekforge.runtime._encode import (
    GRAPH_TYPES,
    MISSING,
    _binary,
    _numbers,
    binary_table,
    canonical,
    is_missing,
    raw_feeds,
)

Place = Callable[[int], str]


def _row(pos: int) -> str:
    return f"row {pos}"


class Tokens:
    """A tokenizer (its ``tokenizer.json`` text) that truncates and pads every text to ``max_length``."""

    def __init__(self, tokenizer_json: str, max_length: int) -> None:
        tk = require("tokenizers", purpose="text features", extra="runtime-text")
        self.tokenizer_json = tokenizer_json
        self.max_length = max_length
        self._tok = tk.Tokenizer.from_str(tokenizer_json)
        pad_token = next((t for t in ("[PAD]", "<pad>") if self._tok.token_to_id(t) is not None), None)
        self.pad_id = self._tok.token_to_id(pad_token) if pad_token else 0
        self._tok.enable_truncation(max_length=max_length)
        self._tok.enable_padding(pad_id=self.pad_id, pad_token=pad_token or "[PAD]", length=max_length)

    def encode_arrays(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Token ids and attention mask, both ``[len(texts), max_length]`` int64."""
        encodings = self._tok.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64).reshape(len(texts), self.max_length)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64).reshape(ids.shape)
        return ids, mask


def read_pixels(value: Any, what: str, name: str = "image") -> np.ndarray:
    """One image of column ``name`` (a file name, or pixel rows: an array or nested lists) as float32
    ``[H, W, C]`` in [0, 1].

    Raises:
        DataError: No such file, not an image, larger than the pixel limit, or not a picture's shape;
            the message starts with ``what`` (the row).
    """
    if isinstance(value, str | Path):
        require("PIL", purpose="image files", extra="runtime-image")
        try:
            array = decode_image(value, what=f"{what}: {value}")
        except FileNotFoundError:
            raise DataError(f"{what}: image file not found: {value}") from None
        except (OSError, SyntaxError) as exc:  # Pillow's UnidentifiedImageError too
            raise DataError(
                f"{what}: cannot read image {value}: {exc}", hint="remove or replace the corrupt file"
            ) from None
    elif isinstance(value, np.ndarray | list | tuple):
        array = np.asarray(value)
        if array.dtype == object:  # rows held as arrays or lists, e.g. read back from Parquet or JSON
            array = np.array([np.asarray(row).tolist() for row in array])
        if array.ndim >= 2:
            check_pixels(array.shape[1], array.shape[0], what)
    else:
        raise DataError(f"{what}: column '{name}' must hold an image path or array, got {type(value).__name__}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise DataError(f"{what}: image of shape {array.shape} is not HxW, HxWx1/3/4")
    array = array[:, :, :3]
    if np.issubdtype(array.dtype, np.integer):  # integer pixels are 8-bit (16-bit for uint16), like files
        return array.astype(np.float32) / (65535.0 if array.dtype == np.uint16 else 255.0)
    return array.astype(np.float32)


def fit_pixels(array: np.ndarray, size: tuple[int, int], channels: int) -> np.ndarray:
    """``[H, W, C]`` pixels as ``[channels, *size]``: grey averaged from colour or repeated into it, then
    resized with an antialiased bilinear filter (Pillow's, as torch's ``interpolate(..., antialias=True)``
    computes it)."""
    chw = np.ascontiguousarray(array.transpose(2, 0, 1))
    if chw.shape[0] != channels:
        chw = chw.mean(axis=0, keepdims=True) if channels == 1 else np.repeat(chw, 3, axis=0)
    if tuple(chw.shape[1:]) == tuple(size):
        return chw
    rows, cols = _filter(chw.shape[1], size[0]), _filter(chw.shape[2], size[1])
    return (rows @ chw @ cols.T).astype(np.float32)  # [out_h, h] @ [c, h, w] @ [w, out_w]: two matrix products


@lru_cache(maxsize=64)
def _filter(source: int, target: int) -> np.ndarray:
    """``[target, source]`` weights of the antialiased bilinear (triangle) filter, each row summing to 1."""
    scale = source / target
    support = scale if scale >= 1.0 else 1.0
    stretch = 1.0 / scale if scale >= 1.0 else 1.0
    weights = np.zeros((target, source), dtype=np.float64)
    for out in range(target):
        center = scale * (out + 0.5)
        low = max(int(center - support + 0.5), 0)
        high = min(int(center + support + 0.5), source)
        taps = np.arange(low, high)
        row = np.clip(1.0 - np.abs((taps - center + 0.5) * stretch), 0.0, None)
        weights[out, low:high] = row / row.sum() if row.sum() > 0 else 0.0
    return weights.astype(np.float32)


class InputEncoder:
    """A fitted preprocessing (``preprocessor.json``'s content) as numpy: ``feeds(columns)`` gives the batch
    a model (or its ONNX graph) reads, keyed as the Preprocessor keys it. ``tokens``: the texts' tokenizers
    already built (by input name), instead of building them from the state's JSON."""

    def __init__(self, state: Mapping[str, Any], *, tokens: Mapping[str, Tokens] | None = None) -> None:
        keys = input_keys((feature["name"], feature["type"]) for feature in state["features"]["inputs"])
        self.numeric: dict[str, dict[str, float]] = dict(state["numeric"])
        self.binary: dict[str, list[str]] = dict(state["binary"])
        self.categories = {name: {v: i + 1 for i, v in enumerate(vocab)} for name, vocab in state["categories"].items()}
        tokens = tokens or {name: Tokens(spec["tokenizer"], spec["max_length"]) for name, spec in state["text"].items()}
        self.texts = {name: (tokens[name], keys[name]) for name in state["text"]}
        self.images = {name: (spec, keys[name][0]) for name, spec in state["images"].items()}
        self.sequences = {name: (spec, keys[name]) for name, spec in state.get("sequences", {}).items()}
        self.datetimes = dict(state.get("datetimes", {}))

    @property
    def columns(self) -> list[str]:
        return [*self.numeric, *self.binary, *self.datetimes, *self.categories, *self.texts, *self.images,
                *self.sequences]  # fmt: skip

    def graph_feeds(
        self, schema: Sequence[Mapping[str, Any]], columns: Mapping[str, Sequence[Any]],
        names: Sequence[str] | None = None, *, place: Place = _row, encoded: Mapping[str, np.ndarray] | None = None,
    ) -> dict[str, np.ndarray]:  # fmt: skip
        """The feeds (``names`` of them, or all) of a graph that holds the tabular preprocessing (an export
        with ``inputs: raw``): numeric, binary and category inputs raw (:func:`raw_feeds`), sequences cut
        and padded but raw (:func:`encode_sequences`), each datetime input as its calendar parts, texts and
        images encoded, or taken from ``encoded`` (by batch key) where it holds them.

        Raises:
            DataError: A column is missing, or a value cannot be encoded (the message names its row).
        """
        given = encoded or {}
        covered = {name for name, (_, key) in self.images.items() if key in given}
        missing = [name for name in self.columns if name not in columns and name not in covered]
        if missing:
            raise DataError(f"records lack the input column(s) {', '.join(map(repr, missing))}",
                            hint=f"each record needs: {', '.join(self.columns)}")  # fmt: skip
        feeds = raw_feeds([f for f in schema if f["type"] in GRAPH_TYPES], columns, place=place)
        for name, spec in self.datetimes.items():
            feeds[name] = encode_datetimes(columns[name], spec, place=place, name=name).astype(np.float32)
        for name, (spec, (items, mask)) in self.sequences.items():
            feeds[items], feeds[mask] = encode_sequences(columns[name], spec, place=place, name=name, raw=True)
        feeds.update(given)
        keys = {name: [key] for name, (_, key) in self.images.items()}
        keys |= {name: list(pair) for name, (_, pair) in (*self.texts.items(), *self.sequences.items())}
        rest = [name for name, wanted in keys.items() if not all(key in feeds for key in wanted)]
        if rest:
            feeds.update(self.feeds(columns, place=place, only=rest))
        return feeds if names is None else {name: feeds[name] for name in names if name in feeds}

    def feeds(
        self, columns: Mapping[str, Sequence[Any]], *, place: Place = _row, only: Sequence[str] | None = None
    ) -> dict[str, np.ndarray]:
        """The encoded batch of ``columns`` (raw values by input name; extra columns are ignored);
        ``only``: of these texts, images and sequences alone.

        Raises:
            DataError: A column is missing, or a value cannot be encoded (the message names its row).
        """
        tabular = only is None
        needed = self.columns if only is None else only
        missing = [name for name in needed if name not in columns]
        if missing:
            raise DataError(f"records lack the input column(s) {', '.join(map(repr, missing))}",
                            hint=f"each record needs: {', '.join(self.columns)}")  # fmt: skip
        batch: dict[str, np.ndarray] = {}
        numeric = []
        for name, stats in self.numeric.items() if tabular else ():
            values = _numbers(name, columns[name], place)
            values = np.where(np.isnan(values), stats["fill"], values)
            numeric.append((values - stats["center"]) / stats["scale"])
        for name, (negative, positive) in self.binary.items() if tabular else ():
            numeric.append(_binary_codes(name, columns[name], negative, positive, place))
        for name, spec in self.datetimes.items() if tabular else ():
            numeric += list(encode_datetimes(columns[name], spec, place=place, name=name).T)
        if numeric:
            batch["numeric"] = np.stack(numeric, axis=1).astype(np.float32)
        if self.categories and tabular:
            codes = [[0 if is_missing(v) else index.get(canonical(v), 0) for v in columns[name]]
                     for name, index in self.categories.items()]  # fmt: skip
            batch["category"] = np.array(codes, dtype=np.int64).T.copy()
        for name, (tokens, (ids, mask)) in self.texts.items():
            if not tabular and name not in needed:
                continue
            texts = ["" if is_missing(v) else str(v) for v in columns[name]]
            batch[ids], batch[mask] = tokens.encode_arrays(texts)
        for name, (spec, key) in self.images.items():
            if not tabular and name not in needed:
                continue
            batch[key] = encode_images(columns[name], spec, place=place, name=name)
        for name, (spec, (items, mask)) in self.sequences.items():
            if not tabular and name not in needed:
                continue
            batch[items], batch[mask] = encode_sequences(columns[name], spec, place=place, name=name)
        return batch


def encode_images(
    values: Sequence[Any], spec: Mapping[str, Any], *, place: Place = _row, name: str = "image"
) -> np.ndarray:
    """A column of images as ``[N, C, H, W]`` float32, resized and normalised as ``spec`` (an ImageStats
    dict: size, channels, per-channel mean and std) says."""
    size, channels = (int(spec["size"][0]), int(spec["size"][1])), int(spec["channels"])
    mean = np.asarray(spec["mean"], dtype=np.float32).reshape(1, -1, 1, 1)
    std = np.asarray(spec["std"], dtype=np.float32).reshape(1, -1, 1, 1)
    stack = np.stack([fit_pixels(read_pixels(v, place(i), name), size, channels) for i, v in enumerate(values)])
    return np.ascontiguousarray((stack - mean) / std)


def _binary_codes(name: str, values: Sequence[Any], negative: str, positive: str, place: Place) -> np.ndarray:
    """0 and 1 for the two trained values (each spelling :func:`binary_table` knows), 0.5 for a missing one."""
    table = binary_table(negative, positive)
    keys = _binary(name, values, (negative, positive), place)
    return np.array([0.5 if key == MISSING else table[key] for key in keys], dtype=np.float64)


def read_sequence(value: Any, where: str, name: str) -> list[Any]:
    """One sequence cell as a list: a list, tuple or array as it is, a JSON list in text parsed; a missing
    or empty cell is the empty list.

    Raises:
        DataError: The cell is neither a list nor a JSON list.
    """
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list | tuple):
        return list(value)
    if is_missing(value) or (isinstance(value, str) and not value.strip()):
        return []
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = None
        if isinstance(parsed, list):
            return parsed
    shown = repr(value)[:60]
    raise DataError(f"{where}: sequence column '{name}' holds {shown}, which is not a list",
                    hint='give a list; in a CSV cell, a JSON list such as [12.5, 3, 40] or ["home", "cart"]')  # fmt: skip


def sequence_numbers(items: list[Any], where: str, name: str) -> list[float]:
    """A sequence's items as numbers (missing ones as NaN).

    Raises:
        DataError: An item is not a number (the first one, with its position in the list).
    """
    out = []
    for pos, item in enumerate(items):
        if is_missing(item):
            out.append(float("nan"))
            continue
        if isinstance(item, bool) or not isinstance(item, int | float | str):
            bad = True
        else:
            try:
                out.append(float(item))
                bad = False
            except ValueError:
                bad = True
        if bad:
            raise DataError(f"{where}: sequence column '{name}' is declared as numbers, but item {pos} is {item!r}",
                            hint="fix the item, or declare the column with values: tokens")  # fmt: skip
    return out


def encode_sequences(
    values: Sequence[Any], spec: Mapping[str, Any], *, place: Place = _row, name: str = "sequence", raw: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """A column of sequences as ``[N, max_length]`` items (standardised numbers as float32, or token codes
    as int64: 0 padding, 1 unknown) and their mask (1 for an item, 0 for padding), items left-aligned.

    ``raw``: the items cut and padded alike but as they were read, for a graph that holds the rest: numbers
    as float64 (a missing item or padding NaN), tokens as their canonical strings (padding ``""``, a
    missing item :data:`MISSING`)."""
    length, numbers = int(spec["max_length"]), spec["kind"] == "numbers"
    if raw:
        items = np.full((len(values), length), np.nan if numbers else "", dtype=np.float64 if numbers else object)
    else:
        items = np.zeros((len(values), length), dtype=np.float32 if numbers else np.int64)
    mask = np.zeros((len(values), length), dtype=np.int64)
    index = None if numbers else {token: i + 2 for i, token in enumerate(spec["vocab"])}
    for row, value in enumerate(values):
        cells = read_sequence(value, place(row), name)
        cells = cells[-length:] if spec["keep"] == "last" else cells[:length]
        if not cells:
            continue
        if index is None:
            array = np.asarray(sequence_numbers(cells, place(row), name), dtype=np.float64)
            if not raw:  # a missing item reads as the mean
                array = np.nan_to_num((array - spec["mean"]) / spec["std"], nan=0.0)
            items[row, : len(cells)] = array
        elif raw:
            items[row, : len(cells)] = [MISSING if is_missing(c) else canonical(c) for c in cells]
        else:
            items[row, : len(cells)] = [1 if is_missing(c) else index.get(canonical(c), 1) for c in cells]
        mask[row, : len(cells)] = 1
    return items, mask


#: calendar parts read as a point on a circle: the part's period
_CYCLES = {"month": 12, "day_of_week": 7, "day_of_month": 31, "hour": 24, "minute": 60}


def epoch_seconds(value: Any, where: str, name: str) -> float:
    """A point in time as seconds since 1970 (UTC; NaN when missing): see :func:`instant`."""
    return instant(value, where, name)[0]


def instant(value: Any, where: str, name: str) -> tuple[float, float]:
    """A point in time as seconds since 1970 (UTC; NaN when missing) and its zone's offset from UTC in
    seconds (0 without a zone): ISO 8601 text, a date or datetime (without a zone: UTC), a numpy
    datetime64, or a number of seconds.

    Raises:
        DataError: Text that is not an ISO 8601 time, a number too large to be seconds, or another type.
    """
    if is_missing(value) or (isinstance(value, str) and not value.strip()):
        return float("nan"), 0.0
    if isinstance(value, np.datetime64):
        return float(value.astype("datetime64[us]").astype(np.int64)) / 1e6, 0.0
    if isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool | np.bool_):
        if abs(value) > 1e11:  # past the year 5000 in seconds: milliseconds (or finer) since 1970
            raise DataError(f"{where}: datetime column '{name}' holds {value!r}, more seconds since 1970 than any "
                            "time up to the year 5000", hint="give seconds, not milliseconds (divide by 1000)")  # fmt: skip
        return float(value), 0.0
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip())
        except ValueError:
            raise DataError(f"{where}: datetime column '{name}' holds {value!r}, which is not an ISO 8601 time",
                            hint="write times as 2024-05-01, 2024-05-01T13:45:00 or 2024-05-01T13:45:00+02:00, "
                                 "or as seconds since 1970") from None  # fmt: skip
    if isinstance(value, datetime):
        offset = value.utcoffset()
        return (
            value if value.tzinfo else value.replace(tzinfo=UTC)
        ).timestamp(), offset.total_seconds() if offset else 0.0
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp(), 0.0
    raise DataError(f"{where}: datetime column '{name}' holds a {type(value).__name__} ({str(value)[:40]}), not a time")


def datetime_columns(name: str, parts: Sequence[str]) -> list[str]:
    """The names of the numeric columns the ``parts`` of datetime input ``name`` become."""
    out = []
    for part in parts:
        out += [f"{name}.{part}_sin", f"{name}.{part}_cos"] if part in _CYCLES else [f"{name}.{part}"]
    return out


def encode_datetimes(
    values: Sequence[Any], spec: Mapping[str, Any], *, place: Place = _row, name: str = "time"
) -> np.ndarray:
    """``[N, columns]`` float64: the calendar parts ``spec`` names (see :func:`datetime_columns`), with a
    missing time read as ``spec["fill"]`` and ``elapsed`` and ``year`` standardised by ``spec``. The parts
    of a time with a zone are its local ones (18:00 at +02:00 is 18:00); ``elapsed`` counts from 1970 UTC."""
    found = np.array([instant(v, place(i), name) for i, v in enumerate(values)], dtype=np.float64).reshape(-1, 2)
    missing = np.isnan(found[:, 0])
    seconds = np.where(missing, spec["fill"], found[:, 0])
    return calendar_parts(seconds, spec, offsets=np.where(missing, 0.0, found[:, 1]))


def calendar_parts(seconds: np.ndarray, spec: Mapping[str, Any], *, offsets: np.ndarray | None = None) -> np.ndarray:
    """The calendar parts of times given as seconds since 1970 (UTC) and their zones' ``offsets`` from UTC
    in seconds (none: UTC), as :func:`encode_datetimes` gives them."""
    wall = seconds if offsets is None else seconds + offsets
    days = np.floor(wall).astype("datetime64[s]").astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    day_of_week, hour = _week(wall)
    found = {
        "elapsed": seconds / 86400.0,
        "year": months.astype("datetime64[Y]").astype(np.int64) + 1970.0,
        "month": months.astype(np.int64) % 12,  # 0 for January
        "day_of_week": day_of_week,
        "day_of_month": (days - months.astype("datetime64[D]")).astype(np.int64),  # 0 for the 1st
        "hour": hour,
        "minute": (wall % 3600.0) / 60.0,
    }
    found["weekend"] = (found["day_of_week"] >= 5).astype(np.float64)
    columns = []
    for part in spec["parts"]:
        values = np.asarray(found[part], dtype=np.float64)
        if part in _CYCLES:
            angle = 2 * np.pi * values / _CYCLES[part]
            columns += [np.sin(angle), np.cos(angle)]
        elif part in ("elapsed", "year"):
            columns.append((values - spec[part]["mean"]) / spec[part]["std"])
        else:
            columns.append(values)
    return np.stack(columns, axis=1)


def hours_of_week(values: Sequence[Any], name: str) -> np.ndarray:
    """Each time's hour of its week (0 for Monday 00:00 to 168, local where it has a zone; NaN when missing):
    what drift compares of a datetime input, since its elapsed time always moves on."""
    found = np.array([instant(v, f"row {i}", name) for i, v in enumerate(values)], dtype=np.float64).reshape(-1, 2)
    day_of_week, hour = _week(found[:, 0] + found[:, 1])
    return day_of_week * 24 + hour


def _week(wall: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The day of the week (0 for Monday) and the hour of the day (with its minutes) of wall-clock times in
    seconds since 1970; NaN stays NaN."""
    return (np.floor(wall / 86400.0) + 3) % 7, (wall % 86400.0) / 3600.0  # 1970-01-01 was a Thursday
