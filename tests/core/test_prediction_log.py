from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from seekforge.core.errors import SeekforgeError
from seekforge.core.prediction_log import LogEntry, PredictionLog, log_state


def entry(n: int, ts: float | None = None) -> LogEntry:
    return LogEntry(
        ts=ts if ts is not None else time.time(),
        request_id="r",
        latency_ms=1.5,
        inputs=[{"x": float(i), "c": "a"} for i in range(n)],
        outputs=[{"prediction": "yes", "proba": {"yes": 0.75, "no": 0.25}} for _ in range(n)],
    )


def test_rows_are_written_with_their_session_and_the_session_closes(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = PredictionLog(path, package="pkg", model_version="m:1", backend="onnxruntime", flush_seconds=0.05)
    log.append(entry(3))
    log.append(entry(2))
    log.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = db.execute("SELECT session, model_version, backend, inputs, outputs FROM predictions").fetchall()
    assert len(rows) == 5
    assert rows[0][:3] == (1, "m:1", "onnxruntime")
    assert json.loads(rows[1][3]) == {"x": 1.0, "c": "a"}
    assert json.loads(rows[0][4])["proba"] == {"yes": 0.75, "no": 0.25}
    columns = db.execute("SELECT ts, request_id, position, latency_ms FROM predictions ORDER BY id").fetchall()
    assert [c[2] for c in columns] == [0, 1, 2, 0, 1]  # each row's place in its request, in order
    assert all(isinstance(ts, float) and rid == "r" and latency == 1.5 for ts, rid, _, latency in columns)
    state = log_state(path)
    assert (state.rows, state.sessions, state.running_sessions, state.killed_sessions, state.lost_rows) == (
        5,
        1,
        0,
        0,
        0,
    )


def test_a_second_session_appends(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    for _ in range(2):
        log = PredictionLog(path, package="pkg", model_version="m:1", backend="torch")
        log.append(entry(1))
        log.close()
    assert log_state(path).rows == 2 and log_state(path).sessions == 2


def test_the_log_is_indexed_by_time_only(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    PredictionLog(path, package="pkg", model_version="m:1", backend="torch").close()
    with sqlite3.connect(path) as db:  # as a log made before keeping no index on request ids
        db.execute("CREATE INDEX predictions_request ON predictions(request_id, position)")
    log = PredictionLog(path, package="pkg", model_version="m:1", backend="torch")
    log.append(entry(2))
    log.close()
    db = sqlite3.connect(path)
    indexes = db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'predictions'")
    assert [name for (name,) in indexes] == ["predictions_ts"]
    assert log_state(path).rows == 2


def test_text_is_logged_as_it_was_given(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = PredictionLog(path, package="p", model_version="v", backend="torch")
    text = 'caf\u00e9 "quoted" \\ back\nslash \U0001f600'
    log.append(LogEntry(time.time(), "12", 1.0, [{"review": text, "n": 10**15}], [{"prediction": "1.0"}]))
    log.close()
    request_id, inputs, outputs = (
        sqlite3.connect(path).execute("SELECT request_id, inputs, outputs FROM predictions").fetchone()
    )
    assert request_id == "12"  # text, though it reads as a number
    assert json.loads(inputs) == {"review": text, "n": 10**15}
    assert json.loads(outputs) == {"prediction": "1.0"}


def test_values_json_cannot_hold_are_logged_as_null_and_images_as_channel_means(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = PredictionLog(path, package="p", model_version="v", backend="torch", image_fields=["img"])
    image = np.zeros((4, 4, 3), dtype=np.uint8)
    image[..., 0] = 255
    log.append(LogEntry(time.time(), "r", 1.0, [{"x": float("nan"), "img": image}], [{"prediction": np.float32(2.5)}]))
    log.close()
    inputs, outputs = sqlite3.connect(path).execute("SELECT inputs, outputs FROM predictions").fetchone()
    assert json.loads(inputs) == {"x": None, "img": {"channel_means": [1.0, 0.0, 0.0]}}
    assert json.loads(outputs) == {"prediction": 2.5}


def test_old_rows_are_purged_past_the_retention(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = PredictionLog(path, package="p", model_version="v", backend="torch", retention_seconds=3600)
    log.append(entry(2, ts=time.time() - 7200))
    log.append(entry(1))
    log.close()
    assert log_state(path).rows == 1


def test_rows_are_committed_every_flush_seconds_or_at_once_when_flushed(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = PredictionLog(path, package="p", model_version="v", backend="torch", flush_seconds=0.05)
    log.append(entry(3))
    deadline = time.monotonic() + 30
    while log_state(path).rows < 3 and time.monotonic() < deadline:  # nobody asks: the writer's own timer
        time.sleep(0.01)
    assert log_state(path).rows == 3
    log.close()
    log = PredictionLog(path, package="p", model_version="v", backend="torch", flush_seconds=600)
    log.append(entry(2))
    assert log_state(path).rows == 3  # the writer sleeps for ten minutes
    assert log.flush(60)
    assert log_state(path).rows == 5 and log.written == 2
    log.close()
    assert log.flush(0)  # nothing left to write


def test_a_full_queue_drops_and_counts_instead_of_blocking(tmp_path: Path) -> None:
    log = PredictionLog(
        tmp_path / "log.db", package="p", model_version="v", backend="torch", max_pending=2, flush_seconds=600
    )  # the writer sleeps until close: the first request fills the queue
    for _ in range(51):
        log.append(entry(2))
    log.close()
    state = log_state(tmp_path / "log.db")
    assert (state.rows, state.dropped_rows) == (2, 100)


KILLED = """
import os, signal, sys, time
from pathlib import Path
from seekforge.core.prediction_log import LogEntry, PredictionLog
log = PredictionLog(Path(sys.argv[1]), package="p", model_version="v", backend="torch", flush_seconds=600)
for _ in range(20):
    log.append(LogEntry(time.time(), "r", 1.0, [{"x": 1.0}] * 10, [{"prediction": 1}] * 10))
assert log.flush(60)
# the writer sleeps for ten minutes: what comes next is killed before it is committed
for _ in range(3):
    log.append(LogEntry(time.time(), "r", 1.0, [{"x": 2.0}] * 7, [{"prediction": 1}] * 7))
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_killed_server_leaves_a_log_that_opens_and_counts_what_was_lost(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    done = subprocess.run([sys.executable, "-c", KILLED, str(path)], capture_output=True, timeout=60)
    assert done.returncode == -9, done.stderr
    state = log_state(path)
    assert state.rows == 200
    assert (state.killed_sessions, state.running_sessions, state.lost_rows) == (1, 0, 21)
    log = PredictionLog(path, package="p", model_version="v", backend="torch")  # the next server appends
    log.append(entry(1))
    log.close()
    assert log_state(path).rows == 201


def test_a_file_that_is_not_a_log_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "notes.db"
    bad.write_text("hello, this is not sqlite" * 100)
    with pytest.raises(SeekforgeError, match="not a usable prediction log"):
        log_state(bad)
    with pytest.raises(SeekforgeError, match="not found"):
        log_state(tmp_path / "missing.db")


def test_a_running_session_is_told_apart_from_a_killed_one(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = PredictionLog(path, package="p", model_version="v", backend="torch")
    log.append(entry(1))
    state = log_state(path)  # the server still holds its session's lock
    assert (state.running_sessions, state.killed_sessions) == (1, 0)
    log.close()
    assert (log_state(path).running_sessions, log_state(path).killed_sessions) == (0, 0)


def test_a_failed_write_keeps_the_writer_alive_and_counts_the_rows_as_lost(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "log.db"
    log = PredictionLog(path, package="p", model_version="v", backend="torch", flush_seconds=600)
    real = log._write
    failures = [sqlite3.OperationalError("database or disk is full")]

    def flaky(entries):
        if failures:
            raise failures.pop()
        real(entries)

    monkeypatch.setattr(log, "_write", flaky)
    log.append(entry(3))
    assert log.flush(60) and not failures  # the write failed, and the writer lives on
    log.append(entry(2))
    log.close()
    log.append(entry(4))  # after close: dropped, counted
    state = log_state(path)
    assert (state.rows, state.lost_rows) == (2, 3)
    assert log.dropped == 4


def test_reading_a_log_never_changes_it(tmp_path: Path) -> None:
    other = tmp_path / "app.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    before = other.read_bytes()
    with pytest.raises(SeekforgeError, match="not a prediction log"):
        log_state(other)
    assert other.read_bytes() == before
    assert sqlite3.connect(other).execute("PRAGMA journal_mode").fetchone()[0] == "delete"
