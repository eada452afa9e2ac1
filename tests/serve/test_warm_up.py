"""The warm-up prediction a served model makes before its first request passes the package's own checks,
including a text every record must have (a fine-tuned package's `missing: error`)."""

from __future__ import annotations

import logging
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

import seekforge
from seekforge.serve import ServeConfig
from tests.conftest import text_recipe
from tests.serve.conftest import running


def test_a_package_needing_every_text_warms_up_and_refuses_a_record_without_one(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"review": rng.choice(["tasty fresh", "stale bland"], size=40), "score": "x"})
    frame["score"] = np.where(frame["review"] == "tasty fresh", "great", "other")
    frame.to_json(tmp_path / "t.jsonl", orient="records", lines=True)
    recipe = text_recipe(str(tmp_path / "t.jsonl"), epochs=1)
    recipe["features"]["inputs"][0]["missing"] = "error"  # type: ignore[index]
    package = seekforge.run(recipe, runs_dir=tmp_path / "runs").package
    with (
        caplog.at_level(logging.WARNING),
        running(package, ServeConfig(), grpc=False) as (_, where),
        httpx.Client(base_url=f"http://127.0.0.1:{where.http_port}", timeout=60) as client,
    ):
        assert client.post("/v1/predict", json={"records": [{"review": "tasty fresh"}]}).status_code == 200
        refused = client.post("/v1/predict", json={"records": [{"review": None}]})
        assert refused.status_code in (400, 422) and "'review' is empty" in refused.text, refused.text
    assert not [r for r in caplog.records if "warm-up prediction" in r.getMessage()]
