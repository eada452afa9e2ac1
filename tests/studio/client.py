"""A test client that speaks to the studio as a browser on this machine does (Host 127.0.0.1: the studio
refuses other host names when it has no keys)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient


def studio_client(app: Any, **options: Any) -> TestClient:
    return TestClient(app, base_url="http://127.0.0.1", **options)
