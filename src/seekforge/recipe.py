"""The Recipe: one declarative file for the whole chain, validated before any work starts.

:func:`load_recipe` reads YAML, applies ``--set a.b=c`` overrides, resolves relative paths against the
recipe's folder and validates everything at once. Every problem is reported with its dotted path, its
line in the file and, for a misspelled key, the nearest valid one.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, model_validator

from seekforge.compress.config import CompressConfig
from seekforge.core.config import BaseConfig, pluggable
from seekforge.core.config_file import load_config
from seekforge.core.metrics import epoch_metrics
from seekforge.data.config import DataConfig, FeaturesConfig
from seekforge.fairness.config import FairnessConfig
from seekforge.federate.config import FederatedConfig
from seekforge.models import MODELS, ModelConfig
from seekforge.monitor.config import MonitorConfig
from seekforge.registry.config import GatesConfig
from seekforge.tracking.config import TrackingConfig
from seekforge.train.config import TrainConfig
from seekforge.tune.config import TuneConfig

__all__ = ["CardConfig", "Recipe", "WarmStartConfig", "load_config", "load_recipe"]


Text = Annotated[str, Field(max_length=5000)]


class CardConfig(BaseConfig):
    """Attributes:
    description: What the model does, in a sentence or two.
    intended_use: Who uses it for what; out_of_scope: uses it was not made or checked for.
    limitations: Known limits, one per item (the card adds those the run measures).
    owners: People or teams to contact; license: the model's license.
    explain_rows: Tables: SHAP importance over this many test rows in the card (0: none; text and image
        packages are explained with ``seekforge explain``).
    """

    description: Text = ""
    intended_use: Text = ""
    out_of_scope: Text = ""
    limitations: list[Text] = []
    owners: list[Annotated[str, Field(max_length=200)]] = []
    license: Annotated[str, Field(max_length=200)] = ""
    explain_rows: Annotated[int, Field(ge=0, le=512)] = 0


class WarmStartConfig(BaseConfig):
    """Continue training a package on new rows (``seekforge train recipe.yaml --from PACKAGE --data new.csv``).

    Attributes:
        package: The parent package: its weights start the model, its lineage becomes the parent.
        preprocessor: ``keep`` the parent's (new categories go to the unknown bucket; the replay rows stay
            valid), ``grow`` it (the numbers keep their scaling, new categories get new rows in the
            embeddings, started at the mean of the old ones), or ``refit`` it on the new rows (allowed when
            every vocabulary keeps its size, since the weights must fit; no replay then).
        replay: The share of the training rows drawn from the parent's own training rows (the encoded
            sample every package carries), against forgetting what it knew; 0: none.
    """

    package: Annotated[str, Field(min_length=1)]
    preprocessor: Literal["keep", "grow", "refit"] = "keep"
    replay: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.2


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
    fairness: FairnessConfig | None = None
    #: Train on Flower across sites that keep their rows (seekforge federate).
    federated: FederatedConfig | None = None
    card: CardConfig = CardConfig()
    warm_start: WarmStartConfig | None = None
    gates: GatesConfig | None = None
    tracking: TrackingConfig = TrackingConfig()

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
        exits = getattr(self.model, "early_exit", None)
        if exits is not None and exits.threshold is None and self.data.split.validation == 0:
            problems.append(
                "model.early_exit: the exit threshold is calibrated on the validation split, but "
                "data.split.validation is 0; set it (e.g. 0.1) or give early_exit.threshold"
            )
        if self.train.gradient_checkpointing is True and self.model.type != "transformer":
            problems.append(
                f"train.gradient_checkpointing: a {self.model.type} model has no encoder layers to checkpoint; "
                "use it with model.type: transformer, or remove it"
            )
        problems += self._balance_problems()
        problems += self._tune_problems()
        problems += self._compress_problems()
        if self.fairness is not None:
            problems += self.fairness.problems(self.features.output.type)
        if self.gates is not None:
            measured = epoch_metrics(self.task, binary=self.features.output.type == "binary")
            problems += self.gates.problems(
                [m.removeprefix("val_") for m in measured if m.startswith("val_") and m != "val_loss"]
            )
        warm = self.warm_start
        if warm is not None and warm.preprocessor == "refit" and warm.replay > 0:
            problems.append(
                "warm_start.replay: the parent's rows are encoded by its own preprocessor, which refit replaces; "
                "set replay: 0, or preprocessor: keep or grow"
            )
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
            odd = [
                f"{f.name} ({f.type})"
                for f in self.features.inputs
                if f.type in ("text", "image", "sequence", "datetime")
            ]
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
        """sha256 of the resolved recipe's canonical JSON; where the run is logged (``tracking``) is not part
        of what it trains, so it is left out."""
        data = self.to_dict()
        data.pop("tracking", None)
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
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


# ---------------------------------------------------------------------------------------------- drafting

#: what ``draft_recipe`` leaves out of the inputs, and why
_LEFT_OUT = {
    "datetime": "a timestamp: to give the model its calendar parts, add it as {name: ..., type: datetime} (its "
    "values must be ISO 8601 times, e.g. 2024-05-01T13:45:00)",
    "constant": "constant: it cannot help a model",
}


def draft_recipe(
    source: str | Path,
    label: str,
    *,
    task: str | None = None,
    name: str | None = None,
    read: Any = None,
    written_to: Path | None = None,
) -> str:
    """A commented recipe for ``source``: each column's type inferred from its values, ID-like, constant
    and timestamp columns left out with a comment saying why, a model for the inputs that remain, and
    train settings sized to the rows. The text is validated as a recipe before it is returned.

    Args:
        source: A data file (or folder, or ``builtin:NAME``).
        label: The column to predict.
        task: ``classification`` or ``regression``; inferred from the label's values when None.
        name: The recipe's name; default: the file's name.
        read: How to read the file (a :class:`seekforge.data.config.ReadConfig`).
        written_to: Where the recipe will be saved: ``data.source`` is written relative to its folder,
            as a recipe's paths are read.

    Raises:
        DataError: The file cannot be read, or ``label`` is not one of its columns.
        ConfigError: ``task`` is neither classification nor regression.
    """
    from seekforge.core.errors import ConfigError, DataError
    from seekforge.data import as_text, id_like, infer_task, infer_type, nested_positions, read_source

    frame = read_source(str(source), read)
    if label not in frame.columns:
        raise DataError(f"{source}: no column '{label}'", hint=f"columns: {', '.join(map(str, frame.columns[:20]))}")
    nested = [str(c) for c in frame.columns if len(nested_positions(frame[c]))]
    lists = [c for c in nested if infer_type(frame[c].map(as_text)) == "sequence"]  # a list per row: a sequence
    frame = frame.assign(**{c: frame[c].map(as_text) for c in lists})
    nested = [c for c in nested if c not in lists]
    if label in nested or label in lists:
        raise DataError(f"{source}: the label '{label}' holds lists or objects", hint="predict a plain column")
    width = len(frame.columns)
    frame = frame.drop(columns=nested)
    if task not in (None, "classification", "regression"):
        raise ConfigError(f"--task must be classification or regression, got {task!r}")
    kinds = {str(c): infer_type(frame[c]) for c in frame.columns}
    task = task or infer_task(frame[label], kinds[label])
    classes = frame[label].dropna().nunique()
    output = "numeric" if task == "regression" else "binary" if classes == 2 else "category"
    inputs: list[tuple[str, str]] = []
    notes = [f"left out '{c}': it holds lists or objects; flatten it into plain columns" for c in nested]
    for column in map(str, frame.columns):
        if column == label:
            continue
        kind = kinds[column]
        why = _LEFT_OUT["constant"] if frame[column].nunique(dropna=True) <= 1 else None
        why = why or (_LEFT_OUT["datetime"] if kind == "datetime" else None)
        if why is None and (key := id_like(frame[column], kind)):
            why = f"an identifier, {key}: a model would memorise it"
        if why is None:
            inputs.append((column, kind))
        else:
            notes.append(f"left out '{column}': {why}")
    tabular = [(c, k) for c, k in inputs if k in ("numeric", "category", "binary")]
    texts = [c for c, k in inputs if k == "text"]
    hidden = [64, 32] if len(tabular) <= 50 else [256, 128]
    if not inputs:
        raise DataError(f"{source}: no column besides '{label}' can be an input", hint="; ".join(notes) or None)
    if len(inputs) == len(tabular):
        model: dict[str, Any] = {"type": "mlp", "hidden": hidden, "dropout": 0.1}
    elif len(inputs) == 1 and inputs[0][1] in ("text", "image"):
        model = {"type": "transformer" if texts else "cnn"}
    else:  # a mix: one encoder per input, joined
        model = {"type": "fusion", "combiner": {"type": "concat"}}
        if tabular:
            model["encoders"] = {"tabular": {"type": "mlp", "hidden": hidden}}
    chosen = inputs
    rows = len(frame)
    shown = str(source)
    if written_to is not None and not shown.startswith("builtin:"):
        shown = os.path.relpath(Path(source).resolve(), Path(written_to).resolve().parent)
    recipe = {
        "name": name or _recipe_name(source),
        "seed": 0,
        "data": {"source": shown, "split": {"train": 0.7, "validation": 0.15, "test": 0.15}},
        "features": {
            "inputs": [{"name": c, "type": k} for c, k in chosen],
            "output": {"name": label, "type": output},
        },
        "model": model,
        "train": {
            "epochs": 50 if rows < 5_000 else 20,
            "batch_size": 32 if rows < 2_000 else 64 if rows < 20_000 else 256,
            "lr": 0.003 if model["type"] == "mlp" else 0.001,
            "optimizer": "adamw",
            "early_stopping": {"monitor": "val_loss", "patience": 8},
        },
    }
    load_recipe({**recipe, "data": {**recipe["data"], "source": str(source)}})  # what is written must run
    head = [
        f"# Drafted from {source} ({rows:,} rows, {width} columns) by seekforge init --from.",
        f"# The task is {task} of '{label}'; the types were inferred from the values: check them.",
        *[f"# {note}" for note in notes],
        "#   seekforge validate recipe.yaml && seekforge run recipe.yaml",
    ]
    return (
        "\n".join(head)
        + "\n"
        + yaml.safe_dump(recipe, sort_keys=False, allow_unicode=True, width=110, default_flow_style=None)
    )


def _recipe_name(source: str | Path) -> str:
    """A valid recipe name from the file's name (``my data.csv`` -> ``my-data``)."""
    import re

    stem = Path(str(source).removeprefix("builtin:")).stem or "model"
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", stem).strip("-._")[:100]
    return cleaned if cleaned and cleaned[0].isalnum() else f"model-{cleaned}".strip("-")[:100]
