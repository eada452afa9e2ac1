"""``seekforge studio`` as a real server: it prints its address, a run's new epoch reaches a follower
within 2 s, and it refuses to listen beyond this machine without keys."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.integration.cli import seekforge
from tests.studio.test_studio import write_run


def test_a_new_epoch_reaches_the_run_page_within_two_seconds(tmp_path: Path) -> None:
    pytest.importorskip("uvicorn")
    folder = write_run(tmp_path / "runs", "live", "20260101-000000", epochs=3)
    env = {**os.environ, "SEEKFORGE_NO_PROGRESS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "seekforge", "studio", "--runs", "runs", "--port", "0"],
                            cwd=tmp_path, stderr=subprocess.PIPE, text=True, env=env)  # fmt: skip
    try:
        line = proc.stderr.readline() if proc.stderr else ""
        found = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert found, line
        url = f"http://127.0.0.1:{found.group(1)}"
        assert httpx.get(f"{url}/api/runs").json()["runs"][0]["status"] == "running"
        with httpx.stream("GET", f"{url}/api/runs/live/20260101-000000/events", params={"since": 3},
                          timeout=10) as stream:  # fmt: skip
            lines = stream.iter_lines()
            assert next(lines) == "retry: 2000"
            written = time.monotonic()
            with (folder / "metrics.jsonl").open("a") as f:
                f.write(json.dumps({"epoch": 4, "train_loss": 0.1, "val_accuracy": 0.9}) + "\n")
            event = next(line for line in lines if line.startswith("data: "))
            assert time.monotonic() - written < 2.0
            assert next(line for line in lines if line.startswith("id: ")) == "id: 4"  # where a reconnection resumes
            with (folder / "metrics.jsonl").open("a") as f:
                f.write('{"epoch": 5, "train_loss": NaN, "grad_norm": Infinity}\n')  # a diverging run
            diverged = json.loads(next(line for line in lines if line.startswith("data: ")).removeprefix("data: "))
            (folder / "package").mkdir()
            (folder / "package" / "package.json").write_text("{}")
            assert next(line for line in lines if line.startswith("event: ")) == "event: done"  # finished: it ends
        assert json.loads(event.removeprefix("data: "))["epoch"] == 4
        assert diverged == {"epoch": 5, "train_loss": None, "grad_norm": None}
    finally:
        proc.terminate()
        proc.communicate(timeout=10)


def test_listening_beyond_this_machine_needs_keys(tmp_path: Path) -> None:
    proc = seekforge("studio", "--host", "0.0.0.0", cwd=tmp_path)
    assert proc.returncode == 2 and "needs --api-key-file" in proc.stderr and "Traceback" not in proc.stderr
    (tmp_path / "keys").write_text("\n")
    proc = seekforge("studio", "--host", "0.0.0.0", "--api-key-file", "keys", cwd=tmp_path)
    assert proc.returncode == 2 and "holds no key" in proc.stderr
