"""Drift of a prediction log, window by window and feature by feature, as ``seekforge monitor`` measures it
(the package the log's latest session served is the reference). The log is opened read-only, so a server
writing to it is never held up; a result is kept for a few seconds, the time a page takes to ask again."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

#: how long one reading of a log serves repeated requests for the same windows
FRESH_SECONDS = 5.0


def served_package(log: Path) -> tuple[str, str] | None:
    """The package (as the server was given it) and model version of the log's latest session."""
    from seekforge.core.prediction_log import read_log

    db = read_log(log)
    try:
        row = db.execute("SELECT package, model_version FROM sessions ORDER BY id DESC LIMIT 1").fetchone()
    finally:
        db.close()
    return (str(row[0]), str(row[1])) if row else None


class LogWatch:
    """One prediction log, measured on demand."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self._kept: dict[tuple[Any, ...], tuple[float, dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def windows(self, *, window_seconds: float, count: int) -> dict[str, Any]:
        """Drift per window (oldest first) and per feature; ``{"error": ...}`` when it cannot be measured."""
        from seekforge.core.errors import SeekforgeError
        from seekforge.monitor import monitor_package

        try:
            stat = self.log.stat()
            key = (stat.st_mtime_ns, stat.st_size, window_seconds, count)
        except OSError as exc:
            return {"log": str(self.log), "error": f"cannot read the log: {exc.strerror}"}
        with self._lock:
            kept = self._kept.get(key)
            if kept is not None and time.monotonic() - kept[0] < FRESH_SECONDS:
                return kept[1]
            try:
                served = served_package(self.log)
                if served is None:
                    return {"log": str(self.log), "error": "the log holds no session yet"}
                result = monitor_package(served[0], self.log, window_seconds=window_seconds, windows=count)
            except SeekforgeError as exc:
                return {"log": str(self.log), "error": exc.message}
            found = {"log": str(self.log), "package": served[0], **result.to_dict()}
            self._kept = {key: (time.monotonic(), found)}
            return found
