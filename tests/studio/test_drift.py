"""Drift in the studio: a prediction log a server is writing, measured by window and feature as
``seekforge monitor`` measures it, read without holding the server up."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi")
from fastapi.testclient import TestClient

from seekforge.serve import ServeConfig
from seekforge.studio import create_app
from tests.conftest import make_tabular
from tests.serve.conftest import running
from tests.studio.client import studio_client


def test_a_logs_drift_is_measured_by_feature_while_its_server_writes(served_package: Path, tmp_path: Path) -> None:
    log = tmp_path / "predictions.db"
    shifted = make_tabular(300, seed=5).drop(columns=["label"]).assign(x1=lambda f: f["x1"] + 4.0)
    with running(served_package, ServeConfig(max_wait_ms=1, log=log), grpc=False) as (_, where):
        url = f"http://127.0.0.1:{where.http_port}/v1/predict"
        for start in range(0, 300, 100):
            records = shifted.iloc[start : start + 100].to_dict(orient="records")
            assert httpx.post(url, json={"records": records}, timeout=30).status_code == 200
        client = studio_client(create_app(tmp_path, logs=[log, tmp_path / "none.db"]))
        found = _wait_for_rows(client, 300)
    (window,) = found["windows"]
    features = {f["name"]: f for f in window["drift"]["features"]}
    assert features["x1"]["drifted"] and not features["x2"]["drifted"] and window["rows"] == 300
    assert found["package"] == str(served_package)
    assert "error" in client.get("/api/drift/1").json()
    assert client.get("/api/drift/2").status_code == 404
    page = client.get("/drift").text
    assert "predictions.db" in page and "studio.driftTables(2" in page
    assert "No prediction log is watched" in studio_client(create_app(tmp_path)).get("/drift").text


def _wait_for_rows(client: TestClient, rows: int) -> dict:
    """The log is written off the request path: read it until every row is in."""
    import time

    deadline = time.monotonic() + 30
    while True:
        found = client.get("/api/drift/0", params={"window": 86400, "windows": 1}).json()
        if ("error" not in found and found["windows"][-1]["rows"] >= rows) or time.monotonic() > deadline:
            return found
        time.sleep(0.2)
