"""Claim: `seekforge serve --cache-rows N` answers a stream of repeated records faster than the model does.

A stream of single-record requests draws its records from a pool of --pool distinct records with Zipf
(s = --zipf, 1.1 by default) popularity: a few records come again and again, most rarely. Two servers of
the same package run at once, one with ``--cache-rows`` (--cache-rows) and one without; wrk (Debian's
package) sends both the same stream in turn, in --rounds slices of --seconds in all, so that a slow spell
of the machine falls on both alike. The table gives requests per second, p50 and p99 of each, the hit
ratio the cached server counted in /metrics, and the ratios. Packages: the reviews MiniLM classifier
(--package, served on its ONNX export; its records are test-split reviews) and a tiny tabular model
(numeric values drawn once per pool record).

    python benchmarks/serve_cache.py [--package runs/reviews/<stamp>/package] [--seconds 20] [--rounds 4]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from serve_load import WRK_DONE, pooled, start_server, tabular_package, with_onnx, wrk  # noqa: E402

WRK_SCRIPT = (
    """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local bodies = {}
for line in io.lines(os.getenv("SEEKFORGE_BODY")) do bodies[#bodies + 1] = line end
local i = math.random(#bodies)
request = function()
  i = i % #bodies + 1
  return wrk.format(nil, nil, nil, bodies[i])
end
"""
    + WRK_DONE
)


def zipf_stream(pool: list[dict], length: int, s: float, seed: int) -> list[str]:
    """``length`` request bodies; the record of rank k comes with probability proportional to k^-s."""
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(pool) + 1) ** s
    ranks = rng.choice(len(pool), size=length, p=weights / weights.sum())
    order = rng.permutation(len(pool))  # which record holds which rank
    return [json.dumps({"records": [pool[order[r]]]}) for r in ranks]


def hit_ratio(port: int) -> float:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as response:
        text = response.read().decode()
    counts = {
        s.labels["result"]: s.value
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "seekforge_cache_rows_total"
    }
    return counts.get("hit", 0.0) / max(1.0, sum(counts.values()))


def compare(label: str, package: Path, pool: list[dict], args: argparse.Namespace, work: Path) -> list[tuple]:
    bodies = work / f"{label}.jsonl"
    bodies.write_text("\n".join(zipf_stream(pool, 200_000, args.zipf, seed=0)) + "\n")
    rows = []
    servers = {
        "cache": start_server(package, work, work / f"{label}-cache.db", "--cache-rows", str(args.cache_rows)),
        "no cache": start_server(package, work, work / f"{label}-plain.db"),
    }
    try:
        for c in [int(x) for x in args.concurrency.split(",")]:
            slices: dict[str, list[dict]] = {name: [] for name in servers}
            for _ in range(args.rounds):
                for name, (_, where) in servers.items():
                    slices[name].append(
                        wrk(where["http_port"], bodies, c, args.seconds / args.rounds, work, lua=WRK_SCRIPT)
                    )
            for name in servers:
                rows.append((label, name, c, pooled(slices[name])))
        ratio = hit_ratio(servers["cache"][1]["http_port"])
    finally:
        for proc, _ in servers.values():
            proc.send_signal(signal.SIGTERM)
            proc.wait(60)
    print(f"{label}: hit ratio counted by the cached server: {ratio:.3f}", flush=True)
    return rows


def main() -> None:
    from seekforge.core.hardware import hardware

    print(f"machine: {hardware().summary()}", flush=True)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", type=Path, help="the reviews MiniLM package (left out when not given)")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", default="8,32")
    parser.add_argument("--pool", type=int, default=5000)
    parser.add_argument("--zipf", type=float, default=1.1)
    parser.add_argument("--cache-rows", type=int, default=1000)
    args = parser.parse_args()
    os.environ.setdefault("SEEKFORGE_NO_PROGRESS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    rows: list[tuple] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rng = np.random.default_rng(1)
        tabular = [
            {"x1": round(float(a), 4), "x2": round(float(b), 4), "city": str(c), "member": str(m)}
            for a, b, c, m in zip(
                rng.normal(size=args.pool), rng.normal(size=args.pool),
                rng.choice(["paris", "oslo", "rome"], args.pool), rng.choice(["yes", "no"], args.pool), strict=True,
            )
        ]  # fmt: skip
        rows += compare("tabular", tabular_package(work), tabular, args, work)
        if args.package is not None:
            from seekforge.datasets import load_builtin

            texts = [t for split in ("train", "test") for t in load_builtin(f"builtin:reviews/{split}")["review"]]
            pool = [{"review": str(t)} for t in texts[: args.pool]]  # 4,000 reviews at most
            rows += compare("reviews", with_onnx(args.package, work), pool, args, work)
    print(f"\nZipf s = {args.zipf} over {args.pool} records, --cache-rows {args.cache_rows}")
    print(f"{'model':<8} {'server':<9} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for model, name, c, r in rows:
        print(f"{model:<8} {name:<9} {c:>4} {r['rps']:9.1f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['errors']:>6}")
    got = {(m, n, c): r for m, n, c, r in rows}
    print()
    for model, _, c, _ in rows[::2]:
        on, off = got[(model, "cache", c)], got[(model, "no cache", c)]
        print(f"{model} at concurrency {c}: throughput cache / no cache {on['rps'] / off['rps']:.2f}x, "
              f"p50 {on['p50_ms']:.2f} vs {off['p50_ms']:.2f} ms ({on['p50_ms'] / off['p50_ms'] - 1:+.0%} with the cache)")  # fmt: skip


if __name__ == "__main__":
    main()
