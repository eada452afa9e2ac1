"""Vector indexes: exact and HNSW search, add and delete, checksums, and embedding with a text package."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from seekforge.core.errors import ConfigError, DataError, PackageError
from seekforge.index import (
    Searcher,
    TextEmbedder,
    VectorIndex,
    add_passages,
    build_index,
    check_embedder,
    delete_passages,
    new_index,
    normalised,
    open_index,
    read_corpus,
)

pytest.importorskip("usearch")


class _Vectors(TextEmbedder):
    """An embedder stand-in for index mechanics: the vectors are given."""

    def __init__(self, dim: int) -> None:
        self.package, self.field, self.version, self.sha256 = Path("pkg"), "text", "pkg:0", "0" * 64


def _index(vectors: np.ndarray, kind: str = "exact") -> VectorIndex:
    ids = [f"p{i}" for i in range(len(vectors))]
    return new_index(_Vectors(vectors.shape[1]), ids, [f"text {i}" for i in ids], normalised(vectors), kind=kind)


def _recall(found: list[list[str]], truth: list[list[str]]) -> float:
    return float(np.mean([len(set(f) & set(t)) / len(t) for f, t in zip(found, truth, strict=True)]))


def test_exact_and_hnsw_search_agree_and_survive_writing(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(3000, 32)).astype(np.float32)
    queries = rng.normal(size=(50, 32)).astype(np.float32)
    exact, graph = _index(vectors), _index(vectors, "hnsw")
    truth = [[h.id for h in hits] for hits in exact.search(queries, 10)]
    brute = np.argsort(-(normalised(queries) @ normalised(vectors).T), axis=1)[:, :10]
    assert truth == [[f"p{i}" for i in row] for row in brute]  # exact is exact, best first
    assert _recall([[h.id for h in hits] for hits in graph.search(queries, 10)], truth) >= 0.95
    for index, name in ((exact, "exact"), (graph, "hnsw")):
        reopened = open_index(index.write(tmp_path / name))
        assert reopened.kind == name and len(reopened) == 3000
        assert [[h.id for h in hits] for hits in reopened.search(queries, 10)] == [
            [h.id for h in hits] for hits in index.search(queries, 10)
        ]
    hit = exact.search(vectors[7], 1)[0][0]
    assert (hit.id, hit.text, round(hit.score, 5)) == ("p7", "text p7", 1.0)


@pytest.mark.parametrize("kind", ["exact", "hnsw"])
def test_added_and_deleted_passages_are_found_and_gone(kind: str) -> None:
    rng = np.random.default_rng(1)
    index = _index(rng.normal(size=(400, 16)).astype(np.float32), kind)
    extra = normalised(rng.normal(size=(3, 16)))
    grown = index.added(["n0", "n1", "n2"], ["a", "b", "c"], extra)
    assert len(grown) == 403 and len(index) == 400  # a copy: the opened index is unchanged
    assert [grown.search(v, 1)[0][0].id for v in extra] == ["n0", "n1", "n2"]
    smaller = grown.deleted(["n1", "p5"])
    assert len(smaller) == 401
    found = {h.id for hits in smaller.search(np.vstack([extra, index.vectors[5]]), 5) for h in hits}
    assert "n1" not in found and "p5" not in found and {"n0", "n2"} <= found
    with pytest.raises(DataError, match="ids already in the index: n0"):
        grown.added(["n0"], ["again"], extra[:1])
    with pytest.raises(DataError, match="ids not in the index: nope"):
        grown.deleted(["nope"])


def test_an_altered_index_file_is_refused(tmp_path: Path) -> None:
    folder = _index(np.eye(4, dtype=np.float32)).write(tmp_path / "ix")
    with pytest.raises(ConfigError, match="already exists"):
        _index(np.eye(4, dtype=np.float32)).write(folder)
    passages = folder / "passages.jsonl"
    passages.write_text(passages.read_text().replace("text p1", "text p9"))
    with pytest.raises(PackageError, match=r"passages\.jsonl was modified"):
        open_index(folder)
    with pytest.raises(PackageError, match="not a vector index"):
        open_index(tmp_path)


def test_an_index_is_queried_only_with_the_package_that_embedded_it(served_package: Path) -> None:
    index = _index(np.eye(4, dtype=np.float32))
    other = _Vectors(4)
    other.sha256 = "1" * 64
    with pytest.raises(ConfigError, match=r"embedded by .*pkg \(pkg:0\), not by .*their vectors do not compare"):
        check_embedder(index, other)
    with pytest.raises(ConfigError, match="an index embeds text with a text package's encoder, but its inputs are x1"):
        TextEmbedder(served_package)


def test_a_corpus_line_without_text_or_with_a_repeated_id_is_named(tmp_path: Path) -> None:
    path = tmp_path / "c.jsonl"
    path.write_text('{"id": "a", "text": "x"}\n{"id": "b", "text": "y"}\n{"id": "a", "text": "z"}\n')
    with pytest.raises(DataError, match=r"c.jsonl line 3: id 'a' repeats the one of .*c.jsonl line 1"):
        read_corpus(path, text="text", id_field=None)
    path.write_text('{"text": "x"}\n{"note": 1}\n')
    with pytest.raises(DataError, match=r"c.jsonl line 2: 'text' is empty"):
        read_corpus(path, text="text", id_field=None)
    path.write_text('{"text": "x"}\n{"text": "y"}\n')
    assert read_corpus(path, text="text", id_field=None) == (["1", "2"], ["x", "y"])
    with pytest.raises(DataError, match="no field 'body'; fields present: 'text'"):
        read_corpus(path, text="body", id_field=None)


def test_a_tiny_text_package_embeds_builds_grows_and_queries_its_index(tiny_text_package: Path, tmp_path: Path) -> None:
    corpus = tmp_path / "corpus.jsonl"
    texts = ["tasty fresh lovely tasty", "stale bland broken stale", "fresh lovely", "broken bland"]
    corpus.write_text("".join(json.dumps({"review": t}) + "\n" for t in texts))
    index, folder = build_index(tiny_text_package, corpus, output=tmp_path / "ix")
    assert (len(index), index.kind, index.meta["text_field"]) == (4, "exact", "review")
    searcher = Searcher(folder)
    assert searcher.search(["tasty fresh lovely tasty"], k=1)[0][0].id == "1"
    vectors = searcher.embedder(texts)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.allclose(vectors, index.vectors, atol=1e-6)  # the same texts embed the same way
    more = tmp_path / "more.jsonl"
    more.write_text(json.dumps({"id": "x", "review": "lovely tasty"}) + "\n")
    assert len(add_passages(folder, more)) == 5
    assert len(delete_passages(folder, ["1", "x"])) == 3
    assert {h.id for h in Searcher(folder).search(["lovely tasty"], k=5)[0]} == {"2", "3", "4"}
    with pytest.raises(ConfigError, match="already exists"):
        build_index(tiny_text_package, corpus, output=folder)
    meta = json.loads((folder / "index.json").read_text())
    meta_sha = meta["package_sha256"]
    assert len(meta_sha) == 64 and meta["count"] == 3


def test_a_graph_is_calibrated_to_the_target_recall_or_auto_searches_exactly() -> None:
    from seekforge.index import TARGET_RECALL

    rng = np.random.default_rng(2)
    centres = rng.normal(size=(20, 24)).astype(np.float32)
    clustered = centres[rng.integers(0, 20, size=2000)] + 0.3 * rng.normal(size=(2000, 24)).astype(np.float32)
    graph = _index(clustered, "hnsw")
    found = graph.meta["calibration"]
    assert (
        found["recall_at_10"] >= TARGET_RECALL and graph.meta["hnsw"]["expansion_search"] == found["expansion_search"]
    )
    assert graph.graph.expansion_search == found["expansion_search"]
    # no structure at all, and too few candidates allowed to find it: auto gives up the graph
    import seekforge.index._index as module

    noise = rng.normal(size=(60_000, 64)).astype(np.float32)
    small, module.MAX_EXPANSION = module.MAX_EXPANSION, 16
    try:
        plain = new_index(_Vectors(64), [str(i) for i in range(len(noise))], [""] * len(noise),
                          normalised(noise), kind="auto", hnsw={"expansion_search": 16, "expansion_add": 16})  # fmt: skip
    finally:
        module.MAX_EXPANSION = small
    assert plain.kind == "exact" and plain.graph is None and plain.meta["calibration"]["recall_at_10"] < TARGET_RECALL
