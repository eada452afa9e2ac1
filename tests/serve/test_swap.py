"""Swapping the served model while requests keep coming (no request fails, the cache forgets the old
model's outputs), following a registry alias, a canary answering its share of requests, and a shadow whose
answers are logged and never returned; each model's requests counted by role and version."""

from __future__ import annotations

import concurrent.futures
import shutil
import sqlite3
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest

import seekforge
from seekforge.core.errors import ConfigError
from seekforge.core.package import add_to_package, read_manifest
from seekforge.core.variants import model_version
from seekforge.registry import Registry
from seekforge.serve import ServeConfig
from seekforge.serve._model import ServedModel, check_compatible
from tests.serve.conftest import Gate, running, wait_until
from tests.serve.test_http import GOOD, _sample


def _version(package: Path) -> str:
    return model_version(read_manifest(package))


def test_a_promotion_is_followed_and_swapped_in_under_load_with_no_failed_request(
    served_package: Path, other_version: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = Registry(tmp_path / "registry.db")
    first, second = registry.register(served_package), registry.register(other_version)
    registry.promote("tiny", first)
    log = tmp_path / "predictions.db"
    config = ServeConfig(
        registry=str(tmp_path / "registry.db"), follow_s=0.1, cache_rows=100, log=log, max_wait_ms=2, inline_below_ms=0
    )  # fmt: skip (the held model must not hold the event loop)
    old, new = _version(served_package), _version(other_version)
    assert old != new
    with (
        running("registry:tiny@champion", config, grpc=False) as (service, where),  # type: ignore[arg-type]
        httpx.Client(base_url=f"http://127.0.0.1:{where.http_port}", timeout=30) as client,
    ):
        first = client.post("/v1/predict", json={"records": [GOOD]}).json()
        assert first["model_version"] == old  # now cached
        outputs = first["predictions"]
        assert service.batcher.stats.batches > 0
        answers: list[tuple[int, str | None]] = []
        stop = threading.Event()

        def load() -> None:
            with httpx.Client(base_url=f"http://127.0.0.1:{where.http_port}", timeout=30) as own:
                while not stop.is_set():
                    response = own.post("/v1/predict", json={"records": [GOOD, {"x1": 1.0}]})
                    answers.append((response.status_code, response.json().get("model_version")))

        hold = Gate(service.predictor.decoded)  # the old model is busy with a batch, and more are queued
        monkeypatch.setattr(service.predictor, "decoded", hold)
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            clients = [pool.submit(load) for _ in range(8)]
            try:
                wait_until(lambda: bool(hold.calls) and service.batcher.queued_rows > 0)
                registry.promote("tiny", second)  # the server follows the alias
                try:
                    wait_until(lambda: service.version == new, timeout=30)  # the old model still holds requests
                    probe = client.post("/v1/predict", json={"records": [GOOD]})
                    # the cache was emptied: GOOD's old answer is not given again (the load's own requests may
                    # meanwhile have cached the new model's, so hits alone do not tell)
                    assert probe.json()["predictions"] != outputs
                finally:
                    hold.open()  # the old model answers what was queued for it
                assert probe.json()["model_version"] == new
                seen = len(answers)
                wait_until(lambda: len(answers) >= seen + 40)
            finally:
                stop.set()
            for c in clients:
                c.result()
        codes = Counter(code for code, _ in answers)
        assert codes == {200: len(answers)}, codes  # not one request failed across the swap
        versions = [v for _, v in answers]
        assert set(versions) == {old, new} and versions[-1] == new
        metrics = client.get("/metrics").text
        assert _sample(metrics, "seekforge_swaps_total", role="primary", outcome="done") == 1
        from prometheus_client.parser import text_string_to_metric_families

        served = {(s.labels["role"], s.labels["version"], s.labels["backend"])
                  for f in text_string_to_metric_families(metrics) for s in f.samples if s.name == "seekforge_model_info"}  # fmt: skip
        assert served == {("primary", new, "torch")}  # the old model is no longer described
        assert _sample(metrics, "seekforge_model_requests_total", role="primary", version=new, outcome="ok") > 0
        assert client.get("/v1/model").json()["models"]["primary"]["source"] == "registry:tiny@champion"
        # The old model's answers to the rows it held ({"x1": 1.0}: GOOD came from the cache), which came
        # after the swap, were not cached: the row is answered with the new model's output.
        cached = client.post("/v1/predict", json={"records": [{"x1": 1.0}]}).json()["predictions"][0]["proba"]
        expected = seekforge.load(other_version).predict([{"x1": 1.0, "x2": None, "city": None, "member": None}])
        assert cached["buy"] == pytest.approx(float(expected["proba_buy"].iloc[0]), abs=1e-5)
    with sqlite3.connect(log) as db:
        logged = dict(db.execute("SELECT model_version, COUNT(*) FROM predictions GROUP BY model_version").fetchall())
    assert set(logged) == {old, new}  # each row says which model answered it


def test_a_swap_to_the_package_served_loads_nothing_and_an_incompatible_one_is_refused(
    served_package: Path, tmp_path: Path
) -> None:
    import asyncio

    from seekforge.serve import ModelService

    service = ModelService(served_package, ServeConfig(follow_s=0))

    async def scenario() -> None:
        await service.start()
        try:
            assert not await service.swap("primary", str(served_package))
            with pytest.raises(ConfigError, match="no canary model is served"):
                await service.swap("canary")
        finally:
            await service.drain()

    asyncio.run(scenario())

    # Through the service: a package taking other records is refused, counted, and the old model stays.
    renamed = tmp_path / "renamed"
    shutil.copytree(served_package, renamed)
    inputs = [*service.manifest["inputs"][:3], {"name": "age", "type": "numeric"}]
    add_to_package(renamed, files={}, manifest={"inputs": inputs})
    second = ModelService(served_package, ServeConfig(follow_s=0))

    async def refused() -> None:
        await second.start()
        try:
            with pytest.raises(ConfigError, match="it lacks the input member; it takes the new input age"):
                await second.swap("primary", str(renamed))
            assert second.path == served_package and second.metrics.swaps.labels("primary", "refused")._value.get() == 1
            rows = second.validate([GOOD])
            assert (await second.predict(rows))[1] == second.version  # still answering
        finally:
            await second.drain()

    asyncio.run(refused())

    base = service.primary
    changed = {**base.manifest, "inputs": [*base.manifest["inputs"][:3], {"name": "age", "type": "numeric"}]}
    other = ServedModel(**{**base.__dict__, "manifest": changed, "source": "v2/", "version": "tiny:v2"})
    with pytest.raises(ConfigError, match=r"cannot stand in .* it lacks the input member; it takes the new input age"):
        check_compatible(base, other)
    relabelled = {**base.manifest, "output": {"name": "churn", "type": "binary"}}
    with pytest.raises(ConfigError, match="its output is churn"):
        check_compatible(base, ServedModel(**{**base.__dict__, "manifest": relabelled}))


def test_a_canary_answers_its_share_by_request_id_and_a_shadow_is_only_logged(
    served_package: Path, other_version: Path, tmp_path: Path
) -> None:
    shadow = tmp_path / "shadow"
    shutil.copytree(other_version, shadow)
    log = tmp_path / "predictions.db"
    config = ServeConfig(canary=str(other_version), canary_percent=30, shadow=str(shadow), log=log)
    primary, canary = _version(served_package), _version(other_version)
    with (
        running(served_package, config, grpc=False) as (service, where),
        httpx.Client(base_url=f"http://127.0.0.1:{where.http_port}", timeout=30) as client,
    ):
        answered = {}
        for i in range(200):
            response = client.post("/v1/predict", json={"records": [GOOD]}, headers={"x-request-id": f"r{i}"})
            answered[f"r{i}"] = response.json()["model_version"]
        share = sum(v == canary for v in answered.values()) / len(answered)
        assert 0.2 < share < 0.4 and set(answered.values()) == {primary, canary}
        again = client.post("/v1/predict", json={"records": [GOOD]}, headers={"x-request-id": "r7"})
        assert again.json()["model_version"] == answered["r7"]  # the same id goes the same way
        models = client.get("/v1/model").json()["models"]
        assert set(models) == {"primary", "canary", "shadow"} and models["canary"]["percent"] == 30
        wait_until(lambda: service.metrics.model_rows.labels("shadow", canary)._value.get() == 201)
        metrics = client.get("/metrics").text
        by_role = {
            role: _sample(metrics, "seekforge_model_requests_total", role=role, version=v, outcome="ok")
            for role, v in (("primary", primary), ("canary", canary), ("shadow", canary))
        }
        assert by_role["primary"] + by_role["canary"] == 201 and by_role["shadow"] == 201
    with sqlite3.connect(log) as db:
        roles = dict(db.execute("SELECT role, COUNT(*) FROM predictions GROUP BY role").fetchall())
        canary_ids = {r for (r,) in db.execute("SELECT request_id FROM predictions WHERE role = 'canary'")}
    assert roles["shadow"] == 201 and roles["primary"] + roles["canary"] == 201  # every request, and the shadow's
    assert canary_ids == {r for r, v in answered.items() if v == canary}
