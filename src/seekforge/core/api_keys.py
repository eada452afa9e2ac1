"""API keys, as the server and the studio take them: a file of keys (one per line), a request's key
(``x-api-key``, else ``Authorization: Bearer``), compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Collection, Mapping
from pathlib import Path

from seekforge.core.errors import ConfigError


def read_api_keys(path: Path, *, option: str = "--api-key-file") -> frozenset[str]:
    """The keys in ``path``, one per line (blank lines skipped).

    Raises:
        ConfigError: The file cannot be read, or holds no key.
    """
    try:
        keys = frozenset(line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip())
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{option} {path}: cannot read it ({getattr(exc, 'strerror', None) or exc})") from None
    if not keys:
        raise ConfigError(f"{option} {path} holds no key", hint="write one key per line")
    return keys


def api_key_of(headers: Mapping[str, str]) -> str | None:
    """The API key a request carries: ``x-api-key``, else an ``Authorization: Bearer`` token (HTTP headers
    and gRPC metadata alike)."""
    key = headers.get("x-api-key")
    if key is None:
        auth = str(headers.get("authorization", ""))
        key = auth[7:].strip() if auth[:7].lower() == "bearer " else None
    return key


def key_accepted(keys: Collection[str], key: str | None) -> bool:
    """Whether ``key`` is one of ``keys``, compared in constant time."""
    given = (key or "").encode()
    return any(hmac.compare_digest(given, k.encode()) for k in keys)
