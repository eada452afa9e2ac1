"""Interrupted and distributed training through the real CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from seekforge.train import untimed
from tests.conftest import make_tabular, tabular_recipe
from tests.integration.cli import seekforge


@pytest.fixture
def long_recipe(tmp_path: Path) -> Path:
    make_tabular(2400).to_csv(tmp_path / "data.csv", index=False)
    recipe = tabular_recipe("data.csv", epochs=2, batch_size=4, checkpoint_every=5)
    recipe["model"]["dropout"] = 0.3  # dropout makes the RNG state part of what resume must restore
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    return tmp_path / "recipe.yaml"


def test_sigkill_mid_epoch_then_resume_is_bitwise_equal(long_recipe: Path) -> None:
    root = long_recipe.parent
    seekforge("train", "recipe.yaml", "--run-dir", "straight", cwd=root, check=True)

    env = {**os.environ, "SEEKFORGE_NO_PROGRESS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "seekforge", "train", "recipe.yaml", "--run-dir", "killed"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoint = root / "killed" / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 120
    while not checkpoint.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "training finished before it could be killed"
    state = torch.load(checkpoint, weights_only=True)
    assert state["epoch"] == 0 and state["micro"] > 0  # killed in the middle of the first epoch
    assert not (root / "killed" / "package").exists()
    assert not (root / "killed" / "trained").exists()

    proc2 = seekforge("train", "recipe.yaml", "--run-dir", "killed", "--resume", cwd=root, check=True)
    assert "run tiny" in proc2.stderr
    straight = (root / "straight" / "package" / "model.safetensors").read_bytes()
    resumed = (root / "killed" / "package" / "model.safetensors").read_bytes()
    assert straight == resumed
    a = [json.loads(line) for line in (root / "straight" / "metrics.jsonl").read_text().splitlines()]
    b = [json.loads(line) for line in (root / "killed" / "metrics.jsonl").read_text().splitlines()]
    assert untimed(a) == untimed(b)  # every epoch's record but its throughput


def test_resume_picks_the_latest_unfinished_run(long_recipe: Path) -> None:
    root = long_recipe.parent
    env = {**os.environ, "SEEKFORGE_NO_PROGRESS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "seekforge", "train", "recipe.yaml"],
        cwd=root,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not list(root.glob("runs/tiny/*/checkpoints/last.pt")) and time.monotonic() < deadline:
        time.sleep(0.005)
    proc.send_signal(signal.SIGTERM)  # like Ctrl-C: a checkpoint, a message, exit 130
    assert proc.wait() == 130
    out = seekforge("train", "recipe.yaml", "--resume", cwd=root, check=True)
    (run_dir,) = root.glob("runs/tiny/*")
    assert str(run_dir.name) in out.stderr and (run_dir / "package" / "package.json").exists()


def test_ddp_two_processes_match_one(tmp_path: Path) -> None:
    make_tabular(600).to_csv(tmp_path / "data.csv", index=False)
    recipe = tabular_recipe("data.csv", epochs=6, batch_size=32, lr=0.01)
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    seekforge("train", "recipe.yaml", "--run-dir", "one", cwd=tmp_path, check=True)
    proc = seekforge("train", "recipe.yaml", "--run-dir", "two", "--nproc", "2", cwd=tmp_path, check=True)
    assert "torchrun" in proc.stderr
    one = json.loads((tmp_path / "one" / "package" / "package.json").read_text())["metrics"]["test"]
    two = json.loads((tmp_path / "two" / "package" / "package.json").read_text())["metrics"]["test"]
    assert two["accuracy"] >= 0.85
    assert abs(one["accuracy"] - two["accuracy"]) <= 0.05
    steps = json.loads((tmp_path / "two" / "trained" / "result.json").read_text())["steps"]
    assert steps == json.loads((tmp_path / "one" / "trained" / "result.json").read_text())["steps"]


def test_sigterm_stops_ddp_workers_at_a_step_and_resume_finishes(tmp_path: Path) -> None:
    make_tabular(2400).to_csv(tmp_path / "data.csv", index=False)
    recipe = tabular_recipe("data.csv", epochs=2, batch_size=4)
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    env = {**os.environ, "SEEKFORGE_NO_PROGRESS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "seekforge", "train", "recipe.yaml", "--nproc", "2", "--run-dir", "run"],
        cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    log = tmp_path / "run" / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (log.exists() and log.read_text()) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)  # wait for the first epoch, so the workers are training
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "distributed training stopped" in err
    state = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert state["world_size"] == 2 and state["step"] > 0
    seekforge("train", "recipe.yaml", "--nproc", "2", "--run-dir", "run", "--resume", cwd=tmp_path, check=True)
    assert (tmp_path / "run" / "package" / "package.json").exists()
    # the same weights as two processes that were never stopped
    seekforge("train", "recipe.yaml", "--nproc", "2", "--run-dir", "straight", cwd=tmp_path, check=True)
    resumed = load_file(tmp_path / "run" / "package" / "model.safetensors")
    straight = load_file(tmp_path / "straight" / "package" / "model.safetensors")
    assert resumed.keys() == straight.keys()
    assert all(torch.equal(resumed[k], straight[k]) for k in resumed), "resumed DDP weights differ"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow  # tests/pipeline/test_k8s.py runs the same two-node job through the printed TrainJob
def test_two_nodes_train_like_one_host_and_node_0_writes_the_package(tmp_path: Path) -> None:
    """Two "machines" (each its own folder, data copy and torchrun) meet at a rendezvous on 127.0.0.1;
    the result is one host's with the same global batch and processes, bit for bit."""
    recipe = tabular_recipe("data.csv", epochs=3, batch_size=32, lr=0.01)
    hosts = [tmp_path / name for name in ("a", "b", "single")]
    for host in hosts:
        host.mkdir()
        make_tabular(400).to_csv(host / "data.csv", index=False)
        (host / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    env = {**os.environ, "SEEKFORGE_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    endpoint = f"127.0.0.1:{_free_port()}"
    nodes = [
        subprocess.Popen(
            [sys.executable, "-m", "seekforge", "train", "recipe.yaml", "--nnodes", "2", "--node-rank", str(rank),
             "--rdzv-endpoint", endpoint, "--json"],
            cwd=host, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for rank, host in enumerate(hosts[:2])
    ]  # fmt: skip
    results = [node.communicate(timeout=300) for node in nodes]
    for node, (_, err) in zip(nodes, results, strict=True):
        assert node.returncode == 0, err
    first, second = (json.loads(out) for out, _ in results)
    assert second["package"] is None and "node1" in second["run_dir"]
    assert not list((hosts[1] / "runs").rglob("package.json"))  # the package is written once, on node 0
    assert (hosts[1] / second["run_dir"] / "checkpoints" / "last.pt").is_file()  # each node can resume
    seekforge("train", "recipe.yaml", "--nproc", "2", "--run-dir", "run", cwd=hosts[2], env=env, check=True)
    together = load_file(hosts[0] / first["package"] / "model.safetensors")
    alone = load_file(hosts[2] / "run" / "package" / "model.safetensors")
    assert all(torch.equal(together[k], alone[k]) for k in alone), "two nodes trained other weights than one"


def test_nodes_with_other_data_stop_with_the_machines_named(tmp_path: Path) -> None:
    recipe = tabular_recipe("data.csv", epochs=1, batch_size=32)
    env = {**os.environ, "SEEKFORGE_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    endpoint = f"127.0.0.1:{_free_port()}"
    nodes = []
    for rank, seed in enumerate((0, 1)):
        host = tmp_path / str(rank)
        host.mkdir()
        make_tabular(400, seed=seed).to_csv(host / "data.csv", index=False)
        (host / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
        nodes.append(subprocess.Popen(
            [sys.executable, "-m", "seekforge", "train", "recipe.yaml", "--nnodes", "2", "--node-rank", str(rank),
             "--rdzv-endpoint", endpoint],
            cwd=host, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        ))  # fmt: skip
    errors = [node.communicate(timeout=300)[1] for node in nodes]
    assert all(node.returncode == 2 for node in nodes), errors
    assert "prepared other data than node rank 0" in errors[0] + errors[1]
    assert not list(tmp_path.rglob("package.json"))


@pytest.mark.slow
def test_sigterm_on_node_0_stops_both_nodes_and_resume_on_each_finishes(tmp_path: Path) -> None:
    recipe = tabular_recipe("data.csv", epochs=2, batch_size=4)
    hosts = [tmp_path / name for name in ("a", "b")]
    for host in hosts:
        host.mkdir()
        make_tabular(2400).to_csv(host / "data.csv", index=False)
        (host / "recipe.yaml").write_text(yaml.safe_dump(recipe, sort_keys=False))
    env = {**os.environ, "SEEKFORGE_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}

    def start(rank: int, *extra: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "seekforge", "train", "recipe.yaml", "--nnodes", "2", "--node-rank", str(rank),
             "--rdzv-endpoint", endpoint, *extra],
            cwd=hosts[rank], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    endpoint = f"127.0.0.1:{_free_port()}"
    nodes = [start(0), start(1)]
    deadline = time.monotonic() + 120
    while not list((hosts[0] / "runs").rglob("metrics.jsonl")) and time.monotonic() < deadline:
        time.sleep(0.05)  # the first epoch is done: both nodes are training
    nodes[0].send_signal(signal.SIGTERM)
    errors = [node.communicate(timeout=120)[1] for node in nodes]
    assert [node.returncode for node in nodes] == [130, 130], errors
    assert "distributed training stopped" in errors[0] and "stopped on another node" in errors[1], errors
    endpoint = f"127.0.0.1:{_free_port()}"
    nodes = [start(0, "--resume", "--json"), start(1, "--resume")]
    outputs = [node.communicate(timeout=300) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], [err for _, err in outputs]
    package = hosts[0] / json.loads(outputs[0][0])["package"]
    assert (package / "package.json").is_file()
