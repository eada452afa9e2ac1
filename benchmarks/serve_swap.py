"""Claim: `seekforge serve` swaps in a new model version under load with no failed request.

Two versions of one tabular model (trained from two seeds, each with its ONNX export) are registered; the
server serves ``registry:tiny@champion`` and follows the alias. A closed-loop load of --concurrency
clients (a second process, aiohttp, one record per request) runs for --seconds; halfway through, the
alias is promoted to the second version and the server swaps it in. Beside it, the same load against
what a swap is without this: the server stopped (SIGTERM, drained) and started again on the same port
with the new version. Each request's send time, latency, status and answering version are recorded; the
table gives requests, failures (non-2xx and connection errors), p99 before, during (from the change to
one second after the first answer of the new version) and after, and the longest stretch without a
successful answer.

    python benchmarks/serve_swap.py [--seconds 60] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RECORD = {"x1": 0.5, "x2": -1.0, "city": "oslo", "member": "yes"}


def load_generator(url: str, concurrency: int, seconds: float, out: Path) -> None:
    """Closed-loop clients. Writes ``{"start": monotonic time, "results": [[sent, latency_s, status or error
    name, version], ...]}`` (sent in seconds since start; the monotonic clock is the machine's, shared by
    processes)."""
    import aiohttp

    start = time.monotonic()

    async def main() -> list[list[object]]:
        results: list[list[object]] = []
        body = json.dumps({"records": [RECORD]})
        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

            async def worker() -> None:
                while (sent := time.monotonic()) - start < seconds:
                    try:
                        async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                            answer = await r.json(content_type=None)
                            version = answer.get("model_version") if isinstance(answer, dict) else None
                            results.append([sent - start, time.monotonic() - sent, r.status, version])
                    except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                        results.append([sent - start, time.monotonic() - sent, type(exc).__name__, None])
                        await asyncio.sleep(0.01)  # a refused connection returns at once: do not spin

            await asyncio.gather(*(worker() for _ in range(concurrency)))
        return results

    results = asyncio.run(main())
    out.write_text(json.dumps({"start": start, "results": results}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(reference: str, port: int, work: Path, *args: str) -> subprocess.Popen[bytes]:
    ready = work / f"ready-{time.monotonic_ns()}.json"
    env = {**os.environ, "SEEKFORGE_NO_PROGRESS": "1"}
    command = [sys.executable, "-m", "seekforge", "serve", reference, "--http-port", str(port), "--no-grpc",
               "--no-log", "--ready-file", str(ready), *args]  # fmt: skip
    proc = subprocess.Popen(command, env=env, stderr=subprocess.DEVNULL)
    while not ready.exists():
        if proc.poll() is not None:
            raise SystemExit(f"seekforge serve exited {proc.returncode}")
        time.sleep(0.05)
    return proc


def packages(work: Path) -> tuple[Path, Path]:
    sys.path.insert(0, str(HERE.parent))
    from tests.conftest import make_tabular, tabular_recipe

    from seekforge.export import export_package
    from seekforge.pipeline import run

    make_tabular(400).to_csv(work / "tabular.csv", index=False)
    made = []
    for seed in (0, 1):
        recipe = {**tabular_recipe(str(work / "tabular.csv")), "seed": seed}
        made.append(run(recipe, runs_dir=work / f"runs{seed}").package)
        export_package(made[-1])
    return made[0], made[1]


def start_load(port: int, args: argparse.Namespace, out: Path) -> subprocess.Popen[bytes]:
    url = f"http://127.0.0.1:{port}/v1/predict"
    command = [sys.executable, __file__, "--load", url, "--concurrency", str(args.concurrency),
               "--seconds", str(args.seconds), "--out", str(out)]  # fmt: skip
    return subprocess.Popen(command)


def hot_swap(first: Path, second: Path, work: Path, args: argparse.Namespace) -> tuple[dict, float]:
    from seekforge.registry import Registry

    registry = Registry(work / "registry.db")
    v1, v2 = registry.register(first), registry.register(second)
    registry.promote("tiny", v1)
    port = free_port()
    server = serve("registry:tiny@champion", port, work, "--registry", str(work / "registry.db"),
                   "--set", "follow_s=0.5")  # fmt: skip
    try:
        out = work / "swap.json"
        load = start_load(port, args, out)
        time.sleep(args.seconds / 2)
        changed = time.monotonic()
        registry.promote("tiny", v2)
        load.wait()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    return json.loads(out.read_text()), changed


def restart(first: Path, second: Path, work: Path, args: argparse.Namespace) -> tuple[dict, float]:
    live = work / "live"
    shutil.copytree(first, live)
    port = free_port()
    server = serve(str(live), port, work)
    out = work / "restart.json"
    load = start_load(port, args, out)
    try:
        time.sleep(args.seconds / 2)
        changed = time.monotonic()
        server.send_signal(signal.SIGTERM)  # drains: queued requests are answered, then it exits
        server.wait(60)
        shutil.rmtree(live)
        shutil.copytree(second, live)
        server = serve(str(live), port, work)
        load.wait()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    return json.loads(out.read_text()), changed


def summary(results: list, changed_at: float, new_version: str) -> dict[str, object]:
    """Figures of one scenario; ``changed_at`` is seconds since the load started."""
    ok = [r for r in results if r[2] == 200]
    first_new = min((r[0] + r[1] for r in ok if r[3] == new_version), default=float("inf"))
    window = (changed_at, first_new + 1.0)

    def p99(rows: list) -> float:
        return float(np.percentile([r[1] for r in rows], 99) * 1000) if rows else float("nan")

    done = sorted(r[0] + r[1] for r in ok)
    gap = max((b - a for a, b in itertools.pairwise(done)), default=0.0)
    return {
        "requests": len(results),
        "failed": sum(r[2] != 200 for r in results),
        "p99_before": p99([r for r in ok if r[0] + r[1] < window[0]]),
        "p99_during": p99([r for r in ok if window[0] <= r[0] + r[1] <= window[1]]),
        "p99_after": p99([r for r in ok if r[0] > window[1]]),
        "switch_s": first_new - changed_at,
        "gap_ms": gap * 1000,
        "new_share_after": sum(r[3] == new_version for r in ok if r[0] > window[1])
        / max(1, sum(1 for r in ok if r[0] > window[1])),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--load", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.load:
        load_generator(args.load, args.concurrency, args.seconds, args.out)
        return
    from seekforge.core.hardware import hardware
    from seekforge.core.package import read_manifest
    from seekforge.core.variants import model_version

    print(f"machine: {hardware().summary()}", flush=True)
    os.environ.setdefault("SEEKFORGE_NO_PROGRESS", "1")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        first, second = packages(work)
        new = model_version(read_manifest(second))
        rows = []
        for label, scenario in (("hot swap (registry alias)", hot_swap), ("stop + start", restart)):
            print(f"running: {label}", flush=True)
            recorded, changed = scenario(first, second, work, args)
            rows.append((label, summary(recorded["results"], changed - recorded["start"], new)))
    print(
        f"\nconcurrency {args.concurrency}, {args.seconds:g} s, new version at about {args.seconds / 2:g} s; p99 in ms"
    )
    print(f"{'scenario':<27} {'requests':>8} {'failed':>6} {'p99 before':>10} {'p99 during':>10} {'p99 after':>9} "
          f"{'switch s':>8} {'gap ms':>7} {'new after':>9}")  # fmt: skip
    for label, s in rows:
        print(f"{label:<27} {s['requests']:>8} {s['failed']:>6} {s['p99_before']:>10.1f} {s['p99_during']:>10.1f} "
              f"{s['p99_after']:>9.1f} {s['switch_s']:>8.2f} {s['gap_ms']:>7.0f} {s['new_share_after']:>9.3f}")  # fmt: skip
    swap = rows[0][1]
    print(f"\nhot swap: {swap['failed']} failed requests (target 0); stop + start: {rows[1][1]['failed']}")


if __name__ == "__main__":
    main()
