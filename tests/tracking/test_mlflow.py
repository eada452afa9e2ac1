"""A run logged to MLflow (a SQLite URI, and a real tracking server started here and stopped by its PID):
the recipe as parameters, each epoch's metrics, the test metrics, the report, and the package as a pyfunc
model that predicts as the package does; an interrupted run is resumed into the same MLflow run; a server
that does not answer stops the run before any training."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

import seekforge
from seekforge.core.errors import TrainingInterrupted
from seekforge.tracking import MlflowConfig, MlflowRun
from tests.conftest import make_tabular, tabular_recipe
from tests.integration.cli import seekforge as cli

mlflow = pytest.importorskip("mlflow")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``mlflow server`` on a free loopback port with a SQLite store, in its own process group, stopped by
    its PID (the group: uvicorn and MLflow's job runner are its children)."""
    root = tmp_path_factory.mktemp("mlflow-server")
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port),
               "--workers", "1", "--backend-store-uri", f"sqlite:///{root / 'store.db'}",
               "--artifacts-destination", str(root / "artifacts")]  # fmt: skip
    with (root / "server.log").open("w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        _wait_for(f"{url}/health", proc, root / "server.log")
        yield url
    finally:
        _stop(proc)


def _wait_for(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until ``url`` answers; fails (with the process's log) if the process ends or 90 s pass first."""
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"{url} never answered"
            time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a server by its PID: its whole process group (its workers are its children)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    except ProcessLookupError:  # it had already stopped (and said why)
        proc.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


def _recipe(root: Path, tracking: dict[str, object]) -> dict[str, object]:
    make_tabular().to_csv(root / "d.csv", index=False)
    return {**tabular_recipe(str(root / "d.csv")), "tracking": {"mlflow": tracking}}


def _check_logged(uri: str, result: Any, model_uri: str) -> None:
    client = mlflow.MlflowClient(uri)
    run_id = yaml.safe_load((result.run_dir / "mlflow.json").read_text())["run_id"]
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == result.run_dir.name
    assert run.data.params["train.lr"] == "0.01" and run.data.params["model.hidden"] == "[16]"
    assert [m.step for m in client.get_metric_history(run_id, "val_loss")] == [1, 2, 3]
    assert run.data.metrics["test_accuracy"] == pytest.approx(result.metrics["accuracy"])
    assert {"report.html", "recipe.yaml", "metrics.jsonl"} <= {a.path for a in client.list_artifacts(run_id)}
    records = make_tabular(6, seed=5).drop(columns="label")
    with mlflow_uri(uri):
        model = mlflow.pyfunc.load_model(model_uri)
        assert {c.name for c in model.metadata.signature.inputs.inputs} == {"x1", "x2", "city", "member"}
        pd.testing.assert_frame_equal(model.predict(records), seekforge.load(result.package).predict(records))


class mlflow_uri:
    """The tracking URI set for the block, unset after."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def __enter__(self) -> None:
        mlflow.set_tracking_uri(self.uri)

    def __exit__(self, *_: object) -> None:
        mlflow.set_tracking_uri(None)


@pytest.fixture(scope="module")
def sqlite_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Any]:
    root = tmp_path_factory.mktemp("mlflow-sqlite")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    recipe = _recipe(root, {"uri": uri, "experiment": "credit", "registered_model": "tiny"})
    result = seekforge.run(recipe, runs_dir=root / "runs")
    assert not mlflow.is_tracking_uri_set()  # the caller's MLflow settings are left as they were
    assert (root / "mlartifacts").is_dir()  # beside the database, not in the working directory
    return uri, result


def test_a_run_is_logged_to_sqlite_and_its_registered_pyfunc_model_predicts_as_the_package(sqlite_run) -> None:
    uri, result = sqlite_run
    _check_logged(uri, result, "models:/tiny/1")


def test_mlflow_models_serve_answers_through_seekforge(sqlite_run, tmp_path: Path) -> None:
    uri, result = sqlite_run
    port = _free_port()
    command = [str(Path(sys.executable).parent / "mlflow"), "models", "serve", "-m", "models:/tiny/1",
               "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]  # fmt: skip
    bin_dir = str(Path(sys.executable).parent)  # mlflow starts the venv's uvicorn by name, as an activated venv has it
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    with (tmp_path / "serve.log").open("w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    try:
        _wait_for(f"http://127.0.0.1:{port}/ping", proc, tmp_path / "serve.log")
        records = [{"x1": 1.0, "x2": 0.0, "city": "oslo", "member": "yes"}, {"x1": -2.0}]  # the second imputed
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/invocations",
            data=json.dumps({"dataframe_records": records}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            answered = json.loads(response.read())["predictions"]
    finally:
        _stop(proc)
    expected = seekforge.load(result.package).predict(records)
    assert [a["prediction"] for a in answered] == list(expected["prediction"])
    assert [a["proba_buy"] for a in answered] == pytest.approx(list(expected["proba_buy"]), abs=1e-6)


def test_a_tracking_server_started_here_receives_the_run(mlflow_server: str, tmp_path: Path) -> None:
    result = seekforge.run(_recipe(tmp_path, {"uri": mlflow_server}), runs_dir=tmp_path / "runs")
    model_uri = yaml.safe_load((result.run_dir / "mlflow.json").read_text())["model_uri"]
    _check_logged(mlflow_server, result, model_uri)
    experiment = mlflow.MlflowClient(mlflow_server).get_experiment_by_name("tiny")
    assert experiment is not None  # named after the recipe when the config names none


def test_an_interrupted_run_is_killed_and_resumed_into_the_same_mlflow_run(tmp_path: Path) -> None:
    config = MlflowConfig(uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    with pytest.raises(TrainingInterrupted), MlflowRun(config, experiment="e", run_name="r", run_dir=tmp_path) as first:
        first.epoch({"epoch": 1, "step": 5, "train_loss": 0.5, "lr": 0.01})
        raise TrainingInterrupted("stopped")
    client = mlflow.MlflowClient(config.uri)
    assert client.get_run(first.run_id).info.status == "KILLED"
    with MlflowRun(config, experiment="e", run_name="r", run_dir=tmp_path) as second:
        second.finish([{"epoch": 1, "train_loss": 0.5}, {"epoch": 2, "train_loss": 0.4}], {"accuracy": 0.9},
                      package=tmp_path / "none", model_code=tmp_path / "none.py", manifest={"inputs": []})  # fmt: skip
    assert second.run_id == first.run_id and client.get_run(first.run_id).info.status == "FINISHED"
    assert [m.value for m in client.get_metric_history(first.run_id, "train_loss")] == [0.5, 0.4]
    assert second.model_uri is None  # no package to log: said, and the run still finished

    # The same folder logged to another place: a new MLflow run, which inherits nothing of the first one
    # (interrupted before its first epoch, then resumed: it logs every epoch, and the model, itself).
    elsewhere = MlflowConfig(uri=f"sqlite:///{tmp_path / 'other.db'}")
    with pytest.raises(TrainingInterrupted), MlflowRun(elsewhere, experiment="e", run_name="r", run_dir=tmp_path):
        raise TrainingInterrupted("stopped again")
    with MlflowRun(elsewhere, experiment="e", run_name="r", run_dir=tmp_path) as third:
        third.finish([{"epoch": 1, "train_loss": 0.5}, {"epoch": 2, "train_loss": 0.4}], {},
                     package=tmp_path / "none", model_code=tmp_path / "none.py", manifest={"inputs": []})  # fmt: skip
    assert third.run_id != first.run_id
    history = mlflow.MlflowClient(elsewhere.uri).get_metric_history(third.run_id, "train_loss")
    assert [m.step for m in history] == [1, 2]


def test_a_server_that_does_not_answer_stops_the_run_before_training(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, {"uri": f"http://127.0.0.1:{_free_port()}"})
    (tmp_path / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    done = cli("run", "recipe.yaml", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "no MLflow tracking server answers" in done.stderr and "Traceback" not in done.stderr
    assert not list(tmp_path.glob("runs/tiny/*/package"))  # nothing trained
