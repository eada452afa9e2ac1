from __future__ import annotations

import asyncio
import filecmp
import json
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pytest
from google.protobuf import struct_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from seekforge.serve import ServeConfig
from seekforge.serve.proto import predict_pb2, predict_pb2_grpc
from tests.serve.conftest import Gate, open_when, running

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"x1": 0.5, "x2": -1.0, "city": "oslo", "member": "yes"}


def record(values: dict) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    message.update(values)
    return message


def call(port: int, work, metadata=()):
    async def main():
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            return await work(predict_pb2_grpc.PredictorStub(channel), channel)

    return asyncio.run(main())


@pytest.fixture(scope="module")
def server(served_package: Path):
    with running(served_package, ServeConfig(max_batch_rows=8, max_wait_ms=10), http=False) as found:
        yield found


def test_unary_predict_matches_the_package(server) -> None:
    service, where = server

    async def work(stub, _):
        return await stub.Predict(
            predict_pb2.PredictRequest(records=[record(GOOD), record({})], request_id="g1"), timeout=30
        )

    response = call(where.grpc_port, work)
    assert response.request_id == "g1" and response.model_version == service.version
    expected = service.predictor.predict([GOOD, {}])
    assert [p.prediction.string_value for p in response.predictions] == list(expected["prediction"])
    assert response.predictions[0].proba["buy"] == pytest.approx(float(expected["proba_buy"][0]), abs=1e-6)


def test_streaming_answers_each_request_in_order(server) -> None:
    _, where = server

    async def work(stub, _):
        async def requests():
            for i in range(5):
                yield predict_pb2.PredictRequest(records=[record(GOOD)] * (i + 1), request_id=f"s{i}")

        return [r async for r in stub.PredictStream(requests(), timeout=30)]

    responses = call(where.grpc_port, work)
    assert [r.request_id for r in responses] == [f"s{i}" for i in range(5)]
    assert [len(r.predictions) for r in responses] == [1, 2, 3, 4, 5]


def test_a_streams_messages_are_answered_together_and_its_first_error_ends_it(
    served_package: Path, server, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def work(stub, _):
        async def requests():
            for i in range(6):  # sent at once: each is started as it arrives, not after the last answer
                yield predict_pb2.PredictRequest(records=[record(GOOD)], request_id=f"t{i}")

        return [r.request_id async for r in stub.PredictStream(requests(), timeout=30)]

    with running(served_package, ServeConfig(max_batch_rows=8, max_wait_ms=10), http=False) as (service, where):
        model = Gate(service.predictor.decoded)  # the first message's batch runs until the others are queued
        monkeypatch.setattr(service.predictor, "decoded", model)
        everyone = lambda: model.calls and len(model.calls[0][0]) + service.batcher.queued_rows == 6  # noqa: E731
        opener = threading.Thread(target=open_when, args=(model, everyone))
        opener.start()
        assert call(where.grpc_port, work) == [f"t{i}" for i in range(6)]
        opener.join()
        assert service.batcher.stats.batches == 2  # answered one by one, they would take 6 batches
    service, where = server

    async def failing(stub, _):
        async def requests():
            for i in range(3):
                yield predict_pb2.PredictRequest(
                    records=[record(GOOD if i != 2 else {"x1": "tall"})], request_id=f"f{i}"
                )
            # then nothing, and no half-close: a message written as the server ends the call would fail
            # on the client with grpc's own INTERNAL error instead of the server's status
            await asyncio.Event().wait()

        got: list[str] = []
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            async for response in stub.PredictStream(requests(), timeout=30):
                got.append(response.request_id)
        return got, failed.value.code()

    assert call(where.grpc_port, failing) == (["f0", "f1"], grpc.StatusCode.INVALID_ARGUMENT)


def test_invalid_fields_are_invalid_argument_with_each_field(server) -> None:
    _, where = server

    async def work(stub, _):
        with pytest.raises(grpc.aio.AioRpcError) as failed:
            await stub.Predict(predict_pb2.PredictRequest(records=[record({"x1": "tall", "zz": 1})]), timeout=30)
        return failed.value

    error = call(where.grpc_port, work)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    listed = json.loads(error.details().split("\n", 1)[1])
    assert {(e["record"], e["field"]) for e in listed} == {(0, "x1"), (0, "zz")}


def test_health_and_model_info(server) -> None:
    _, where = server

    async def work(stub, channel):
        health = health_pb2_grpc.HealthStub(channel)
        overall = await health.Check(health_pb2.HealthCheckRequest(service=""))
        named = await health.Check(health_pb2.HealthCheckRequest(service="seekforge.serve.v1.Predictor"))
        info = await stub.GetModel(predict_pb2.GetModelRequest())
        return overall.status, named.status, json.loads(info.json)

    overall, named, info = call(where.grpc_port, work)
    assert overall == named == health_pb2.HealthCheckResponse.SERVING
    assert info["name"] == "tiny" and [f["name"] for f in info["inputs"]] == ["x1", "x2", "city", "member"]


def test_api_key_in_metadata(served_package: Path) -> None:
    with running(served_package, ServeConfig(api_keys=frozenset({"k1"})), http=False) as (_, where):

        async def work(stub, _):
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stub.Predict(predict_pb2.PredictRequest(records=[record(GOOD)]), timeout=30)
            ok = await stub.Predict(
                predict_pb2.PredictRequest(records=[record(GOOD)]), timeout=30, metadata=(("x-api-key", "k1"),)
            )
            return refused.value.code(), len(ok.predictions)

        assert call(where.grpc_port, work) == (grpc.StatusCode.UNAUTHENTICATED, 1)


def test_both_protocols_share_one_batcher(served_package: Path) -> None:
    import httpx

    with running(served_package, ServeConfig(max_wait_ms=1)) as (service, where):
        body = httpx.post(f"http://127.0.0.1:{where.http_port}/v1/predict", json={"records": [GOOD]}).json()

        async def work(stub, _):
            return await stub.Predict(predict_pb2.PredictRequest(records=[record(GOOD)]), timeout=30)

        response = call(where.grpc_port, work)
        assert response.predictions[0].proba["buy"] == pytest.approx(body["predictions"][0]["proba"]["buy"])
        assert service.batcher.stats.rows == 2


def test_generated_stubs_are_up_to_date_with_the_proto(tmp_path: Path) -> None:
    done = subprocess.run(
        ["bash", str(ROOT / "scripts" / "generate-protos"), str(tmp_path)],
        env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    generated = tmp_path / "seekforge" / "serve" / "proto"
    names = ["predict_pb2.py", "predict_pb2.pyi", "predict_pb2_grpc.py"]
    _same, different, missing = filecmp.cmpfiles(generated, ROOT / "src/seekforge/serve/proto", names, shallow=False)
    assert not different and not missing, f"stale stubs {different + missing}: run scripts/generate-protos"
