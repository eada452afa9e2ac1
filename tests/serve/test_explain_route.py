"""``POST /v1/explain`` (off by default: tests/serve/test_http.py): each record's attributions add up to
its explained output, and too many records, a bad field, an unknown method or one the inputs refuse are
answered with the right status."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from seekforge.serve import ServeConfig
from tests.serve.conftest import running

GOOD = {"x1": 0.5, "x2": -1.0, "city": "oslo", "member": "yes"}
OTHER = {"x1": -3.0, "x2": 2.0, "city": "rome", "member": "no"}


def test_explanations_add_up_and_bad_requests_are_refused(served_package: Path) -> None:
    config = ServeConfig(explain=True, explain_max_rows=3)
    with (
        running(served_package, config, grpc=False) as (service, where),
        httpx.Client(base_url=f"http://127.0.0.1:{where.http_port}", timeout=60) as client,
    ):
        response = client.post("/v1/explain", json={"records": [GOOD, OTHER]}, headers={"x-request-id": "e1"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["method"] == "shap-exact" and body["completeness"]["passed"] and body["request_id"] == "e1"
        predicted = service.predictor.predict([GOOD, OTHER])
        for answer, label in zip(body["explanations"], predicted["prediction"], strict=True):
            assert answer["prediction"] == label and set(answer["attributions"]) == set(GOOD)
            assert answer["base"] + sum(answer["attributions"].values()) == pytest.approx(answer["value"], abs=1e-6)
        too_many = client.post("/v1/explain", json={"records": [GOOD] * 4})
        assert too_many.status_code == 413 and "at most 3: split it" in too_many.json()["detail"]
        bad = client.post("/v1/explain", json={"records": [{**GOOD, "x1": "tall"}]})
        assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "x1"
        method = client.post("/v1/explain", json={"records": [GOOD], "method": "lime"})
        assert method.status_code == 400 and "'lime' is not one of" in method.json()["detail"]
        ig = client.post("/v1/explain", json={"records": [GOOD], "method": "ig"})  # categories: no path to integrate
        assert ig.status_code == 400 and "use --method shap" in ig.json()["detail"]
        one = client.post("/v1/explain", json={"records": [GOOD]}).json()["explanations"][0]
        assert any(abs(v) > 1e-3 for v in one["attributions"].values())  # the background is not the request
        assert client.post("/v1/predict", json={"records": [GOOD]}).status_code == 200  # predictions go on


def test_a_fusion_model_is_explained_input_by_input_over_its_held_out_rows(fusion_package: Path) -> None:
    record = {"title": "fresh tasty", "note": "red box", "x1": 0.3, "city": "oslo",
              "photo": [[[10, 20, 30]] * 8] * 8, "recent": [0.5, 1.5], "clicks": ["home"]}  # fmt: skip
    with running(fusion_package, ServeConfig(explain=True), grpc=False) as (_, where):
        response = httpx.post(f"http://127.0.0.1:{where.http_port}/v1/explain", json={"records": [record]}, timeout=60)
    assert response.status_code == 200, response.text
    body = response.json()
    answer = body["explanations"][0]
    assert body["method"] == "shap-exact" and body["completeness"]["passed"]
    assert list(answer["attributions"]) == ["title", "note", "x1", "city", "photo", "recent", "clicks"]
    assert answer["base"] + sum(answer["attributions"].values()) == pytest.approx(answer["value"], abs=1e-6)
