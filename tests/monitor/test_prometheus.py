"""Drift as Prometheus gauges: pushed to a Pushgateway (a local receiver here) and written for
node_exporter's textfile collector, with the values the monitor found."""

from __future__ import annotations

import http.server
import threading
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import make_tabular
from tests.integration.cli import seekforge
from tests.monitor.test_run import log_rows, shifted


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted((k, v) for k, v in s.labels.items() if k != "model_version"))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_drift_gauges_are_pushed_and_written(served_package: Path, tmp_path: Path) -> None:
    pushed: list[tuple[str, str, str]] = []

    class Gateway(http.server.BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            pushed.append((self.command, self.path, body))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    moved = tmp_path / "moved.db"
    log_rows(moved, served_package, [(time.time() - 60, shifted(make_tabular(600, seed=6)))])
    with http.server.HTTPServer(("127.0.0.1", 0), Gateway) as gateway:
        threading.Thread(target=gateway.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{gateway.server_address[1]}"
        proc = seekforge("monitor", str(served_package), "--log", str(moved), "-o", "r", "--push", url,
                         "--metrics-file", "drift.prom", cwd=tmp_path)  # fmt: skip
        gateway.shutdown()
    assert proc.returncode == 1, proc.stderr  # drift
    assert len(pushed) == 1 and pushed[0][1] == "/metrics/job/seekforge_monitor/model/tiny"
    written = (tmp_path / "drift.prom").read_text()
    for text in (pushed[0][2], written):
        samples = _samples(text)
        assert samples[("seekforge_drift", ())] == 1.0 and samples[("seekforge_drift_rows", ())] == 600.0
        assert samples[("seekforge_drift_enough_data", ())] == 1.0
        assert samples[("seekforge_feature_drifted", (("feature", "x1"), ("test", "psi")))] == 1.0
        assert samples[("seekforge_feature_drift_statistic", (("feature", "x1"), ("test", "psi")))] > 0.2
        assert samples[("seekforge_drift_last_check_timestamp_seconds", ())] > time.time() - 600
    labels = {s.labels["model_version"] for f in text_string_to_metric_families(written) for s in f.samples}
    assert len(labels) == 1 and labels.pop().startswith("tiny:")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--push", "localhost:9091"], "not an http:// or https:// URL of a Prometheus Pushgateway"),
        (["--metrics-file", "drift.txt"], "the textfile collector reads only *.prom files"),
        (["--push", "http://127.0.0.1:9"], "the Pushgateway refused or cannot be reached"),
    ],
)
def test_a_bad_target_is_a_clear_error(served_package: Path, tmp_path: Path, args: list[str], message: str) -> None:
    log = tmp_path / "log.db"
    log_rows(log, served_package, [(time.time() - 60, make_tabular(50, seed=1))])
    proc = seekforge("monitor", str(served_package), "--log", str(log), "-o", "r", *args, cwd=tmp_path)
    assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert (tmp_path / "r").is_dir() == args[1].startswith("http")  # a bad target is refused before any work
