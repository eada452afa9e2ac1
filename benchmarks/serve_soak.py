"""Claims of `seekforge serve` over time and under abuse, each measured in this run:

1. Soak: --soak-seconds (default 5 minutes) at 80% of the capacity measured first (wrk, concurrency 32,
   closed loop), open loop from a second process: zero errors, resident memory growth <= 10% (from the
   sample after the first 30 s to the last).
2. kill -9 under load: the prediction log opens cleanly afterwards (integrity check), and the loss is
   counted: answered rows that never reached the log, from the client's count, beside what
   ``log_state`` reports.
3. schemathesis against the server's OpenAPI document finds no 500s.

The model is the tiny tabular classifier of the tests (raw-input ONNX, served by onnxruntime), so the
server's own machinery, not the model, is what runs for five minutes.

    python benchmarks/serve_soak.py [--soak-seconds 300] [--examples 300]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seekforge.core.hardware import hardware

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from serve_load import start_server, tabular_package, wrk  # noqa: E402

RECORD = {"x1": 0.5, "x2": -1.0, "city": "oslo", "member": "yes"}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def open_loop(port: int, rate: float, seconds: float, *, connections: int = 64, on_tick=None) -> dict:
    """Requests sent at a fixed rate whatever the answers' pace, over persistent HTTP/1.1 connections."""
    body = json.dumps({"records": [RECORD]}).encode()
    request = (
        f"POST /v1/predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    tickets: asyncio.Queue[float] = asyncio.Queue()
    statuses: dict[str, int] = {}
    latencies: list[float] = []

    async def connection() -> None:
        reader = writer = None
        while True:
            due = await tickets.get()
            if due < 0:
                break
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                status = head.split(b" ", 2)[1].decode()
                length = next(
                    int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")
                )
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - due)
            except (OSError, asyncio.IncompleteReadError) as exc:
                status = type(exc).__name__
                writer = None
            statuses[status] = statuses.get(status, 0) + 1

    workers = [asyncio.create_task(connection()) for _ in range(connections)]
    start = time.perf_counter()
    sent = 0
    next_tick = start + 5
    while (now := time.perf_counter()) < start + seconds:
        due = start + sent / rate
        if due > now:
            await asyncio.sleep(due - now)
        tickets.put_nowait(due)
        sent += 1
        if on_tick is not None and now >= next_tick:
            on_tick(now - start)
            next_tick += 5
    for _ in workers:
        tickets.put_nowait(-1.0)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - start
    latencies.sort()
    p = lambda q: latencies[min(int(q * len(latencies)), len(latencies) - 1)] * 1000 if latencies else float("nan")  # noqa: E731
    return {"sent": sent, "rate": sent / elapsed, "statuses": statuses, "p50_ms": p(0.5), "p99_ms": p(0.99)}


def soak(package: Path, work: Path, seconds: float) -> None:
    log = work / "soak.db"
    proc, where = start_server(package, work, log)
    try:
        (work / "body.json").write_text(json.dumps({"records": [RECORD]}))
        capacity = wrk(where["http_port"], work / "body.json", 32, 10, work)["rps"]
        rate = 0.8 * capacity
        samples: list[tuple[float, float]] = []
        result = asyncio.run(
            open_loop(where["http_port"], rate, seconds, on_tick=lambda t: samples.append((t, rss_mb(proc.pid))))
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)
    errors = sum(n for status, n in result["statuses"].items() if status != "200")
    base = next((rss for t, rss in samples if t >= 30), samples[0][1])
    growth = (samples[-1][1] - base) / base * 100
    print(f"\nsoak: capacity {capacity:.0f} req/s (wrk, concurrency 32); sent {result['sent']} requests at "
          f"{result['rate']:.0f} req/s for {seconds:.0f} s (target {rate:.0f}); statuses {result['statuses']}; "
          f"p50 {result['p50_ms']:.1f} ms, p99 {result['p99_ms']:.1f} ms")  # fmt: skip
    print(f"soak: errors {errors} (target 0); resident memory {base:.1f} MB at 30 s -> {samples[-1][1]:.1f} MB "
          f"at {samples[-1][0]:.0f} s: {growth:+.1f}% (target <= +10%)")  # fmt: skip
    print(
        "soak: RSS samples (s, MB): " + ", ".join(f"{t:.0f}:{m:.1f}" for t, m in samples[:: max(len(samples) // 12, 1)])
    )


def kill_under_load(package: Path, work: Path) -> None:
    from seekforge.serve import log_state

    log = work / "killed.db"
    proc, where = start_server(package, work, log)

    async def load_then_kill() -> dict:
        task = asyncio.create_task(open_loop(where["http_port"], 300, 8))
        await asyncio.sleep(5)
        proc.kill()
        return await task

    result = asyncio.run(load_then_kill())
    proc.wait(30)
    answered = result["statuses"].get("200", 0)
    with sqlite3.connect(log) as db:
        integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    state = log_state(log)
    print(f"\nkill -9 under load (300 req/s): client got {answered} answers; the log opens ({integrity}) with "
          f"{state.rows} rows; {answered - state.rows} answered rows are missing from it; log_state counts "
          f"{state.lost_rows} lost in {state.killed_sessions} killed session")  # fmt: skip


def schemathesis(package: Path, work: Path, examples: int) -> None:
    st = shutil.which("schemathesis", path=str(Path(sys.executable).parent)) or shutil.which("schemathesis")
    if st is None:
        print("\nschemathesis: not installed (pip install schemathesis)")
        return
    proc, where = start_server(package, work, work / "schema.db")
    try:
        url = f"http://127.0.0.1:{where['http_port']}/openapi.json"
        command = [st, "run", url, "--checks", "not_a_server_error", "--max-examples", str(examples), "--workers", "2"]
        done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "NO_COLOR": "1"}, cwd=work)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    summary = [line for line in done.stdout.splitlines() if line.strip()][-12:]
    print(f"\nschemathesis ({examples} examples per operation, check not_a_server_error): exit {done.returncode}")
    print("\n".join(summary))


def main() -> None:
    print(f"machine: {hardware().summary()}", flush=True)  # every figure depends on it
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--soak-seconds", type=float, default=300.0)
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--skip-soak", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("SEEKFORGE_NO_PROGRESS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        package = tabular_package(work)
        schemathesis(package, work, args.examples)
        kill_under_load(package, work)
        if not args.skip_soak:
            soak(package, work, args.soak_seconds)


if __name__ == "__main__":
    main()
