"""The prediction log: every served row's inputs, outputs, latency and model version, in one SQLite file.

Requests never wait for it: rows go onto an in-memory queue that a writer thread commits in groups
(WAL mode, one transaction a group). A killed server loses at most the rows not yet committed, and the
loss is counted: each serving session keeps its count of rows handed to the log in a small memory-mapped
file beside the log, which the kernel keeps when the process dies, so :func:`log_state` knows how many
rows a killed session answered but never wrote (``lost_rows``). A full queue drops rows instead of
slowing requests, and the drops are counted too.

Schema (read by ``seekforge monitor`` and by anyone with ``sqlite3``)::

    predictions(id, session, ts, request_id, position, model_version, backend, latency_ms, inputs, outputs, role)
    sessions(id, started, ended, package, model_version, host, pid, accepted, written, dropped)

``inputs`` and ``outputs`` are JSON objects, one row per predicted record; ``position`` is the record's
place in its request (labels join on request id and position); ``ts`` is unix seconds. ``role`` says which
of the server's models answered: ``primary``, ``canary``, or ``shadow`` (a shadow's answers were logged, not
returned: the same request id and position then appear twice).
"""

from __future__ import annotations

import dataclasses
import fcntl
import json
import logging
import math
import mmap
import os
import socket
import sqlite3
import struct
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from seekforge.core.errors import SeekforgeError

logger = logging.getLogger("seekforge.serve")

__all__ = ["LogEntry", "LogState", "PredictionLog", "answered_rows", "json_safe", "log_state", "open_log", "read_log"]

SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    started REAL NOT NULL,
    ended REAL,
    package TEXT NOT NULL,
    model_version TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    accepted INTEGER NOT NULL DEFAULT 0,
    written INTEGER NOT NULL DEFAULT 0,
    dropped INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS predictions (
    id INTEGER PRIMARY KEY,
    session INTEGER NOT NULL REFERENCES sessions(id),
    ts REAL NOT NULL,
    request_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    model_version TEXT NOT NULL,
    backend TEXT NOT NULL,
    latency_ms REAL NOT NULL,
    inputs TEXT NOT NULL,
    outputs TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'primary'
);
CREATE INDEX IF NOT EXISTS predictions_ts ON predictions(ts);
-- No index on request_id: random ids land all over such a B-tree, and keeping it cost more than half of
-- the writer's work (monitor joins labels by reading a window, by ts). Logs made with one drop it.
DROP INDEX IF EXISTS predictions_request;
"""


@dataclass(frozen=True)
class LogEntry:
    """One request's rows, as the server hands them to the log."""

    ts: float
    request_id: str
    latency_ms: float
    inputs: Sequence[dict[str, Any]]
    outputs: Sequence[dict[str, Any]]
    model_version: str | None = None  # the model that answered: None, the log's own
    backend: str | None = None
    role: str = "primary"  # primary, canary, or shadow (answers logged, never returned)


def open_log(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) a prediction log with its schema, in WAL mode.

    Raises:
        SeekforgeError: The file is not a SQLite database or cannot be opened.
    """
    try:
        db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
        columns = {row[1] for row in db.execute("PRAGMA table_info(predictions)")}
        if "role" not in columns:  # a log written before canaries and shadows were served
            db.execute("ALTER TABLE predictions ADD COLUMN role TEXT NOT NULL DEFAULT 'primary'")
    except sqlite3.DatabaseError as exc:
        raise SeekforgeError(
            f"{path} is not a usable prediction log ({exc})",
            hint="point --log at a new file, or at a log that seekforge serve wrote",
        ) from exc
    return db


def _image_summary(value: Any) -> dict[str, Any] | None:
    """An image's per-channel mean intensity in [0, 1]: what drift is measured on, at a few bytes a row."""
    if value is None:
        return None
    array = np.asarray(value)
    if array.ndim == 2:
        array = array[:, :, None]
    scale = 65535.0 if array.dtype == np.uint16 else 255.0 if np.issubdtype(array.dtype, np.integer) else 1.0
    return {"channel_means": (array[:, :, :3].reshape(-1, min(array.shape[2], 3)).mean(axis=0) / scale).tolist()}


_STRICT = json.JSONEncoder(allow_nan=False, separators=(",", ":"))

# A group of rows goes to SQLite as one JSON array, inserted by one statement: the writer thread then
# takes the GIL once to encode the group (in C) and lets it go for all of SQLite's work, rather than
# taking it back for every row, which would stall the event loop each time it came back from a wait.
_INSERT_GROUP = (
    "INSERT INTO predictions(session, ts, request_id, position, model_version, backend, latency_ms, inputs, outputs,"
    " role) SELECT ?, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), "
    "json_extract(value, '$[6]'), json_extract(value, '$[7]'), json_extract(value, '$[3]'), "
    "json_extract(value, '$[4]'), json_extract(value, '$[5]'), json_extract(value, '$[8]') FROM json_each(?)"
)


def _dumps(value: Any) -> str:
    """Strict JSON: the plain case at C speed, NaN, numpy values and arrays made safe otherwise."""
    try:
        return _STRICT.encode(value)
    except (TypeError, ValueError):
        return _STRICT.encode(json_safe(value))


def json_safe(value: Any) -> Any:
    """NaN and infinities as null (strict JSON), numpy scalars as Python numbers, arrays as lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if hasattr(value, "tolist"):
        return json_safe(value.tolist())
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    return value


class PredictionLog:
    """Appends served rows to a SQLite file off the request path.

    Args:
        path: The log file; created if missing, appended to otherwise.
        package: The served package's path (recorded per session).
        model_version: What identifies the model (recorded per row).
        backend: The backend serving it.
        retention_seconds: Rows older than this are deleted (checked once a minute); None keeps all.
        flush_seconds: How often appended rows are committed (in one transaction): what a kill can lose
            at most.
        max_pending: Most rows held in memory; beyond it rows are dropped and counted.
        image_fields: Image inputs: logged as their per-channel mean intensity in [0, 1] (what image drift
            is measured on), not as pixels.
    """

    def __init__(
        self,
        path: Path,
        *,
        package: str,
        model_version: str,
        backend: str,
        retention_seconds: float | None = None,
        flush_seconds: float = 0.05,
        max_pending: int = 100_000,
        image_fields: Sequence[str] = (),
    ) -> None:
        self.path = path
        self.model_version = model_version
        self.backend = backend
        self.retention_seconds = retention_seconds
        self.flush_seconds = flush_seconds
        self.image_fields = tuple(image_fields)
        self._db = open_log(path)
        try:  # rows are written through SQLite's JSON functions (built in since 3.38; JSON1 before)
            self._db.execute("SELECT value FROM json_each('[]')")
        except sqlite3.OperationalError:
            self._db.close()
            raise SeekforgeError(
                f"this Python's SQLite {sqlite3.sqlite_version} has no JSON functions, which the prediction "
                "log writes its rows with",
                hint="use a Python built with SQLite 3.38 or later (or with JSON1), or serve with --no-log",
            ) from None
        cursor = self._db.execute(
            "INSERT INTO sessions(started, package, model_version, host, pid) VALUES (?, ?, ?, ?, ?)",
            (time.time(), package, model_version, socket.gethostname(), os.getpid()),
        )
        self._db.commit()
        self.session = int(cursor.lastrowid or 0)
        # The counts of rows handed to the log and dropped live in a memory-mapped file beside it: the
        # kernel keeps what is written there when the process is killed, so a kill's loss is known exactly.
        # The session holds a lock on the file while it lives: a reader that can take the lock knows the
        # server is gone (pids and host names say nothing in containers).
        self._counter_path = counter_path(path, self.session)
        self._counter_file = self._counter_path.open("w+b")
        self._counter_file.write(bytes(16))
        self._counter_file.flush()
        fcntl.flock(self._counter_file.fileno(), fcntl.LOCK_EX)
        self._counter = mmap.mmap(self._counter_file.fileno(), 16)
        # A deque, not a queue.Queue: appending wakes no thread, so the request path never hands the GIL
        # to the writer; the writer wakes every flush_seconds and takes everything at once.
        self._pending: deque[LogEntry] = deque()
        self.max_pending = max_pending
        self._pending_rows = 0
        self._closing = threading.Event()
        self._wake = threading.Event()  # set by close() and flush(): write now
        self._handled = threading.Condition()  # notified as the writer finishes with rows
        self._finished_rows = 0  # rows the writer took, written or not
        self._closed = False
        self.accepted = 0  # rows handed to the log
        self.written = 0
        self.dropped = 0
        self._last_purge = 0.0
        self._thread = threading.Thread(target=self._writer, name="seekforge-log", daemon=True)
        self._thread.start()

    def append(self, entry: LogEntry) -> None:
        """Queue one request's rows; never blocks (a full queue, or a closed log, drops them and counts it)."""
        n = len(entry.inputs)
        if self._closed or self._pending_rows + n > self.max_pending:
            self._drop(n)
            return
        if self.image_fields:  # a few numbers now rather than the pixels held until the writer runs
            inputs = [
                {k: (_image_summary(v) if k in self.image_fields else v) for k, v in row.items()}
                for row in entry.inputs
            ]
            entry = dataclasses.replace(entry, inputs=inputs)
        self._pending.append(entry)
        self._pending_rows += n
        self.accepted += n
        struct.pack_into("<q", self._counter, 0, self.accepted)

    def _drop(self, rows: int) -> None:
        self.dropped += rows
        if not self._closed:
            struct.pack_into("<q", self._counter, 8, self.dropped)

    @property
    def pending(self) -> int:
        return len(self._pending)

    def _writer(self) -> None:
        """Every ``flush_seconds``, commit what has been appended, in transactions of up to 5,000 requests."""
        while True:
            self._wake.wait(self.flush_seconds)
            self._wake.clear()
            closing = self._closing.is_set()
            while self._pending:
                entries = [self._pending.popleft() for _ in range(min(len(self._pending), 5000))]
                rows = sum(len(e.inputs) for e in entries)
                self._pending_rows -= rows
                try:
                    self._write(entries)
                except Exception as exc:  # a full disk, a locked file: keep the writer alive; the rows stay
                    # accepted and unwritten, which log_state reports as lost
                    logger.error("could not write %d rows to the prediction log %s: %s", rows, self.path, exc)
                with self._handled:
                    self._finished_rows += rows
                    self._handled.notify_all()
            try:
                self._purge()
            except sqlite3.Error as exc:
                logger.error("could not purge old rows from the prediction log %s: %s", self.path, exc)
            if closing:
                return

    def _write(self, entries: list[LogEntry]) -> None:
        rows: list[tuple[Any, ...]] = []
        for entry in entries:
            answered_by = (entry.model_version or self.model_version, entry.backend or self.backend, entry.role)
            rows += [
                (entry.ts, entry.request_id, position, entry.latency_ms, inputs, outputs, *answered_by)
                for position, (inputs, outputs) in enumerate(zip(entry.inputs, entry.outputs, strict=True))
            ]
        accepted = self.accepted  # rows queued so far: those not yet written are the crash's loss
        with self._db:
            self._db.execute(_INSERT_GROUP, (self.session, _dumps(rows)))
            self.written += len(rows)
            self._db.execute(
                "UPDATE sessions SET accepted = ?, written = ?, dropped = ? WHERE id = ?",
                (accepted, self.written, self.dropped, self.session),
            )

    def _purge(self) -> None:
        now = time.time()
        if self.retention_seconds is None or now - self._last_purge < 60:
            return
        self._last_purge = now
        with self._db:
            self._db.execute("DELETE FROM predictions WHERE ts < ?", (now - self.retention_seconds,))

    def flush(self, timeout: float | None = None) -> bool:
        """Have the writer commit every row appended so far, now; wait until it has (or failed to, which
        is counted as lost). Returns False if ``timeout`` seconds passed first."""
        if self._closed:  # close() wrote everything
            return True
        target = self.accepted
        self._wake.set()
        with self._handled:
            return self._handled.wait_for(lambda: self._finished_rows >= target, timeout)

    def close(self) -> None:
        """Write everything queued, mark the session ended and close the file."""
        self._closing.set()
        self._wake.set()
        self._thread.join()
        self._closed = True
        with self._db:
            self._db.execute(
                "UPDATE sessions SET ended = ?, accepted = ?, written = ?, dropped = ? WHERE id = ?",
                (time.time(), self.accepted, self.written, self.dropped, self.session),
            )
        self._db.close()
        self._counter.close()
        self._counter_path.unlink(missing_ok=True)
        self._counter_file.close()


def counter_path(log: Path, session: int) -> Path:
    """Where a running session keeps its count of rows handed to the log."""
    return log.with_name(f"{log.name}.session-{session}.count")


def _session_gone(counter: Path) -> bool:
    """Whether the server that holds ``counter``'s lock is gone (the lock can be taken)."""
    try:
        with counter.open("rb") as handle:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            return True
    except FileNotFoundError:
        return True


def read_log(path: Path) -> sqlite3.Connection:
    """Open a prediction log read-only (it is never changed by reading it).

    Raises:
        SeekforgeError: Missing, or not a prediction log.
    """
    if not path.is_file():
        raise SeekforgeError(f"prediction log not found: {path}", hint="pass the file given to seekforge serve --log")
    try:
        db = sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True, timeout=30)
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    except sqlite3.DatabaseError as exc:
        raise SeekforgeError(f"{path} is not a usable prediction log ({exc})", hint=_LOG_HINT) from exc
    if not {"sessions", "predictions"} <= tables:
        db.close()
        raise SeekforgeError(
            f"{path} is not a prediction log (it has no sessions and predictions tables)", hint=_LOG_HINT
        )
    return db


_LOG_HINT = "point --log at the file seekforge serve wrote"


def answered_rows(db: sqlite3.Connection) -> str:
    """An SQL condition on ``predictions`` keeping the rows whose answers were returned (not a shadow's)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(predictions)")}
    return "role != 'shadow'" if "role" in columns else "1 = 1"  # a log from before shadows: all were


@dataclass(frozen=True)
class LogState:
    """What a prediction log holds, and what its sessions lost."""

    rows: int
    sessions: int
    running_sessions: int  # servers writing to the log now
    killed_sessions: int  # sessions whose server died without closing the log
    lost_rows: int  # rows answered that never reached the file: killed servers', and failed writes'
    dropped_rows: int  # rows dropped because the log's queue was full
    first_ts: float | None
    last_ts: float | None


def log_state(path: Path) -> LogState:
    """Count a log's rows and what killed servers lost. Read-only; safe while a server writes to it."""
    db = read_log(path)
    try:
        rows, first, last = db.execute("SELECT COUNT(*), MIN(ts), MAX(ts) FROM predictions").fetchone()
        (sessions,) = db.execute("SELECT COUNT(*) FROM sessions").fetchone()
        ended = db.execute("SELECT COALESCE(SUM(dropped), 0), COALESCE(SUM(MAX(accepted - written, 0)), 0) "
                           "FROM sessions WHERE ended IS NOT NULL").fetchone()  # fmt: skip
        unended = db.execute("SELECT id, accepted, written, dropped FROM sessions WHERE ended IS NULL").fetchall()
    finally:
        db.close()
    dropped, lost = int(ended[0]), int(ended[1])  # an ended session's rows that its writer failed to write
    running = killed = 0
    for session, accepted, written, dropped_then in unended:
        counter = counter_path(path, session)
        if not _session_gone(counter):
            running += 1
            dropped += dropped_then
            continue
        killed += 1
        if counter.is_file() and counter.stat().st_size == 16:
            counted, dropped_then = struct.unpack("<qq", counter.read_bytes())
            accepted = max(accepted, counted)
        dropped += dropped_then
        lost += max(accepted - written, 0)
    return LogState(int(rows), int(sessions), running, killed, lost, dropped, first, last)
