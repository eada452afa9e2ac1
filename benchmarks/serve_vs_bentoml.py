"""Claim: `seekforge serve` answers more requests per second than BentoML serving the same model, at every
concurrency, and at concurrency 32 its served throughput is >= 0.9 of the model's offline batched
throughput (the physical limit is 1.0).

The same two models on both servers: a tiny tabular classifier (its ONNX export, preprocessing inside)
and the reviews MiniLM classifier (--package; its ONNX export, tokenized in Python). Both servers run the
very same predictor (seekforge's onnxruntime predictor, one per process) and turn its outputs into the
same per-record answers, so what differs is the serving: HTTP handling, batching, and on seekforge's side
the validation of every record against the package's schema and the prediction log, which BentoML's
service is spared. BentoML (its current release, in its own virtual
environment given by --bento-python, with seekforge installed there too) runs a ``@bentoml.service`` with
one worker whose API is ``batchable`` (adaptive batching, at most --max-batch-rows rows); seekforge runs
``seekforge serve`` with dynamic batching at the same limit and its prediction log on (its default).
wrk (Debian's package) sends single-record requests to each in turn, in --rounds slices of --seconds in
all at each concurrency, so that a slow spell of the machine falls on both alike.

    python benchmarks/serve_vs_bentoml.py --package runs/reviews/<stamp>/package \\
        --bento-python /path/to/bento-venv/bin/python [--seconds 20] [--rounds 4]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from serve_load import offline_rows_per_second, pooled, start_server, tabular_package, with_onnx, wrk  # noqa: E402

SERVICE = """
import os
from pathlib import Path

import bentoml

from seekforge.serve._model import open_predictor, rows_of

MAX_BATCH = int(os.environ["BENCH_MAX_BATCH"])


@bentoml.service(workers=1)
class Model:
    def __init__(self) -> None:
        self.predictor, _ = open_predictor(Path(os.environ["SEEKFORGE_PACKAGE"]), "onnxruntime", threads=None,
                                           verify=False)

    @bentoml.api(batchable=True, max_batch_size=MAX_BATCH, max_latency_ms=10_000)
    def predict(self, records: list[dict]) -> list[dict]:
        return rows_of(*self.predictor.decoded(records), self.predictor.classes)
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_bento(python: str, package: Path, work: Path, max_batch: int) -> tuple[subprocess.Popen[bytes], int]:
    """``bentoml serve`` of the service above on a free port, in its own process group, once it answers."""
    folder = work / f"bento-{time.monotonic_ns()}"
    folder.mkdir()
    (folder / "service.py").write_text(SERVICE)
    port = free_port()
    env = {**os.environ, "SEEKFORGE_PACKAGE": str(package), "BENCH_MAX_BATCH": str(max_batch),
           "BENTOML_HOME": str(work / "bentoml-home"), "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}  # fmt: skip
    command = [python, "-m", "bentoml", "serve", "service:Model", "--host", "127.0.0.1", "--port", str(port)]
    log = (folder / "serve.log").open("w")
    proc = subprocess.Popen(command, cwd=folder, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 180
    while True:
        try:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/readyz")
            with urllib.request.urlopen(request, timeout=2):
                break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop(proc)
                raise SystemExit(
                    f"bentoml serve did not start:\n{(folder / 'serve.log').read_text()[-3000:]}"
                ) from None
            time.sleep(0.2)
    return proc, port


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(60)
    except ProcessLookupError:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(60)


def check_same_answer(ports: dict[str, tuple[int, str]], record: dict) -> None:
    """Both servers give the same prediction for ``record`` (they run the same model)."""
    answers = {}
    for name, (port, path) in ports.items():
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}{path}", data=json.dumps({"records": [record]}).encode(),
            headers={"Content-Type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(request, timeout=30) as response:
            answer = json.loads(response.read())
        row = answer["predictions"][0] if isinstance(answer, dict) else answer[0]
        answers[name] = row["prediction"]
    if len(set(map(str, answers.values()))) != 1:
        raise SystemExit(f"the servers disagree on one record: {answers}")


def compare(label: str, package: Path, record: dict, args: argparse.Namespace, work: Path) -> tuple[list[tuple], float]:
    """Both servers at each concurrency, in turn; then, BentoML stopped, seekforge's served rate at the top
    concurrency against the model's offline batched rate, in alternating slices. Returns the rows and the
    served / offline ratio."""
    body = work / f"{label}.json"
    body.write_text(json.dumps({"records": [record]}))
    batching = ["--max-batch-rows", str(args.max_batch_rows), "--max-wait-ms", str(args.max_wait_ms)]
    seekforge_proc, where = start_server(package, work, work / f"{label}.db", "--backend", "onnxruntime", *batching)
    bento_proc, bento_port = start_bento(args.bento_python, package, work, args.max_batch_rows)
    servers = {"seekforge": (where["http_port"], "/v1/predict"), "BentoML": (bento_port, "/predict")}
    rows = []
    try:
        check_same_answer(servers, record)
        for c in [int(x) for x in args.concurrency.split(",")]:
            slices: dict[str, list[dict]] = {name: [] for name in servers}
            for _ in range(args.rounds):
                for name, (port, path) in servers.items():
                    slices[name].append(wrk(port, body, c, args.seconds / args.rounds, work, path=path))
            for name in servers:
                rows.append((label, name, c, pooled(slices[name])))
                print(f"{label} {name} c={c}: {rows[-1][3]['rps']:.1f} req/s", flush=True)
        stop(bento_proc)  # the ratio is measured with seekforge's server alone on the machine
        top = max(int(x) for x in args.concurrency.split(","))
        served, offline = [], []
        for _ in range(args.rounds):
            served.append(wrk(where["http_port"], body, top, args.seconds / args.rounds, work))
            offline.append(offline_rows_per_second(package, [record], args.max_batch_rows, args.seconds / args.rounds))
        ratio = pooled(served)["rps"] / (sum(offline) / len(offline))
        print(f"{label}: served at c={top} {pooled(served)['rps']:.1f} req/s, offline batched "
              f"{sum(offline) / len(offline):.1f} rows/s, in alternating slices", flush=True)  # fmt: skip
    finally:
        seekforge_proc.send_signal(signal.SIGTERM)
        seekforge_proc.wait(60)
        stop(bento_proc)
    return rows, ratio


def main() -> None:
    from seekforge.core.hardware import hardware

    print(f"machine: {hardware().summary()}", flush=True)
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--package", type=Path, help="the reviews MiniLM package (left out when not given)")
    parser.add_argument("--bento-python", required=True, help="python of a venv with bentoml and seekforge")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--concurrency", default="1,8,32")
    parser.add_argument("--max-batch-rows", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    args = parser.parse_args()
    os.environ.setdefault("SEEKFORGE_NO_PROGRESS", "1")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    version = subprocess.run([args.bento_python, "-c", "import bentoml; print(bentoml.__version__)"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    print(f"BentoML {version}", flush=True)
    rows: list[tuple] = []
    ratios: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        models = [("tabular", tabular_package(work), {"x1": 0.5, "x2": -1.0, "city": "oslo", "member": "yes"})]
        if args.package is not None:
            from seekforge.datasets import load_builtin

            texts = load_builtin("builtin:reviews/test")["review"].tolist()
            models.append(
                ("reviews", with_onnx(args.package, work), {"review": sorted(texts, key=len)[len(texts) // 2]})
            )
        for label, package, record in models:
            found, ratios[label] = compare(label, package, record, args, work)
            rows += found
    print(f"\n{'model':<8} {'server':<10} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6}")
    for model, name, c, r in rows:
        print(f"{model:<8} {name:<10} {c:>4} {r['rps']:9.1f} {r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['errors']:>6}")
    got = {(m, n, c): r for m, n, c, r in rows}
    print()
    levels = [int(x) for x in args.concurrency.split(",")]
    for model, ratio in ratios.items():
        for c in levels:
            ours, theirs = got[(model, "seekforge", c)], got[(model, "BentoML", c)]
            print(f"{model} c={c}: seekforge / BentoML throughput {ours['rps'] / theirs['rps']:.2f}x, "
                  f"p99 {ours['p99_ms']:.1f} vs {theirs['p99_ms']:.1f} ms")  # fmt: skip
        bound = "(target >= 0.9)" if model == "reviews" else "(HTTP-bound: the model costs microseconds a row)"
        print(f"{model}: served at c={max(levels)} / offline batched ({args.max_batch_rows} rows): {ratio:.2f} {bound}")


if __name__ == "__main__":
    main()
