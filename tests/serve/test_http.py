from __future__ import annotations

import concurrent.futures
import json
import sqlite3
from pathlib import Path

import httpx
import numpy as np
import pytest

from seekforge.serve import ServeConfig
from tests.serve.conftest import Gate, running, wait_until

GOOD = {"x1": 0.5, "x2": -1.0, "city": "oslo", "member": "yes"}
WHERE = ("event_loop", "inference_thread")


def _sample(metrics: str, name: str, **labels: str) -> float:
    """The value of the Prometheus sample ``name`` with ``labels`` in an exposition text."""
    from prometheus_client.parser import text_string_to_metric_families

    families = text_string_to_metric_families(metrics)
    return next(s.value for f in families for s in f.samples if s.name == name and s.labels == labels)


@pytest.fixture(scope="module")
def server(served_package: Path, tmp_path_factory: pytest.TempPathFactory):
    log = tmp_path_factory.mktemp("log") / "predictions.db"
    config = ServeConfig(max_batch_rows=16, max_wait_ms=20, max_request_rows=50, max_request_bytes=20_000, log=log)
    with (
        running(served_package, config, grpc=False) as (service, where),
        httpx.Client(base_url=f"http://127.0.0.1:{where.http_port}", timeout=30) as client,
    ):
        yield service, client, log


def test_predict_answers_each_record_in_order_with_probabilities(server) -> None:
    service, client, _ = server
    records = [GOOD, {"x1": -3.0, "x2": 2.0, "city": "rome", "member": "no"}, {}]
    response = client.post("/v1/predict", json={"records": records}, headers={"x-request-id": "abc"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["request_id"] == "abc" and body["model_version"] == service.version
    assert [p["prediction"] for p in body["predictions"]] == list(service.predictor.predict(records)["prediction"])
    for prediction in body["predictions"]:
        assert set(prediction["proba"]) == {"buy", "skip"}
        assert sum(prediction["proba"].values()) == pytest.approx(1.0, abs=1e-5)


def test_concurrent_requests_are_batched_by_rows(server) -> None:
    service, client, _ = server
    before = service.batcher.stats.batches, service.batcher.stats.rows
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda i: client.post("/v1/predict", json={"records": [GOOD] * 2}), range(16)))
    assert all(a.status_code == 200 for a in answers)
    batches = service.batcher.stats.batches - before[0]
    assert service.batcher.stats.rows - before[1] == 32
    assert batches < 16  # some requests shared a batch


def test_every_bad_field_is_listed_with_422(server) -> None:
    _, client, _ = server
    records = [GOOD, {"x1": "tall", "citty": "oslo", "member": "maybe"}]
    response = client.post("/v1/predict", json={"records": records})
    assert response.status_code == 422
    detail = {(d["record"], d["field"]) for d in response.json()["detail"]}
    assert detail == {(1, "x1"), (1, "citty"), (1, "member")}


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b'{"records": [', 400, "not valid JSON"),
        (b'{"rows": []}', 400, '{"records"'),
        (b'{"records": [], "extra": 1}', 400, "unknown key"),
        (b'{"records": []}', 422, "no records"),
        (json.dumps({"records": [GOOD] * 51}).encode(), 422, "the limit is 50: split the request"),
        (json.dumps({"records": [{"x1": 1.0, "city": "a" * 30_000}]}).encode(), 413, "20000"),
    ],
)
def test_malformed_and_oversized_requests_get_clear_errors(server, body: bytes, status: int, words: str) -> None:
    _, client, _ = server
    response = client.post("/v1/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status
    assert words in str(response.json()["detail"])


def test_model_health_readiness_and_metrics(server) -> None:
    _service, client, _ = server
    model = client.get("/v1/model").json()
    assert model["name"] == "tiny" and model["backend"] == "onnxruntime"
    assert [f["name"] for f in model["inputs"]] == ["x1", "x2", "city", "member"]
    assert model["lineage"]["seed"] == 0
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    client.post("/v1/predict", json={"records": [GOOD]})
    metrics = client.get("/metrics").text
    assert 'seekforge_requests_total{code="200",protocol="http"}' in metrics
    assert "seekforge_batch_rows_bucket" in metrics
    assert "seekforge_queue_rows" in metrics
    ran = {where: _sample(metrics, "seekforge_batches_total", runs_on=where) for where in WHERE}
    assert sum(ran.values()) == _sample(metrics, "seekforge_batch_rows_count") >= 1
    assert 'seekforge_model_info{backend="onnxruntime"' in metrics


def test_openapi_describes_each_input(server) -> None:
    _, client, _ = server
    spec = client.get("/openapi.json").json()
    record = spec["components"]["schemas"]["TinyRecord"]
    assert set(record["properties"]) == {"x1", "x2", "city", "member"}
    assert record["additionalProperties"] is False
    body = spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["records"]["maxItems"] == 50


def test_served_rows_reach_the_prediction_log(server) -> None:
    service, client, log = server
    client.post("/v1/predict", json={"records": [GOOD]}, headers={"x-request-id": "logged"})
    assert service.log.flush(30)  # the rows were handed to the log before the answer was sent
    rows = (
        sqlite3.connect(log).execute("SELECT inputs, outputs FROM predictions WHERE request_id = 'logged'").fetchall()
    )
    assert json.loads(rows[0][0]) == GOOD
    assert json.loads(rows[0][1])["prediction"] in ("buy", "skip")


def test_api_key_is_required_when_configured(served_package: Path, tmp_path: Path) -> None:
    config = ServeConfig(api_keys=frozenset({"s3cret"}), log=None)
    with running(served_package, config, grpc=False) as (_, where):
        url = f"http://127.0.0.1:{where.http_port}"
        assert httpx.post(f"{url}/v1/predict", json={"records": [GOOD]}).status_code == 401
        assert (
            httpx.post(f"{url}/v1/predict", json={"records": [GOOD]}, headers={"x-api-key": "nope"}).status_code == 401
        )
        ok = httpx.post(f"{url}/v1/predict", json={"records": [GOOD]}, headers={"authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert httpx.get(f"{url}/v1/model").status_code == 401
        assert httpx.get(f"{url}/healthz").status_code == 200  # probes need no key


def test_torch_backend_serves_the_same_predictions(served_package: Path) -> None:
    records = [GOOD, {"x1": -3.0, "city": "rome"}]
    answers = {}
    for backend in ("torch", "onnxruntime"):
        with running(served_package, ServeConfig(backend=backend), grpc=False) as (service, where):
            assert service.backend == backend
            body = httpx.post(f"http://127.0.0.1:{where.http_port}/v1/predict", json={"records": records}).json()
            answers[backend] = body["predictions"]
    for a, b in zip(answers["torch"], answers["onnxruntime"], strict=True):
        assert a["prediction"] == b["prediction"]
        assert a["proba"]["buy"] == pytest.approx(b["proba"]["buy"], abs=1e-4)


@pytest.mark.parametrize(
    ("body", "status", "words"),
    [
        (b'{"records": [{"x1": 1e300}]}', 422, "out of range"),
        (b'{"records": [{"x1": Infinity}]}', 422, "not JSON numbers"),
        (b'{"records": [{"x1": ' + b"1" * 5000 + b"}]}", 400, "not valid JSON"),
        (b"[" * 15_000, 400, "not valid JSON"),
    ],
)
def test_numbers_json_cannot_answer_with_are_refused_not_500(server, body: bytes, status: int, words: str) -> None:
    _, client, _ = server
    response = client.post("/v1/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert words in json.dumps(response.json())


def test_nan_gets_a_422_saying_to_send_null(server) -> None:
    _, client, _ = server
    body = b'{"records": [{"x1": NaN, "x2": 1.0, "city": NaN}]}'
    response = client.post("/v1/predict", content=body, headers={"content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert {d["field"] for d in response.json()["detail"]} == {"x1", "city"}
    assert "send null" in response.json()["detail"][0]["message"]


def test_a_request_id_must_be_short_and_printable(server) -> None:
    _, client, _ = server
    long = client.post("/v1/predict", json={"records": [GOOD]}, headers={"x-request-id": "r" * 200})
    assert long.status_code == 400 and "128" in long.json()["detail"]


def test_an_unexpected_failure_is_a_json_500_with_the_request_id(served_package: Path, monkeypatch) -> None:
    with running(served_package, ServeConfig(), grpc=False) as (service, where):
        monkeypatch.setattr(service.batcher, "_run", lambda rows: 1 / 0)
        response = httpx.post(
            f"http://127.0.0.1:{where.http_port}/v1/predict", json={"records": [GOOD]}, headers={"x-request-id": "boom"}
        )
    assert response.status_code == 500
    assert response.json()["detail"] == "internal error (ZeroDivisionError); request id boom"


def test_a_full_queue_answers_503_with_retry_after_and_a_deadline_504(served_package: Path, monkeypatch) -> None:
    config = ServeConfig(max_batch_rows=1, max_wait_ms=0, max_queue_rows=2, inline_below_ms=0, log=None)
    with running(served_package, config, grpc=False) as (service, where):
        url = f"http://127.0.0.1:{where.http_port}/v1/predict"

        def post(**headers: str) -> httpx.Response:
            return httpx.post(url, json={"records": [GOOD]}, headers=headers, timeout=60)

        with concurrent.futures.ThreadPoolExecutor(3) as pool:
            model = Gate(service.predictor.decoded)  # each batch runs until the test opens the gate
            monkeypatch.setattr(service.predictor, "decoded", model)
            running_one = pool.submit(post)
            assert model.started.wait(60)
            queued = [pool.submit(post) for _ in range(2)]
            wait_until(lambda: service.batcher.queued_rows == 2)
            busy = post()  # one row more than the queue holds
            model.open()
            assert [a.result().status_code for a in (running_one, *queued)] == [200, 200, 200]
        assert busy.status_code == 503
        assert int(busy.headers["retry-after"]) >= 1 and "2 rows are queued" in busy.json()["detail"]

        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            model = Gate(model.fn)
            monkeypatch.setattr(service.predictor, "decoded", model)
            first = pool.submit(post)
            assert model.started.wait(60)
            late = post(**{"x-timeout-ms": "50"})  # its deadline passes while the first batch runs
            model.open()
            assert first.result().status_code == 200
        assert late.status_code == 504 and "deadline" in late.json()["detail"]
        metrics = httpx.get(f"http://127.0.0.1:{where.http_port}/metrics").text
        assert 'seekforge_request_errors_total{protocol="http",reason="overloaded"}' in metrics
        assert 'seekforge_request_errors_total{protocol="http",reason="deadline"}' in metrics


def test_a_record_the_model_overflows_on_is_a_422_not_a_500(server) -> None:
    _, client, _ = server
    response = client.post("/v1/predict", json={"records": [GOOD, {"x1": 3.4e38, "x2": -3.4e38}]})
    assert response.status_code == 422, response.text
    assert "not a finite number for record 1" in response.json()["detail"][0]["message"]


def test_images_are_decoded_off_the_event_loop(tmp_path: Path) -> None:
    import base64
    import io
    import threading

    from PIL import Image

    import seekforge
    from tests.conftest import image_folder_recipe

    recipe = image_folder_recipe(tmp_path, per_class=8, epochs=1)
    package = seekforge.run(recipe, runs_dir=tmp_path / "runs").package
    png = io.BytesIO()
    Image.open(tmp_path / "img" / "light" / "0.png").save(png, format="PNG")
    with running(package, ServeConfig(), grpc=False) as (service, where):
        threads: list[str] = []
        validate = service.validate
        service.validate = lambda records: threads.append(threading.current_thread().name) or validate(records)
        body = {"records": [{"image": base64.b64encode(png.getvalue()).decode()}]}
        response = httpx.post(f"http://127.0.0.1:{where.http_port}/v1/predict", json=body, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json()["predictions"][0]["prediction"] in ("dark", "light")
        assert threads and all(name.startswith("asyncio_") for name in threads), threads  # the loop's executor


def test_explanations_are_off_by_default(server) -> None:
    _, client, _ = server
    response = client.post("/v1/explain", json={"records": [GOOD]})
    assert response.status_code == 404 and "--set explain=true" in response.json()["detail"]


def test_a_prediction_cache_answers_repeated_records(served_package: Path) -> None:
    config = ServeConfig(cache_rows=2)
    other = {"x1": -3.0, "x2": 2.0, "city": "rome", "member": "no"}
    third = {"x1": 1.0, "x2": 0.0, "city": "paris", "member": "no"}
    with (
        running(served_package, config, grpc=False) as (service, where),
        httpx.Client(base_url=f"http://127.0.0.1:{where.http_port}", timeout=30) as client,
    ):
        first = client.post("/v1/predict", json={"records": [GOOD, other]}).json()["predictions"]
        before = service.batcher.stats.rows
        again = client.post("/v1/predict", json={"records": [other, GOOD, GOOD]}).json()["predictions"]
        assert again == [first[1], first[0], first[0]] and service.batcher.stats.rows == before  # none ran
        client.post("/v1/predict", json={"records": [third]})  # the cache holds 2: `other`, least recently used, leaves
        client.post("/v1/predict", json={"records": [other]})
        assert service.batcher.stats.rows == before + 2
        metrics = client.get("/metrics").text
    assert _sample(metrics, "seekforge_cache_rows_total", result="hit") == 3
    assert _sample(metrics, "seekforge_cache_rows_total", result="miss") == 4


def test_an_early_exit_model_answers_each_rows_exit_layer_and_counts_them(exit_text_package: Path) -> None:
    import asyncio

    import grpc
    from google.protobuf import struct_pb2

    from seekforge.serve.proto import predict_pb2, predict_pb2_grpc

    reviews = ["tasty fresh the box", "not stale it a tea the box", "bland", "lovely lovely tea"]
    with running(exit_text_package, ServeConfig(max_wait_ms=5)) as (service, where):
        answer = httpx.post(f"http://127.0.0.1:{where.http_port}/v1/predict",
                            json={"records": [{"review": r} for r in reviews]}, timeout=30).json()  # fmt: skip
        metrics = httpx.get(f"http://127.0.0.1:{where.http_port}/metrics", timeout=30).text

        async def over_grpc() -> object:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{where.grpc_port}") as channel:
                records = [struct_pb2.Struct(fields={"review": struct_pb2.Value(string_value=r)}) for r in reviews]
                request = predict_pb2.PredictRequest(records=records)
                return await predict_pb2_grpc.PredictorStub(channel).Predict(request, timeout=30)

        response = asyncio.run(over_grpc())
    expected = service.predictor.predict([{"review": r} for r in reviews])["exit_layer"].tolist()
    assert [p["exit_layer"] for p in answer["predictions"]] == expected
    assert [p.exit_layer for p in response.predictions] == expected
    labels = {"role": "primary", "version": service.version}
    assert _sample(metrics, "seekforge_exit_layer_count", **labels) == len(reviews)
    assert _sample(metrics, "seekforge_exit_layer_sum", **labels) == sum(expected)
    assert _sample(metrics, "seekforge_exit_layer_bucket", **labels, le="1.0") == expected.count(1)


def test_a_fusion_model_answers_records_of_texts_numbers_and_base64_images(fusion_package: Path) -> None:
    import base64
    import io

    from PIL import Image

    png = io.BytesIO()
    picture = Image.new("RGB", (8, 8), (200, 10, 10))
    picture.save(png, format="PNG")
    photo = base64.b64encode(png.getvalue()).decode()
    records = [{"title": "fresh tasty lovely", "note": "red box", "x1": 0.4, "city": "oslo", "photo": photo,
                "recent": [0.5, -1.0], "clicks": ["home", "pay"]},
               {"title": "stale broken", "note": "blue bag", "x1": -1.5, "city": "paris", "photo": photo,
                "recent": "[2.5]", "clicks": None}]  # fmt: skip
    with running(fusion_package, ServeConfig(max_wait_ms=5), grpc=False) as (service, where):
        url = f"http://127.0.0.1:{where.http_port}/v1/predict"
        answer = httpx.post(url, json={"records": records}, timeout=30)
        missing = httpx.post(url, json={"records": [{k: v for k, v in records[0].items() if k != "photo"}]}, timeout=30)
    assert answer.status_code == 200, answer.text
    expected = list(service.predictor.predict([{**r, "photo": np.asarray(picture)} for r in records])["prediction"])
    assert [p["prediction"] for p in answer.json()["predictions"]] == expected == ["buy", "skip"]
    assert missing.status_code == 422 and "photo" in missing.text
    with running(fusion_package, ServeConfig(max_wait_ms=5), grpc=False) as (_, where):
        bad = httpx.post(f"http://127.0.0.1:{where.http_port}/v1/predict",
                         json={"records": [{**records[0], "recent": ["a", 1]}]}, timeout=30)  # fmt: skip
    assert bad.status_code == 422 and "sequence column 'recent' is declared as numbers, but item 0 is 'a'" in bad.text
