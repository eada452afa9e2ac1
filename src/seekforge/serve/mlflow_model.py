"""A seekforge package as an MLflow ``pyfunc`` model. MLflow logs this file itself (models from code) with
the package as the model's artifact; loading the model runs it, so ``mlflow.pyfunc.load_model(uri)`` and
``mlflow models serve -m URI --env-manager local`` predict through seekforge's own runtime: the package's
preprocessing and checks, on the backend it serves best (its ONNX export when it has one).

It is not imported by seekforge: ``tracking.mlflow`` in a recipe logs it (see ``seekforge.tracking``).
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd
from mlflow.pyfunc import PythonModel


class PackageModel(PythonModel):  # type: ignore[misc]
    """Predicts a table of records: one row per record, ``prediction`` and, for classifiers, ``proba_<class>``."""

    def load_context(self, context: Any) -> None:
        import seekforge

        self.predictor = seekforge.load(context.artifacts["package"])

    # model_input is left without a type hint: MLflow reads one as a schema of its own, beside the signature
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN201
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return self.predictor.predict(frame)


mlflow.models.set_model(PackageModel())
