"""The header of a safetensors file, read and checked without loading a tensor: every tensor's dtype and
shape, its bytes inside the file and matching its shape. A package's weights are checked against what its
``model.json`` builds before anything is allocated."""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

from seekforge.core.errors import PackageError

#: Bytes per element of each dtype safetensors writes
DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
    "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip
_MAX_HEADER = 100 * 1024 * 1024


def safetensors_shapes(path: Path | str) -> dict[str, tuple[str, tuple[int, ...]]]:
    """Tensor name -> (dtype, shape) of the safetensors file ``path``.

    Raises:
        PackageError: The file is not a well-formed safetensors file: its header is cut short, too large,
            not JSON, or names a tensor whose bytes lie outside the file or do not match its shape.
    """
    path = Path(path)

    def bad(why: str) -> PackageError:
        return PackageError(f"{path} is not a valid safetensors file: {why}", hint="re-create the package")

    size = path.stat().st_size
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise bad("shorter than its 8-byte header length")
        length = struct.unpack("<Q", head)[0]
        if length > min(_MAX_HEADER, size - 8):
            raise bad(f"its header claims {length:,} bytes, and the file holds {size - 8:,} after the length")
        try:
            header = json.loads(fh.read(length))
        except (ValueError, RecursionError) as exc:
            raise bad(f"its header is not JSON ({type(exc).__name__})") from None
    if not isinstance(header, dict):
        raise bad("its header is not an object")
    data = size - 8 - length
    shapes: dict[str, tuple[str, tuple[int, ...]]] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        try:
            dtype, shape, (start, end) = entry["dtype"], tuple(entry["shape"]), entry["data_offsets"]
            valid = (dtype in DTYPE_BYTES and all(type(d) is int and d >= 0 for d in shape)
                     and type(start) is int and type(end) is int and 0 <= start <= end <= data)  # fmt: skip
        except (TypeError, KeyError, ValueError):
            valid = False
        if not valid:
            raise bad(f"tensor {name!r} has a malformed entry or its bytes lie outside the file")
        if math.prod(shape) * DTYPE_BYTES[dtype] != end - start:
            raise bad(f"tensor {name!r} of shape {list(shape)} does not match its {end - start:,} bytes")
        shapes[name] = (dtype, shape)
    return shapes
