"""`seekforge serve` as a user runs it: a real process, real sockets, SIGTERM to stop it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import yaml

from seekforge.serve import log_state
from tests.integration.cli import seekforge

GOOD = {"x1": 0.5, "x2": -1.0, "city": "oslo", "member": "yes"}


def start(package: Path, tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], dict]:
    ready = tmp_path / "ready.json"
    env = {**os.environ, "SEEKFORGE_NO_PROGRESS": "1", "PYTHONWARNINGS": "ignore"}
    command = [sys.executable, "-m", "seekforge", "serve", str(package), "--http-port", "0", "--grpc-port", "0"]
    proc = subprocess.Popen([*command, "--ready-file", str(ready), *args], env=env, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(f"seekforge serve did not start:\n{proc.communicate()[1]}")
        time.sleep(0.05)
    return proc, json.loads(ready.read_text())


def test_sigterm_under_load_answers_every_accepted_request_and_closes_the_log(
    served_package: Path, tmp_path: Path
) -> None:
    log = tmp_path / "predictions.db"
    proc, where = start(served_package, tmp_path, "--log", str(log), "--max-wait-ms", "2")
    url = f"http://127.0.0.1:{where['http_port']}/v1/predict"
    outcomes: list[object] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                try:
                    outcomes.append(http.post(url, json={"records": [GOOD] * 3}).status_code)
                except httpx.TransportError as exc:  # after the listener closed: refused, never half-answered
                    outcomes.append(type(exc).__name__)
                    return

    clients = [threading.Thread(target=client) for _ in range(4)]
    for thread in clients:
        thread.start()
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    stderr = proc.communicate(timeout=60)[1]
    assert proc.returncode == 0, stderr
    stop.set()
    for thread in clients:
        thread.join(30)
    assert "serving tiny (onnxruntime)" in stderr and "stopped" in stderr
    answered = outcomes.count(200)
    assert answered > 0
    assert set(outcomes) <= {200, 503, "ConnectError", "RemoteProtocolError", "ReadError"}, set(outcomes)
    state = log_state(log)
    assert state.rows == 3 * answered  # every answered row was logged before the process exited
    assert (state.running_sessions, state.killed_sessions, state.lost_rows) == (0, 0, 0)


def test_sighup_swaps_in_a_changed_package_beside_a_canary_answering_its_share(
    served_package: Path, other_version: Path, tmp_path: Path
) -> None:
    from seekforge.core.package import read_manifest
    from seekforge.core.variants import model_version

    old, new = (model_version(read_manifest(p)) for p in (served_package, other_version))
    live = tmp_path / "live"
    shutil.copytree(served_package, live)
    proc, where = start(live, tmp_path, "--no-log", "--canary", f"{other_version}:50%")
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{where['http_port']}", timeout=30) as http:

            def version(request_id: str) -> str:
                response = http.post("/v1/predict", json={"records": [GOOD]}, headers={"x-request-id": request_id})
                assert response.status_code == 200, response.text
                return str(response.json()["model_version"])

            first = {f"id{i}": version(f"id{i}") for i in range(40)}
            assert set(first.values()) == {old, new}  # the canary answers its share
            to_primary = next(i for i, v in first.items() if v == old)
            staged = tmp_path / "staged"  # the new package is put in place whole, then the server told
            shutil.copytree(other_version, staged)
            shutil.rmtree(live)
            staged.rename(live)
            proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 60
            while version(to_primary) != new:
                assert time.monotonic() < deadline, "the changed package was never swapped in"
                time.sleep(0.05)
            assert http.get("/v1/model").json()["models"]["primary"]["version"] == new
    finally:
        proc.send_signal(signal.SIGTERM)
        stderr = proc.communicate(timeout=60)[1]
    assert proc.returncode == 0, stderr
    assert f"canary {new} (torch)" in stderr and "primary model swapped" in stderr


def test_kill_9_leaves_a_log_that_opens_and_counts_its_loss(served_package: Path, tmp_path: Path) -> None:
    log = tmp_path / "predictions.db"
    proc, where = start(served_package, tmp_path, "--log", str(log))
    with httpx.Client(timeout=30) as http:
        for _ in range(20):
            assert (
                http.post(f"http://127.0.0.1:{where['http_port']}/v1/predict", json={"records": [GOOD]}).status_code
                == 200
            )
    proc.kill()
    proc.communicate(timeout=30)
    state = log_state(log)
    assert state.killed_sessions == 1
    assert state.rows + state.lost_rows == 20
    with sqlite3.connect(log) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_serving_a_raw_onnx_package_never_imports_torch(served_package: Path) -> None:
    code = (
        "import sys, asyncio\n"
        "from seekforge.serve import ModelService\n"
        "from seekforge.serve._http import create_app\n"
        f"service = ModelService({str(served_package)!r})\n"
        "create_app(service)\n"
        "print(service.backend, sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'pandas')))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "onnxruntime []"


def test_deployment_recipes_print(served_package: Path, tmp_path: Path) -> None:
    docker = seekforge("serve", str(served_package), "--print-dockerfile", cwd=tmp_path, check=True).stdout
    assert 'pip install --constraint /tmp/constraints.txt "/wheels/seekforge-' in docker
    assert '-py3-none-any.whl[runtime,serve]"' in docker and "download.pytorch.org" not in docker
    assert "HEALTHCHECK" in docker and "/readyz" in docker and "EXPOSE 8000 50051" in docker
    assert f"--build-context model={served_package.resolve()}" in docker
    assert ":latest" not in docker
    printed = seekforge("serve", str(served_package), "--print-k8s", "--image", "reg.example/tiny:1.2", "--threads",
                        "2", cwd=tmp_path, check=True).stdout  # fmt: skip
    k8s = list(yaml.safe_load_all(printed))
    assert [d["kind"] for d in k8s] == ["StatefulSet", "Service", "HorizontalPodAutoscaler"]
    pod = k8s[0]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    assert container["image"] == "reg.example/tiny:1.2" and container["resources"]["requests"]["cpu"] == "2"
    assert container["args"][container["args"].index("--threads") + 1] == "2"
    log = container["args"][container["args"].index("--log") + 1]
    assert log.startswith(container["volumeMounts"][0]["mountPath"] + "/")  # the log is on the pod's volume
    assert k8s[0]["spec"]["volumeClaimTemplates"][0]["metadata"]["name"] == container["volumeMounts"][0]["name"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert k8s[2]["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert k8s[2]["spec"]["scaleTargetRef"]["kind"] == "StatefulSet"
    custom = seekforge("serve", str(served_package), "--print-k8s", "--image", "reg.example/tiny@sha256:" + "a" * 64,
                       "--autoscale", "in-flight", cwd=tmp_path, check=True).stdout  # fmt: skip
    assert list(yaml.safe_load_all(custom))[2]["spec"]["metrics"][0]["pods"]["metric"]["name"] == (
        "seekforge_requests_in_flight"
    )
    for image in ([], ["--image", "reg.example/tiny:latest"], ["--image", "reg.example/tiny"]):
        refused = seekforge("serve", str(served_package), "--print-k8s", *image, cwd=tmp_path)
        assert refused.returncode == 2 and "by a tag other than latest or a digest" in refused.stderr


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--api-key-file", "missing.txt"], "--api-key-file missing.txt: cannot read it"),
        (["--api-key-file", "empty.txt"], "holds no key"),
        (["--log-retention", "soon"], "--log-retention: 'soon' is not a duration"),
        (["--no-http", "--no-grpc"], "leave nothing to serve"),
        (["--backend", "openvino"], "openvino"),
        (["--set", "nope=1"], "--set 'nope=1': not a serving option of the form key=value"),
        (["--set", "read_timeout_s=-1"], "--set read_timeout_s: Input should be greater than 0, got -1"),
        (["--canary", "nowhere:20%"], "nowhere"),
        (["--canary", "registry:tiny@challenger:120%"], "--canary: Input should be less than 100"),
    ],
)
def test_bad_options_exit_2_with_the_fix(served_package: Path, tmp_path: Path, args: list[str], words: str) -> None:
    (tmp_path / "empty.txt").write_text("\n\n")
    done = seekforge("serve", str(served_package), "--http-port", "0", "--grpc-port", "0", *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert words in done.stderr and "Traceback" not in done.stderr
