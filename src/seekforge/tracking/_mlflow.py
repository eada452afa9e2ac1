"""A run logged to MLflow: the resolved recipe as parameters, each epoch's metrics as they come, the test
metrics, the report, and the package as an MLflow model with a ``pyfunc`` flavor that predicts through
seekforge's runtime. The MLflow run's id is kept in the run folder (``mlflow.json``), so a resumed run
goes on logging to the same MLflow run.

Tracking is checked before training (the server answers, the experiment exists or can be made); a
failure to log once training has started is reported and costs nothing: the run folder and the package
are seekforge's record, MLflow a copy.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import urllib.error
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlparse

from seekforge.core.deps import require
from seekforge.core.errors import SeekforgeError, TrainingInterrupted
from seekforge.core.io import write_json_atomic
from seekforge.core.variants import model_version
from seekforge.tracking.config import MlflowConfig

logger = logging.getLogger("seekforge.tracking")

#: Where a run folder keeps its MLflow run's id.
STATE = "mlflow.json"
#: MLflow retries an unanswered request for minutes by default; a run waits this much at most.
_HTTP = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}
_NOT_METRICS = {"epoch", "step"}


class TrackingUnavailable(SeekforgeError, ConnectionError):
    """The tracking server or database cannot be reached or used."""


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """``{"train": {"lr": 0.01}}`` -> ``{"train.lr": 0.01}``."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): data}


class MlflowRun:
    """One seekforge run as one MLflow run; a context manager (the MLflow run ends with the block: finished,
    failed, or killed when training was interrupted).

    Args:
        config: The recipe's ``tracking.mlflow``.
        experiment: The experiment's name when the config names none (the recipe's name).
        run_name: The MLflow run's name (the run folder's).
        run_dir: The run folder; ``mlflow.json`` there names the MLflow run to go on with.
    """

    def __init__(self, config: MlflowConfig, *, experiment: str, run_name: str, run_dir: Path) -> None:
        self.config = config
        self.experiment = config.experiment or experiment
        self.run_name = run_name
        self.state_path = Path(run_dir) / STATE
        self.run_id: str | None = None
        self.model_uri: str | None = None
        self._logged_epochs: set[int] = set()
        self._state: dict[str, Any] = {}  # what mlflow.json holds about the MLflow run logged to now
        self._warned = False
        self._env: dict[str, str | None] = {}
        self._previous_uri: str | None = None
        self._mlflow: Any = None

    # -- lifecycle -------------------------------------------------------------------------------------
    def __enter__(self) -> MlflowRun:
        with _quiet():
            mlflow = self._mlflow = require("mlflow", purpose="tracking.mlflow (logging runs to MLflow)")
        uri = self.config.uri
        self._reachable(uri)
        for key, value in _HTTP.items():
            self._env[key] = os.environ.get(key)
            os.environ.setdefault(key, value)
        self._previous_uri = mlflow.get_tracking_uri() if mlflow.is_tracking_uri_set() else None
        mlflow.set_tracking_uri(uri)
        try:
            with _quiet():
                experiment_id, run = self._start(uri)
        except Exception as exc:
            self._restore()
            if isinstance(exc, SeekforgeError):
                raise
            raise TrackingUnavailable(
                f"tracking.mlflow.uri {uri}: cannot start a run in experiment '{self.experiment}' ({exc})",
                hint="check the URI and that its database or server is writable; nothing was trained",
            ) from exc
        self.run_id = run.info.run_id
        self._save(experiment_id=experiment_id)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        status = "FINISHED" if exc is None else "FAILED"
        if isinstance(exc, KeyboardInterrupt | TrainingInterrupted):
            status = "KILLED"  # resumed later into the same MLflow run
        try:
            with _quiet():
                self._mlflow.end_run(status)
        except Exception as error:
            self._warn(error)
        finally:
            self._restore()

    def _restore(self) -> None:
        for key, value in self._env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._mlflow.set_tracking_uri(self._previous_uri)  # None: unset, as it was

    # -- logging ---------------------------------------------------------------------------------------
    def params(self, recipe: dict[str, Any]) -> None:
        """The resolved recipe, flattened (``train.lr``); values over MLflow's 6,000 characters are cut."""
        values = {k: _text(v)[:6000] for k, v in flatten(recipe).items()}
        self._try(lambda: self._mlflow.log_params(values))

    def epoch(self, record: dict[str, Any]) -> None:
        """One epoch's losses and validation metrics (the Trainer's ``epoch_hook``), at step = epoch."""
        epoch = record.get("epoch")
        if not isinstance(epoch, int) or epoch in self._logged_epochs:
            return  # a check within an epoch, or an epoch already logged
        metrics = _numbers(record, skip=_NOT_METRICS)
        if self._try(lambda: self._mlflow.log_metrics(metrics, step=epoch)):
            self._logged_epochs.add(epoch)
            self._save(epochs=sorted(self._logged_epochs))

    def finish(
        self,
        history: list[dict[str, Any]],
        test_metrics: dict[str, Any],
        *,
        package: Path,
        model_code: Path,
        manifest: dict[str, Any],
    ) -> None:
        """What the run ends with: epochs not logged as they came (a run trained by several processes, or
        before a resume), the test metrics, the report, recipe and per-epoch file, and the package as a
        ``pyfunc`` model (registered under ``registered_model`` when set)."""
        for record in history:
            self.epoch(record)
        mlflow = self._mlflow
        self._try(lambda: mlflow.log_metrics({f"test_{k}": v for k, v in _numbers(test_metrics, skip=set()).items()}))
        folder = self.state_path.parent
        for name in ("report.html", "recipe.yaml", "metrics.jsonl"):
            if (folder / name).is_file():
                self._try(lambda name=name: mlflow.log_artifact(str(folder / name)))

        def log_model() -> None:
            import seekforge

            signature = _signature(manifest)
            with _quiet():
                info = mlflow.pyfunc.log_model(
                    name="model",
                    python_model=str(model_code),
                    artifacts={"package": str(package)},
                    signature=signature,
                    input_example=_example(package) if signature is not None else None,
                    pip_requirements=[f"seekforge=={seekforge.__version__}"],
                    registered_model_name=self.config.registered_model,
                    metadata={"seekforge_model_version": model_version(manifest)},
                )
            self.model_uri = info.model_uri

        if self._try(log_model):
            self._save(model_uri=self.model_uri)

    # -- helpers ---------------------------------------------------------------------------------------
    def _try(self, action: Any) -> bool:
        """``action``, unless logging has failed before: a tracking server that stopped answering costs the
        run one timeout, not one for every epoch."""
        if self._warned:
            return False
        try:
            with _quiet():
                action()
        except Exception as exc:
            self._warn(exc)
            return False
        return True

    def _warn(self, exc: BaseException) -> None:
        """Logging failed: said once, and the run goes on (its folder and package are the record)."""
        if not self._warned:
            self._warned = True
            logger.warning(
                "could not log to MLflow at %s (%s); the run goes on without it, its folder %s holds everything",
                self.config.uri, exc, self.state_path.parent,
            )  # fmt: skip

    def _start(self, uri: str) -> tuple[str, Any]:
        """The experiment's id and the MLflow run: the one this run folder logged to before, if any."""
        mlflow = self._mlflow
        experiment_id = self._experiment_id()
        saved = self._saved()
        same = saved.get("uri") == uri and saved.get("experiment_id") == experiment_id
        nested = mlflow.active_run() is not None  # called from inside a user's own run: a child of it
        if same and saved.get("run_id"):
            self._state = saved  # a new MLflow run starts from nothing: no epochs or model of another run
            self._logged_epochs = set(saved.get("epochs", []))  # logged before the interruption
            self.model_uri = saved.get("model_uri")  # a run resumed after its model was logged logs it once
            return experiment_id, mlflow.start_run(run_id=saved["run_id"], nested=nested)
        tags = {"seekforge.run_dir": str(self.state_path.parent.resolve()), **self.config.tags}
        run = mlflow.start_run(experiment_id=experiment_id, run_name=self.run_name, tags=tags, nested=nested)
        return experiment_id, run

    def _experiment_id(self) -> str:
        mlflow = self._mlflow
        found = mlflow.get_experiment_by_name(self.experiment)
        if found is not None:
            return str(found.experiment_id)
        return str(mlflow.create_experiment(self.experiment, artifact_location=self._artifacts()))

    def _artifacts(self) -> str | None:
        """A new experiment's artifact location: the config's, else ``mlartifacts`` beside a SQLite
        database (MLflow's own default is a folder in whatever the working directory is)."""
        if self.config.artifacts is not None:
            return Path(self.config.artifacts).resolve().as_uri()
        uri = self.config.uri
        if uri.startswith("sqlite:///"):
            return (Path(uri.removeprefix("sqlite:///")).resolve().parent / "mlartifacts").as_uri()
        return None

    def _reachable(self, uri: str) -> None:
        """A tracking server answers its health check (in seconds, not after MLflow's minutes of retries)."""
        if urlparse(uri).scheme not in ("http", "https"):
            return
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=10) as response:
                response.read()
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TrackingUnavailable(
                f"tracking.mlflow.uri {uri}: no MLflow tracking server answers ({reason})",
                hint="start it (mlflow server --host 127.0.0.1 --port 5000) or fix the URI; nothing was trained",
            ) from None

    def _saved(self) -> dict[str, Any]:
        try:
            return dict(json.loads(self.state_path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            return {}

    def _save(self, **values: Any) -> None:
        self._state = {**self._state, "uri": self.config.uri, "run_id": self.run_id, **values}
        write_json_atomic(self.state_path, self._state)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MLflow's own advice (about type hints in its modules, input examples) and its libraries' deprecations
    (SQLAlchemy's, in its store) are not the user's to act on."""
    with warnings.catch_warnings():
        for kind in (UserWarning, FutureWarning, DeprecationWarning):
            warnings.simplefilter("ignore", kind)
        yield


def _text(value: Any) -> str:
    return json.dumps(value) if isinstance(value, list | dict) else str(value)


def _numbers(record: dict[str, Any], *, skip: set[str]) -> dict[str, float]:
    return {
        k: float(v)
        for k, v in record.items()
        if k not in skip and isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
    }


def _example(package: Path) -> Any:
    """A few of the package's own sample records (raw values) as the model's input example; None where the
    package keeps no such rows, or keeps them without their images."""
    import pandas as pd

    try:
        samples = json.loads((package / "samples.json").read_text(encoding="utf-8"))
        inputs = json.loads((package / "package.json").read_text(encoding="utf-8"))["inputs"]
    except (OSError, ValueError, KeyError):
        return None
    if any(f["name"] not in samples for f in inputs):
        return None
    return pd.DataFrame(samples).head(3)


def _signature(manifest: dict[str, Any]) -> Any:
    """The model's input schema for MLflow, from the package's inputs (every column optional: a missing
    value is imputed as in training); None for image inputs, which a table cannot carry."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    columns = []
    for feature in manifest["inputs"]:
        kind = feature["type"]
        if kind == "numeric":
            spec = "double"
        elif kind == "text":
            spec = "string"
        elif kind in ("category", "binary"):
            values = feature.get("values") or [""]
            spec = (
                "boolean" if all(isinstance(v, bool) for v in values)
                else "long" if all(isinstance(v, int) and not isinstance(v, bool) for v in values)
                else "double" if all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
                else "string"
            )  # fmt: skip
        else:
            return None
        columns.append(ColSpec(spec, feature["name"], required=False))
    return ModelSignature(inputs=Schema(columns)) if columns else None
