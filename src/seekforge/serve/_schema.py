"""The request schema of a served package: one pydantic model per package, built from its declared inputs.

Both protocols validate records with it, so HTTP answers 422 and gRPC INVALID_ARGUMENT with the same
list of bad fields, and the OpenAPI document shows each input with its type. Unknown fields are refused
(a misspelt name would otherwise be silently imputed); absent or null fields are missing values, which
the package's preprocessor imputes as it did in training.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import re
from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import numpy as np
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    TypeAdapter,
    create_model,
)
from pydantic import ValidationError as PydanticValidationError

from seekforge.core.images import check_pixels, decode_image

__all__ = ["FieldError", "RecordSchema", "record_model"]

_DATA_URL = re.compile(r"^data:image/[A-Za-z0-9.+-]+;base64,")


_FLOAT32_MAX = float(np.finfo(np.float32).max)


def _pixels(value: list[Any]) -> np.ndarray:
    """Pixel rows as 8-bit values: whole numbers from 0 to 255 (JSON and protobuf numbers alike)."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (ValueError, TypeError):
        raise ValueError("pixel lists must be a rectangular H x W or H x W x C array of numbers") from None
    if array.ndim not in (2, 3) or 0 in array.shape or (array.ndim == 3 and array.shape[2] not in (1, 3, 4)):
        raise ValueError(f"pixel lists must be H x W or H x W x 1/3/4 with H, W >= 1, not {array.shape}")
    check_pixels(array.shape[1], array.shape[0], "pixel lists")
    if not np.isfinite(array).all() or array.min() < 0 or array.max() > 255 or (array % 1).any():
        raise ValueError("pixel values must be whole numbers from 0 to 255")
    return array.astype(np.uint8)


def _decode_image(value: str | list[Any] | None) -> np.ndarray | None:
    """A base64 PNG or JPEG (optionally as a ``data:image/...;base64,`` URL) or pixel rows of 0 to 255, as an
    ``H x W (x C)`` array. Paths are refused: a client must not make the server read its own files."""
    if value is None:
        return None
    if isinstance(value, list):
        return _pixels(value)
    try:
        raw = base64.b64decode(_DATA_URL.sub("", value, count=1), validate=True)
        return decode_image(io.BytesIO(raw), what="the base64 data", formats=["PNG", "JPEG"])
    except binascii.Error:
        raise ValueError("an image must be base64-encoded PNG or JPEG bytes, or a list of pixel rows") from None
    except OSError as exc:  # Pillow's UnidentifiedImageError too
        raise ValueError(f"the base64 data is not a readable PNG or JPEG image ({exc})") from None


# NaN and infinities are not JSON (send null for a missing value), and numbers beyond float32 would
# overflow in the model; both are refused here, in pydantic's core, at no cost to good records. A number
# is a JSON number: true and "12" are refused unless the server coerces (``_LAX_NUMBER``).
_LAX_NUMBER = Annotated[float, Field(allow_inf_nan=False, ge=-_FLOAT32_MAX, le=_FLOAT32_MAX)]
_NUMBER = Annotated[_LAX_NUMBER, Strict()]
_CATEGORY = StrictStr | StrictInt | Annotated[StrictFloat, Field(allow_inf_nan=False)] | StrictBool | None
_FIELD_TYPES: dict[str, Any] = {
    "numeric": _NUMBER | None,
    "category": _CATEGORY,
    "binary": _CATEGORY,
    "text": StrictStr | None,
    "image": Annotated[StrictStr | list[Any] | None, AfterValidator(_decode_image)],
    "sequence": list[StrictStr | _NUMBER | None] | StrictStr | None,
    "datetime": StrictStr | _NUMBER | None,
}
_DESCRIBE = {
    "numeric": "a number (null or absent: imputed)",
    "category": "a category value (null or absent: missing)",
    "binary": "one of the two values seen in training (null or absent: missing)",
    "text": "text",
    "image": "a base64 PNG or JPEG, or pixel rows of whole numbers from 0 to 255",
    "sequence": "a list of numbers or tokens, or that list as JSON text (null or absent: the empty list)",
    "datetime": "an ISO 8601 time, or seconds since 1970 (null or absent: imputed)",
}


def _binary_check(trained: Sequence[str]) -> AfterValidator:
    """Refuse a binary value that is neither of the two seen in training (nor a spelling of true/false
    where those are the trained values), as the package's encoders would."""
    from seekforge.runtime import binary_table, canonical

    table = binary_table(*trained)
    shown = " and ".join(repr(v) for v in trained if v)

    def check(value: Any) -> Any:
        if value is not None and canonical(value).lower() not in table:
            raise ValueError(f"training saw only {shown}")
        return value

    return AfterValidator(check)


def record_model(
    inputs: Sequence[Mapping[str, Any]], *, name: str = "Record", coerce_numbers: bool = False
) -> type[BaseModel]:
    """A pydantic model for one record of a package whose manifest declares ``inputs``.

    Field names are the feature names (as aliases, so names with spaces work), each typed by its feature
    type; every field is optional and unknown fields are refused. Numeric fields take JSON numbers only,
    unless ``coerce_numbers`` (then ``"12"`` and ``true`` are numbers too).
    """
    fields: dict[str, Any] = {}
    for i, feature in enumerate(inputs):
        kind = str(feature["type"])
        kind_type = _LAX_NUMBER | None if kind == "numeric" and coerce_numbers else _FIELD_TYPES[kind]
        if kind == "binary" and feature.get("values"):
            kind_type = Annotated[kind_type, _binary_check(feature["values"])]
        described = f"{kind}: {_DESCRIBE[kind]}"
        if feature.get("history"):
            described += "; derived from the entity's earlier records in this request when no record gives it"
        fields[f"f{i}"] = (kind_type, Field(None, alias=str(feature["name"]), description=described))
    for j, (name, role) in enumerate(_history_fields(inputs).items()):
        kind_type = _LAX_NUMBER | None if role == "looked back on" and coerce_numbers else _SOURCE_TYPES[role]
        fields[f"h{j}"] = (kind_type, Field(None, alias=name, description=f"the {role} of derived inputs"))
    config = ConfigDict(extra="forbid", populate_by_name=False, title=name)
    return create_model(name, __config__=config, **fields)


_SOURCE_TYPES = {"entity key": _CATEGORY, "time": _FIELD_TYPES["datetime"], "looked back on": _NUMBER | None}


def _history_fields(inputs: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The columns derived inputs are computed from that are not inputs themselves, with their role."""
    from seekforge.runtime import derived_inputs, history_sources

    roles = {}
    for entry in derived_inputs(inputs):
        spec = entry["history"]
        roles.setdefault(spec["key"], "entity key")
        roles.setdefault(spec["time"], "time")
        if spec.get("of"):
            roles.setdefault(spec["of"], "looked back on")
    return {name: roles[name] for name in history_sources(inputs)}


class FieldError(BaseModel):
    """One bad field of one record."""

    record: int
    field: str | None
    message: str
    value: Any = None


class RecordSchema:
    """Validates request records against a package's inputs and returns them as plain dicts of raw values."""

    def __init__(
        self, inputs: Sequence[Mapping[str, Any]], *, name: str = "Record", coerce_numbers: bool = False
    ) -> None:
        from seekforge.runtime import derived_inputs

        self.inputs = [dict(f) for f in inputs]
        self.model = record_model(self.inputs, name=name, coerce_numbers=coerce_numbers)
        self.names = [str(f["name"]) for f in self.inputs] + list(_history_fields(self.inputs))
        self._derived = derived_inputs(self.inputs)
        self._many = TypeAdapter(list[self.model])  # type: ignore[name-defined]
        # pydantic's own dump is fastest, but warns on the arrays that decoded images are
        self._dump = not any(f["type"] == "image" for f in self.inputs)

    def validate(self, records: Sequence[Any]) -> tuple[list[dict[str, Any]], list[FieldError]]:
        """Each record as ``{feature: value}`` (every feature present, None where missing), and every
        problem found across all records (empty when all are valid)."""
        try:  # every record at once; record by record only to tell the errors apart
            parsed = self._many.validate_python(records)
        except PydanticValidationError:
            valid, errors = [], []
            for i, record in enumerate(records):
                try:
                    valid.append(self.model.model_validate(record))
                except PydanticValidationError as exc:
                    errors.extend(_field_errors(i, exc))
            return self._rows(valid), errors
        return self._with_history(self._rows(parsed))

    def _with_history(self, rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[FieldError]]:
        """``rows`` with each derived input that no record gives computed from the request's own records
        (an entity's earlier ones), before the batcher mixes them with other requests' records."""
        from seekforge.core.errors import DataError
        from seekforge.runtime import add_history

        absent = [e for e in self._derived if all(row[e["name"]] is None for row in rows)]
        if not absent:
            return rows, []
        columns = {name: [row[name] for row in rows] for name in self.names}
        for entry in absent:
            del columns[entry["name"]]
        asked: list[int] = []
        try:
            derived = add_history(columns, absent, place=lambda pos: asked.append(pos) or f"record {pos}")
        except DataError as exc:
            return rows, [FieldError(record=asked[-1] if asked else 0, field=None, message=exc.message)]
        for entry in absent:
            for row, value in zip(rows, derived[entry["name"]], strict=True):
                row[entry["name"]] = None if math.isnan(value) else float(value)
        return rows, []

    def _rows(self, parsed: list[BaseModel]) -> list[dict[str, Any]]:
        if self._dump:
            return self._many.dump_python(parsed, by_alias=True)  # type: ignore[no-any-return]
        fields = [f"f{i}" for i in range(len(self.inputs))] + [
            f"h{j}" for j in range(len(self.names) - len(self.inputs))
        ]
        return [{name: getattr(p, field) for name, field in zip(self.names, fields, strict=True)} for p in parsed]


def _field_errors(index: int, exc: PydanticValidationError) -> list[FieldError]:
    found: dict[str | None, FieldError] = {}  # one message per field: unions report each alternative
    for error in exc.errors(include_url=False):
        loc = error["loc"]
        field = str(loc[0]) if loc else None
        if field in found:
            continue
        if error["type"] == "extra_forbidden":
            message = "unknown field; the model's inputs are listed at GET /v1/model"
        elif error["type"] == "model_type":
            message = "a record must be an object of feature names to values"
        elif isinstance(error.get("input"), float) and not math.isfinite(error["input"]):
            message = "NaN and infinities are not JSON numbers; send null for a missing value"
        elif error["type"] in ("less_than_equal", "greater_than_equal"):
            message = "the number is out of range (beyond +-3.4e38)"
        elif error["type"] == "float_type" and isinstance(error.get("input"), str | bool):
            message = (
                "a number must be a JSON number, not text or true/false (serve --set coerce_numbers=true takes them)"
            )
        else:
            message = str(error["msg"]).removeprefix("Value error, ")
        value = error.get("input")
        found[field] = FieldError(record=index, field=field, message=message, value=_shown(value))
    return list(found.values())


def _shown(value: Any) -> Any:
    """A bad value as it goes back to the client: short, and JSON-safe."""
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, str | int | float | bool) or value is None:
        return value if not isinstance(value, str) or len(value) <= 80 else value[:77] + "..."
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
