"""Watching a running server from the studio: its /metrics read into totals, rates and the latency
percentiles of each interval; a server that cannot be reached is shown as such."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import httpx
import pytest

pytest.importorskip("fastapi")

from seekforge.serve import ServeConfig
from seekforge.studio import create_app
from seekforge.studio._serving import parse_metrics, quantile
from tests.conftest import make_tabular
from tests.serve.conftest import running
from tests.studio.client import studio_client


def test_quantiles_follow_prometheus_interpolation() -> None:
    buckets = [[0.001, 0], [0.01, 50], [0.1, 90], [None, 100]]
    assert quantile(buckets, 0.5) == pytest.approx(0.01) and quantile(buckets, 0.7) == pytest.approx(0.055)
    assert quantile(buckets, 0.99) == 0.1  # in the +Inf bucket: the last finite bound
    assert quantile([[1.0, 0], [None, 0]], 0.5) is None


def test_a_running_server_is_read_as_rates_and_percentiles(served_package: Path, tmp_path: Path) -> None:
    records = make_tabular(4, seed=1).drop(columns=["label"]).to_dict(orient="records")
    with running(served_package, ServeConfig(max_wait_ms=1), grpc=False) as (_, where):
        url = f"http://127.0.0.1:{where.http_port}"
        client = studio_client(create_app(tmp_path, servers=[url, "http://127.0.0.1:9"]))
        assert client.get("/api/servers").json()["servers"][1]["url"] == "http://127.0.0.1:9"
        first = client.get("/api/servers/0").json()
        assert first["interval"] is None and first["snapshot"]["models"][0]["role"] == "primary"
        for _ in range(20):
            assert httpx.post(f"{url}/v1/predict", json={"records": records}, timeout=10).status_code == 200
        httpx.post(f"{url}/v1/predict", json={"records": [{"nope": 1}]}, timeout=10)  # a 422
        time.sleep(0.6)
        second = client.get("/api/servers/0").json()
        metrics = parse_metrics(httpx.get(f"{url}/metrics", timeout=10).text)
    snap, interval = second["snapshot"], second["interval"]
    assert snap["requests"]["200"] - first["snapshot"]["requests"].get("200", 0) == 20 and snap["requests"]["422"] == 1
    assert interval["requests_per_s"] == pytest.approx(21 / interval["seconds"])
    assert interval["rows_per_s"] == pytest.approx(80 / interval["seconds"])
    assert 0 < interval["p50"] <= interval["p95"] <= interval["p99"] <= 10
    if sys.platform == "linux":  # the server process's own resources (prometheus_client reads /proc)
        assert snap["memory_bytes"] > 20e6 and 0 <= interval["cpu_cores"] <= (os.cpu_count() or 1) + 0.5
    assert metrics["latency"][-1][0] is None and sum(c for _, c in metrics["batch_rows"][-1:]) >= 20
    down = client.get("/api/servers/1").json()
    assert "error" in down["snapshot"] and down["interval"] is None
    assert client.get("/api/servers/2").status_code == 404
    assert "127.0.0.1:9" in client.get("/serving").text
    assert "No server is watched" in studio_client(create_app(tmp_path)).get("/serving").text
