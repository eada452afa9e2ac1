"""Training under ``torchrun``: several processes on this machine, or this machine's share of a job over
several machines (static rendezvous: node rank 0 holds global rank 0, which writes the weights)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seekforge.core.errors import ConfigError, SeekforgeError, TrainingInterrupted
from seekforge.core.progress import console
from seekforge.train import checkpoint_path, stop_record_path


@dataclass(frozen=True)
class Nodes:
    """The machines of a job: how many, this one's rank, and where node rank 0 listens (``host:port``)."""

    count: int = 1
    rank: int = 0
    endpoint: str | None = None

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ConfigError(f"--nnodes must be at least 1, got {self.count}")
        if not 0 <= self.rank < self.count:
            raise ConfigError(
                f"--node-rank must be from 0 to {self.count - 1} (--nnodes {self.count}), got {self.rank}"
            )
        if self.count == 1:
            return
        host, _, port = (self.endpoint or "").rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(
                f"--rdzv-endpoint must be host:port of node rank 0 with several nodes, got {self.endpoint!r}",
                hint="for example --rdzv-endpoint 10.0.0.1:29400, the same on every node",
            )


def launch(folder: Path, nproc: int, nodes: Nodes, *, resume: bool) -> None:
    """Train under ``torchrun`` in its own session; Ctrl-C or SIGTERM here becomes one SIGTERM to torchrun,
    which passes it to every worker, and they stop together at the next step after a checkpoint."""
    if nodes.count == 1:
        where = ["--standalone"]
    else:  # static rendezvous: this machine's node rank decides its global ranks
        where = ["--nnodes", str(nodes.count), "--node-rank", str(nodes.rank), "--rdzv-backend", "static",
                 "--rdzv-endpoint", str(nodes.endpoint)]  # fmt: skip
    command = [
        sys.executable, "-m", "torch.distributed.run", *where, f"--nproc-per-node={nproc}",
        "-m", "seekforge.build._ddp", str(folder),
    ]  # fmt: skip
    if resume:
        command.append("--resume")
    stop_record_path(folder).unlink(missing_ok=True)
    threads = os.environ.get("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    job = f"node {nodes.rank} of {nodes.count}, rendezvous {nodes.endpoint}: " if nodes.count > 1 else ""
    console.print(f"[bold]torchrun[/] {job}{nproc} processes (gloo on CPU, nccl on CUDA)")
    proc = subprocess.Popen(command, env={**os.environ, "OMP_NUM_THREADS": threads}, start_new_session=True)
    stopping = []

    def forward(signum: int, frame: Any) -> None:
        if stopping and signum == signal.SIGINT:  # a second Ctrl-C: stop everything now
            os.killpg(proc.pid, signal.SIGKILL)
            return
        stopping.append(signum)
        console.print("stopping the workers after their current step (Ctrl-C again to kill them)")
        proc.send_signal(signal.SIGTERM)

    previous = {signum: signal.signal(signum, forward) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        code = proc.wait()
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    if stopping or stop_record_path(folder).is_file():  # asked here, or on another machine
        elsewhere = "" if stopping else " on another node"
        raise TrainingInterrupted(
            f"distributed training stopped{elsewhere}; checkpoint in {checkpoint_path(folder)}",
            hint="continue with the same command and --resume" + (" on every node" if nodes.count > 1 else ""),
        )
    if code != 0:
        raise SeekforgeError(
            f"distributed training failed (torchrun exit code {code}); see the worker output above",
            hint="resume from the last checkpoint with --resume, or run with --nproc 1 to see the error alone",
        )
