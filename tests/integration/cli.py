"""Run the real ``seekforge`` command in a subprocess."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path


def seekforge(
    *args: str,
    cwd: Path,
    timeout: float = 300,
    check: bool = False,
    env: dict[str, str] | None = None,
    memory: int | None = None,
) -> subprocess.CompletedProcess[str]:
    """``seekforge ARGS`` in ``cwd``, with ``env`` added to this process's environment, and its address
    space capped at ``memory`` bytes when given."""
    env = {**os.environ, "SEEKFORGE_NO_PROGRESS": "1", "HF_HUB_OFFLINE": "1", "PYTHONWARNINGS": "ignore", **(env or {})}

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))

    proc = subprocess.run(
        [sys.executable, "-m", "seekforge", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        preexec_fn=cap if memory is not None else None,
        check=False,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"seekforge {' '.join(args)} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return proc


def assert_user_error(proc: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """``proc`` exited 2 without a traceback, and its stderr says each of ``fragments``."""
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    for fragment in fragments:
        assert fragment in proc.stderr, (fragment, proc.stderr)
