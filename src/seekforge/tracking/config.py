"""The recipe's ``tracking:`` section: where a run is logged besides its own folder (MLflow)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from seekforge.core.config import BaseConfig


class MlflowConfig(BaseConfig):
    """Attributes:
    uri: The tracking URI: ``sqlite:///mlflow.db``, ``http://host:5000`` (a tracking server), or a folder.
    experiment: The experiment's name; None: the recipe's name.
    artifacts: Where a new experiment keeps its artifacts when the URI is a database or a folder; None:
        ``mlartifacts`` beside the database. A tracking server decides for itself.
    registered_model: Also register the logged model in MLflow's model registry under this name; None: don't.
    tags: Tags set on the MLflow run.
    """

    uri: Annotated[str, Field(min_length=1)]
    experiment: str | None = None
    artifacts: str | None = None
    registered_model: Annotated[str, Field(min_length=1)] | None = None
    tags: dict[str, str] = {}


class TrackingConfig(BaseConfig):
    """Attributes:
    mlflow: Log the run to MLflow: the resolved recipe as parameters, every epoch's metrics, the test
        metrics, the report, and the package as a ``pyfunc`` model. None: off.
    """

    mlflow: MlflowConfig | None = None
