"""Claim: the prediction log's writer spends less than half the CPU per row without an index on request
ids (the log as shipped, indexed by time only) than with one, as logs had before.

Both logs are written through PredictionLog's own group write, in turn, group by group, so a slow spell
falls on both alike: groups of ``--rows`` one-row requests, each with a random request id (a uuid4, as the
server makes them) and the tabular example's record and answer. CPU time of the writing thread only.

    python benchmarks/log_writer.py [--groups 400] [--rows 200]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
import uuid
from pathlib import Path

from seekforge.core.hardware import hardware
from seekforge.core.prediction_log import LogEntry, PredictionLog

RECORD = {"x1": 0.5, "x2": -1.0, "city": "oslo", "member": "yes"}
ANSWER = {"prediction": "buy", "proba": {"buy": 0.9797579050064087, "skip": 0.020242094993591309}}


def open_log(path: Path, *, request_index: bool) -> PredictionLog:
    log = PredictionLog(path, package="bench", model_version="m:1", backend="onnxruntime", flush_seconds=3600)
    if request_index:
        with sqlite3.connect(path) as db:
            db.execute("CREATE INDEX predictions_request_bench ON predictions(request_id, position)")
    return log


def main() -> None:
    print(f"machine: {hardware().summary()}", flush=True)  # every figure depends on it
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=400)
    parser.add_argument("--rows", type=int, default=200, help="one-row requests in a group (50 ms at 4,000/s)")
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="seekforge-log-bench-") as tmp:
        logs = {"time only (shipped)": open_log(Path(tmp) / "a.db", request_index=False),
                "time and request id": open_log(Path(tmp) / "b.db", request_index=True)}  # fmt: skip
        cpu = dict.fromkeys(logs, 0.0)
        for _ in range(args.groups):
            for name, log in logs.items():
                entries = [LogEntry(time.time(), uuid.uuid4().hex, 1.2, [RECORD], [ANSWER]) for _ in range(args.rows)]
                before = time.thread_time()
                log._write(entries)
                cpu[name] += time.thread_time() - before
        for log in logs.values():
            log.close()
    rows = args.groups * args.rows
    print(f"{args.groups} groups of {args.rows} one-row requests ({rows:,} rows a log)")
    print(f"{'index':<22} {'us CPU a row':>13}")
    for name, seconds in cpu.items():
        print(f"{name:<22} {seconds / rows * 1e6:>13.1f}")
    ratio = cpu["time and request id"] / cpu["time only (shipped)"]
    print(f"with the request index / without: {ratio:.2f}x (claim: >= 2)")
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
