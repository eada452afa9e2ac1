"""The Recipe: one declarative file for the whole chain, validated before any work starts.

:func:`load_recipe` reads YAML, applies ``--set a.b=c`` overrides, resolves relative paths against the
recipe's folder and validates everything at once. Every problem is reported with its dotted path, its
line in the file and, for a misspelled key, the nearest valid one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import Field, model_validator

from seekforge.compress.config import CompressConfig
from seekforge.core.config import BaseConfig, pluggable
from seekforge.core.config_file import load_config
from seekforge.core.metrics import epoch_metrics
from seekforge.data.config import DataConfig, FeaturesConfig
from seekforge.models import MODELS, ModelConfig
from seekforge.monitor.config import MonitorConfig
from seekforge.train.config import TrainConfig
from seekforge.tune.config import TuneConfig

__all__ = ["Recipe", "load_config", "load_recipe"]


class Recipe(BaseConfig):
    """A complete, validated recipe.

    Example:
        >>> recipe = load_recipe("examples/digits.yaml", overrides=["train.epochs=2"])
        >>> recipe.train.epochs
        2
    """

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=100)]
    seed: Annotated[int, Field(ge=0, lt=2**31)] = 0
    data: DataConfig
    features: FeaturesConfig
    model: pluggable(MODELS, ModelConfig)  # type: ignore[valid-type]
    train: TrainConfig = TrainConfig()
    tune: TuneConfig | None = None
    compress: CompressConfig | None = None
    monitor: MonitorConfig = MonitorConfig()

    @model_validator(mode="after")
    def _sections_agree(self) -> Recipe:
        # Messages start with the dotted path they are about; the error report places them there.
        problems = [f"model: {p}" for p in self.model.check_features(self.features)]
        stopping = self.train.early_stopping
        if stopping is not None:
            names = epoch_metrics(self.task, binary=self.features.output.type == "binary")
            if stopping.monitor not in names:
                problems.append(
                    f"train.early_stopping.monitor: '{stopping.monitor}' is not recorded for this task; "
                    f"choose one of {', '.join(names)}"
                )
            if self.data.split.validation == 0:
                problems.append(
                    "train.early_stopping: needs a validation split, but data.split.validation is 0; "
                    "set it (e.g. 0.1) or remove early_stopping"
                )
        problems += self._balance_problems()
        problems += self._tune_problems()
        problems += self._compress_problems()
        if problems:
            raise ValueError("\n".join(problems))
        return self

    def _tune_problems(self) -> list[str]:
        """The metric is recorded, and the recipes a study can draw at the ends of its ranges are valid."""
        from pydantic import ValidationError

        from seekforge.tune.config import Ends, apply, draw

        tune = self.tune
        if tune is None:
            return []
        problems = []
        names = epoch_metrics(self.task, binary=self.features.output.type == "binary")
        if tune.metric is not None and tune.metric not in names:
            problems.append(
                f"tune.metric: '{tune.metric}' is not recorded for this task; choose one of {', '.join(names)}"
            )
        if (tune.metric or "val_").startswith("val_") and self.data.split.validation == 0:
            problems.append("tune: trials are scored on the validation split, but data.split.validation is 0")
        base = self.trial_base()
        for model in range(len(tune.models)) if tune.models else [None]:
            for high in (False, True):
                where = f"{'high' if high else 'low'} end of every range" + (
                    f", models[{model}]" if model is not None else ""
                )
                try:
                    Recipe.model_validate(apply(base, draw(Ends(high, model), tune)))
                except (ValidationError, ValueError) as exc:
                    detail = exc.errors()[0] if isinstance(exc, ValidationError) else {"loc": (), "msg": str(exc)}
                    path = ".".join(str(p) for p in detail["loc"])
                    problems.append(
                        f"tune: the recipe a trial draws at the {where} is invalid: {path}: {detail['msg']}"
                    )
                    break
        return problems

    def _compress_problems(self) -> list[str]:
        compress = self.compress
        if compress is None:
            return []
        problems = []
        if compress.prune is not None and type(self.model).unprunable is ModelConfig.unprunable:
            problems.append(f"compress.prune: model type '{self.model.type}' does not support structured pruning")
        if compress.quantize is not None and self.features.of_type("text"):
            problems.append(
                "compress.quantize: quantization-aware training supports MLP and CNN models; for text use "
                "post-training int8 (seekforge export --precision int8)"
            )
        return problems

    def trial_base(self) -> dict[str, Any]:
        """The recipe as written (defaults left out), the base each trial's values are put into."""
        return self.model_dump(mode="json", exclude_unset=True)

    def _balance_problems(self) -> list[str]:
        balance = self.data.balance
        if balance is None:
            return []
        if self.task != "classification":
            return ["data.balance: balances classes, but the output is numeric (regression); remove it"]
        if balance.method in ("smote", "smotenc"):
            odd = [f"{f.name} ({f.type})" for f in self.features.inputs if f.type in ("text", "image")]
            if odd:
                return [
                    f"data.balance.method: SMOTE cannot make up {', '.join(odd)}; "
                    "use random_over, random_under or class_weights"
                ]
        if balance.method == "class_weights" and self.train.class_weights != "none":
            return ["data.balance.method: class_weights, and train.class_weights is set as well; keep one of them"]
        return []

    @property
    def task(self) -> str:
        return self.features.task

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON/YAML-safe) of the resolved recipe, defaults included."""
        return self.model_dump(mode="json")

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def fingerprint(self) -> str:
        """sha256 of the resolved recipe's canonical JSON."""
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------- loading


def load_recipe(
    source: str | Path | Mapping[str, Any] | Recipe,
    *,
    overrides: Iterable[str] = (),
) -> Recipe:
    """Read, override and validate a recipe.

    Args:
        source: A YAML file, a mapping, or a Recipe (returned re-validated with the overrides).
        overrides: ``dotted.key=value`` strings; values are parsed as YAML (``train.lr=3e-4``).

    Raises:
        ConfigError: Unreadable file, malformed YAML or invalid content; lists every problem.
    """
    if isinstance(source, Recipe):
        source = source.to_dict()
    return load_config(
        source,
        Recipe,
        what="recipe",
        overrides=overrides,
        resolve_paths=True,
        hint="start from `seekforge init --template tabular`",
    )
