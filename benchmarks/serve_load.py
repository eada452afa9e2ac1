"""Claims of `seekforge serve` under load, each measured in this run:

1. Dynamic batching on vs off, reviews MiniLM classifier (onnxruntime): throughput ratio >= 3x at
   concurrency 32.
2. Served throughput (batching on, concurrency 32) / offline batched throughput of the same backend
   (``Predictor.predict`` on batches of --max-batch-rows rows, in this process): >= 0.7.
3. Tiny tabular model: served requests per second >= 60% of a bare FastAPI no-op endpoint (same uvicorn,
   same body, parsed as JSON), at each concurrency. Both servers run at once and the load goes to each in
   turn, in --rounds slices of --seconds in all, so that a slow spell of the machine falls on both alike.

Load comes from a second process on loopback: wrk (Debian's package) for HTTP, and a closed-loop grpc.aio
client with a bounded number of requests in flight for gRPC, at concurrency 1, 8 and 32. Each request
carries one record (a real review text from the test split; a tabular row). Every server runs as its own
``seekforge serve`` process, with its prediction log on. The machine has 2 cores shared by server and
load generator, so absolute figures are low; the ratios are what the claims are about.

    python benchmarks/serve_load.py --package runs/reviews/<stamp>/package [--seconds 10] [--rounds 5]
        [--only reviews|tabular] [--tabular-variants='--no-log;--no-grpc']
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from seekforge.core.hardware import hardware

HERE = Path(__file__).resolve().parent
#: wrk's summary as one line, ``RESULT {json}``, which :func:`wrk` reads.
WRK_DONE = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %d, "seconds": %f, "non2xx": %d, "socket_errors": %d, ' ..
    '"p50_ms": %f, "p99_ms": %f}\\n', summary.requests, summary.duration / 1e6, e.status,
    e.connect + e.read + e.write + e.timeout, latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
"""
WRK_SCRIPT = (
    """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open(os.getenv("SEEKFORGE_BODY"), "rb")
wrk.body = f:read("*a")
f:close()
"""
    + WRK_DONE
)
NOOP_APP = """
import json
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from seekforge.core.hardware import hardware
app = FastAPI()

@app.post("/v1/predict")
async def predict(request: Request):
    body = json.loads(await request.body())
    return JSONResponse({"predictions": [{"prediction": None} for _ in body["records"]]})
"""


def start_server(package: Path, work: Path, log: Path, *args: str) -> tuple[subprocess.Popen[bytes], dict]:
    """A `seekforge serve` process on free ports, once it serves, and its ready record (ports, pid)."""
    ready = work / f"ready-{time.monotonic_ns()}.json"
    env = {**os.environ, "SEEKFORGE_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    command = [sys.executable, "-m", "seekforge", "serve", str(package), "--http-port", "0", "--grpc-port", "0"]
    proc = subprocess.Popen([*command, "--ready-file", str(ready), "--log", str(log), *args], env=env)
    while not ready.exists():
        if proc.poll() is not None:
            raise SystemExit(f"seekforge serve exited {proc.returncode}")
        time.sleep(0.1)
    return proc, json.loads(ready.read_text())


@contextlib.contextmanager
def server(package: Path, work: Path, *args: str):
    """A `seekforge serve` process for the ``with`` block; yields its ready record; SIGTERM after."""
    proc, ready = start_server(package, work, work / f"log-{time.monotonic_ns()}.db", *args)
    try:
        yield ready
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)


@contextlib.contextmanager
def noop_server(work: Path):
    (work / "noop_app.py").write_text(NOOP_APP)
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command = [sys.executable, "-m", "uvicorn", "noop_app:app", "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen([*command, "--no-access-log"], cwd=work)
    try:
        import httpx

        for _ in range(300):
            try:
                httpx.get(f"http://127.0.0.1:{port}/docs")
                break
            except httpx.TransportError:
                time.sleep(0.1)
        yield {"http_port": port}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)


def wrk(
    port: int,
    body: Path,
    concurrency: int,
    seconds: float,
    work: Path,
    path: str = "/v1/predict",
    lua: str = WRK_SCRIPT,
) -> dict:
    """wrk against ``path`` for ``seconds``; ``lua`` reads the file $SEEKFORGE_BODY (``body``)."""
    script = work / f"post-{abs(hash(lua))}.lua"
    script.write_text(lua)
    threads = 1 if concurrency < 4 else 2
    url = f"http://127.0.0.1:{port}{path}"
    command = ["wrk", f"-t{threads}", f"-c{concurrency}", f"-d{seconds:g}s", "--timeout", "30s", "-s", str(script), url]
    done = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "SEEKFORGE_BODY": str(body)})
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"wrk failed: {done.stdout}\n{done.stderr}")
    result = json.loads(line[7:])
    result["rps"] = result["requests"] / result["seconds"]
    result["errors"] = result["non2xx"] + result["socket_errors"]
    return result


def pooled(slices: list[dict]) -> dict:
    """One figure from wrk runs in slices: requests over seconds, the median of the slices' percentiles."""
    import statistics

    requests, seconds = sum(r["requests"] for r in slices), sum(r["seconds"] for r in slices)
    return {
        "requests": requests,
        "seconds": seconds,
        "rps": requests / seconds,
        "p50_ms": statistics.median(r["p50_ms"] for r in slices),
        "p99_ms": statistics.median(r["p99_ms"] for r in slices),
        "errors": sum(r["errors"] for r in slices),
    }


def grpc_load(port: int, record: dict, concurrency: int, seconds: float) -> dict:
    """Closed loop: ``concurrency`` workers, each with one unary request in flight at a time."""
    import grpc
    from google.protobuf import struct_pb2

    from seekforge.serve.proto import predict_pb2, predict_pb2_grpc

    message = struct_pb2.Struct()
    message.update(record)
    request = predict_pb2.PredictRequest(records=[message])

    async def main() -> dict:
        latencies: list[float] = []
        errors = 0
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = predict_pb2_grpc.PredictorStub(channel)
            await stub.Predict(request, timeout=60)
            end = time.perf_counter() + seconds

            async def worker() -> None:
                nonlocal errors
                while time.perf_counter() < end:
                    started = time.perf_counter()
                    try:
                        await stub.Predict(request, timeout=30)
                        latencies.append(time.perf_counter() - started)
                    except grpc.aio.AioRpcError:
                        errors += 1

            started = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(concurrency)))
            elapsed = time.perf_counter() - started
        latencies.sort()
        pick = lambda q: latencies[min(int(q * len(latencies)), len(latencies) - 1)] * 1000 if latencies else 0.0  # noqa: E731
        return {"rps": len(latencies) / elapsed, "errors": errors, "p50_ms": pick(0.5), "p99_ms": pick(0.99)}

    return asyncio.run(main())


def grpc_in_subprocess(port: int, record: dict, concurrency: int, seconds: float) -> dict:
    """The gRPC load from a second process, like wrk's."""
    code = (
        f"import json, sys; sys.path.insert(0, {str(HERE)!r})\n"
        "from serve_load import grpc_load\n"
        f"print('RESULT', json.dumps(grpc_load({port}, json.loads({json.dumps(record)!r}), {concurrency}, {seconds})))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"gRPC load failed: {done.stderr}")
    return json.loads(line[7:])


def offline_rows_per_second(package: Path, records: list[dict], batch: int, seconds: float) -> float:
    """``Predictor.predict`` on batches of ``batch`` records, in this process, on the same backend."""
    from seekforge.serve._model import open_predictor

    predictor, _ = open_predictor(package, "onnxruntime", threads=None, verify=False)
    chunk = (records * (batch // len(records) + 1))[:batch]
    predictor.predict(chunk)
    rows = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        predictor.predict(chunk)
        rows += batch
    return rows / (time.perf_counter() - started)


def with_onnx(package: Path, work: Path) -> Path:
    """A copy of ``package`` with its fp32 ONNX export (the input is never modified)."""
    from seekforge.core.package import read_manifest

    if "onnx" in read_manifest(package, verify=False).get("exports", {}):
        return package
    from seekforge.export import export_package

    copy = work / "package"
    shutil.copytree(package, copy)
    export_package(copy)
    return copy


def tabular_package(work: Path) -> Path:
    sys.path.insert(0, str(HERE.parent))
    from tests.conftest import make_tabular, tabular_recipe

    from seekforge.export import export_package
    from seekforge.pipeline import run

    make_tabular(400).to_csv(work / "tabular.csv", index=False)
    package = run(tabular_recipe(str(work / "tabular.csv")), runs_dir=work / "runs").package
    export_package(package)
    return package


def main() -> None:
    print(f"machine: {hardware().summary()}", flush=True)  # every figure depends on it
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", type=Path, help="the reviews MiniLM package")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=5, help="slices of the tabular comparison, servers in turn")
    parser.add_argument("--only", choices=["reviews", "tabular"], help="run one half of the benchmark")
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--max-batch-rows", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument(
        "--tabular-variants",
        default="",
        help="';'-separated flag sets of further tabular servers, e.g. '--no-log;--no-grpc'",
    )
    args = parser.parse_args()
    os.environ.setdefault("SEEKFORGE_NO_PROGRESS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    levels = [int(c) for c in args.concurrency.split(",")]
    rows: list[tuple[str, str, int, dict]] = []
    batching = ["--max-batch-rows", str(args.max_batch_rows), "--max-wait-ms", str(args.max_wait_ms)]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.only != "tabular":
            if args.package is None:
                raise SystemExit("--package (the reviews MiniLM package) is needed, or --only tabular")
            offline, offline_one = reviews_load(args, work, levels, batching, rows)
        if args.only != "reviews":
            tabular_load(args, work, levels, batching, rows)

    print(f"\n{'load':<14} {'server':<30} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    print("-" * 86)
    for load, label, c, r in rows:
        print(f"{load:<14} {label:<30} {c:>4} {r['rps']:9.1f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['errors']:>6}")
    got = {(load, label, c): r for load, label, c, r in rows}
    top = max(levels)
    print()
    if args.only != "tabular":
        for proto in ("http", "grpc"):
            on, off = (
                got[(f"reviews {proto}", "batching on", top)]["rps"],
                got[(f"reviews {proto}", "batching off", top)]["rps"],
            )
            print(f"reviews {proto}: batching on / off at concurrency {top}: {on / off:.2f}x (target >= 3)")
        print(f"reviews: offline batch {args.max_batch_rows} / batch 1 throughput: {offline / offline_one:.2f}x "
              f"({offline:.1f} / {offline_one:.1f} rows/s): the model's own gain from batching here")  # fmt: skip
        served = got[("reviews http", "batching on", top)]["rps"]
        print(f"reviews: offline batched ({args.max_batch_rows} rows) {offline:.1f} rows/s; served http / offline: "
              f"{served / offline:.2f} (target >= 0.7)")  # fmt: skip
    if args.only != "reviews":
        for c in levels:
            noop = got[("tabular http", "FastAPI no-op", c)]["rps"]
            for label in sorted({label for load, label, *_ in rows if load == "tabular http"} - {"FastAPI no-op"}):
                target = " (target >= 0.60)" if label == "seekforge" else ""
                ratio = got[("tabular http", label, c)]["rps"] / noop
                print(f"tabular: {label} / FastAPI no-op at concurrency {c}: {ratio:.2f}{target}")
    print(f"errors in all runs: {sum(r['errors'] for *_, r in rows)}")


def reviews_load(
    args: argparse.Namespace, work: Path, levels: list[int], batching: list[str], rows: list
) -> tuple[float, float]:
    """The reviews model served with batching on and off over HTTP and gRPC, then offline; returns the
    offline rows per second at --max-batch-rows and at batch 1."""
    from seekforge.datasets import load_builtin

    reviews = with_onnx(args.package, work)
    texts = load_builtin("builtin:reviews/test")["review"].tolist()
    text = sorted(texts, key=len)[len(texts) // 2]  # a review of median length
    review_record = {"review": text}
    (work / "review.json").write_text(json.dumps({"records": [review_record]}))
    for label, extra in (("batching on", batching), ("batching off", ["--no-batching"])):
        with server(reviews, work, "--backend", "onnxruntime", *extra) as where:
            for c in levels:
                rows.append(
                    ("reviews http", label, c, wrk(where["http_port"], work / "review.json", c, args.seconds, work))
                )
            for c in levels:
                rows.append(
                    ("reviews grpc", label, c, grpc_in_subprocess(where["grpc_port"], review_record, c, args.seconds))
                )
    offline = offline_rows_per_second(reviews, [review_record], args.max_batch_rows, args.seconds)
    return offline, offline_rows_per_second(reviews, [review_record], 1, args.seconds)


def tabular_load(args: argparse.Namespace, work: Path, levels: list[int], batching: list[str], rows: list) -> None:
    """The tiny tabular model served, against a FastAPI no-op. All servers run at once, and the load goes
    to each in turn, in --rounds slices, so that a slow spell of the machine falls on all alike; each
    waits idle while another is loaded. ``--tabular-variants`` adds seekforge servers started with other
    flags (``--no-log``, ``--no-grpc``), to tell what each part of the served process costs."""
    tabular = tabular_package(work)
    tabular_record = {"x1": 0.5, "x2": -1.0, "city": "oslo", "member": "yes"}
    (work / "tabular.json").write_text(json.dumps({"records": [tabular_record]}))
    variants = [v.split() for v in args.tabular_variants.split(";") if v.strip()]
    with contextlib.ExitStack() as stack:
        servers = {"seekforge": stack.enter_context(server(tabular, work, *batching))}
        for flags in variants:
            servers["seekforge " + " ".join(flags)] = stack.enter_context(server(tabular, work, *batching, *flags))
        servers["FastAPI no-op"] = stack.enter_context(noop_server(work))
        for c in levels:
            slices: dict[str, list[dict]] = {label: [] for label in servers}
            for _ in range(args.rounds):
                for label, where in servers.items():
                    slices[label].append(
                        wrk(where["http_port"], work / "tabular.json", c, args.seconds / args.rounds, work)
                    )
            for label, taken in slices.items():
                rows.append(("tabular http", label, c, pooled(taken)))


if __name__ == "__main__":
    main()
