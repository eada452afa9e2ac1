"""``POST /v1/search``: an attached index answers with the served model's embeddings; without one, 404;
bad bodies 400; an index built with another package is refused before serving."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from seekforge.core.errors import ConfigError
from seekforge.serve import ServeConfig
from tests.serve.conftest import running

pytest.importorskip("usearch")


def test_search_answers_from_the_attached_index(tiny_text_package: Path, served_package: Path, tmp_path: Path) -> None:
    from seekforge.index import build_index

    corpus = tmp_path / "corpus.jsonl"
    texts = {"a": "tasty fresh lovely tasty", "b": "stale bland broken stale", "c": "lovely fresh"}
    corpus.write_text("".join(json.dumps({"id": k, "review": v}) + "\n" for k, v in texts.items()))
    _, folder = build_index(tiny_text_package, corpus, output=tmp_path / "ix")
    with (
        running(tiny_text_package, ServeConfig(index=folder), grpc=False) as (service, where),
        httpx.Client(base_url=f"http://127.0.0.1:{where.http_port}", timeout=60) as client,
    ):
        response = client.post("/v1/search", json={"queries": [texts["b"], texts["a"]], "k": 2})
        assert response.status_code == 200, response.text
        body = response.json()
        assert [row[0]["id"] for row in body["hits"]] == ["b", "a"] and all(len(row) == 2 for row in body["hits"])
        assert body["hits"][0][0]["score"] == pytest.approx(1.0, abs=1e-5)
        assert body["model_version"] == service.version
        for bad, fragment in (({"queries": "x"}, "must be a JSON object"), ({"queries": ["x"], "k": 0}, "k must be"),
                              ({"queries": ["x"], "top": 3}, "unknown key"), ({"queries": [1]}, "queries must be")):  # fmt: skip
            refused = client.post("/v1/search", json=bad)
            assert refused.status_code == 400 and fragment in refused.json()["detail"], refused.text
    with (
        running(tiny_text_package, ServeConfig(), grpc=False) as (_, where),
        httpx.Client(base_url=f"http://127.0.0.1:{where.http_port}", timeout=60) as client,
    ):
        off = client.post("/v1/search", json={"queries": ["x"]})
        assert off.status_code == 404 and "--index" in off.json()["detail"]
    with (
        pytest.raises(ConfigError, match="an index embeds text with a text package"),
        running(served_package, ServeConfig(index=folder), grpc=False),
    ):
        pass
