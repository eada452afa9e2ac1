"""Drawing a trial's recipe from the search space."""

from __future__ import annotations

import copy
import json
from typing import Any, Protocol

from pydantic import TypeAdapter

from seekforge.tune.config import CategoricalParam, FloatParam, IntParam, Param, TuneConfig

_PARAM = TypeAdapter(Param)


class Suggester(Protocol):
    """What an Optuna trial offers (and ``Ends`` imitates)."""

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float: ...

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int: ...

    def suggest_categorical(self, name: str, choices: Any) -> Any: ...


class Ends:
    """Takes every range at its low end (or its first choice), or at its high end (last choice): the
    recipes a study can draw at its extremes, validated before any trial runs."""

    def __init__(self, high: bool, model: int | None = None) -> None:
        self.high, self.model = high, model

    def suggest_float(
        self, name: str, low: float, high: float, *, step: float | None = None, log: bool = False
    ) -> float:
        return high if self.high else low

    def suggest_int(self, name: str, low: int, high: int, *, step: int = 1, log: bool = False) -> int:
        return high - (high - low) % step if self.high else low

    def suggest_categorical(self, name: str, choices: Any) -> Any:
        if name == "model" and self.model is not None:
            return choices[self.model]
        return choices[-1] if self.high else choices[0]


def draw(trial: Suggester, tune: TuneConfig) -> dict[str, Any]:
    """The values of one trial: ``{dotted path: value}``, and ``model`` (a whole model section) when the
    study searches architectures."""
    values = {path: _suggest(trial, path, param) for path, param in tune.search_space.items()}
    if tune.models:
        labels = [f"{i}:{alternative.get('type', 'model')}" for i, alternative in enumerate(tune.models)]
        chosen = labels.index(trial.suggest_categorical("model", labels))
        values["model"] = _fill(trial, f"model[{chosen}]", copy.deepcopy(tune.models[chosen]))
    return values


def apply(base: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """``base`` (a recipe as plain data, not modified) with the drawn values in place."""
    out = copy.deepcopy(base)
    out.pop("tune", None)
    for path, value in values.items():
        if path == "model":
            out["model"] = value
            continue
        *parents, leaf = path.split(".")
        node = out
        for key in parents:
            child = node.get(key)
            if not isinstance(child, dict):
                child = node[key] = {}
            node = child
        node[leaf] = value
    return out


def _suggest(trial: Suggester, name: str, param: FloatParam | IntParam | CategoricalParam) -> Any:
    if isinstance(param, FloatParam):
        return trial.suggest_float(name, param.low, param.high, step=param.step, log=param.log)
    if isinstance(param, IntParam):
        return trial.suggest_int(name, param.low, param.high, step=param.step, log=param.log)
    if all(choice is None or isinstance(choice, bool | int | float | str) for choice in param.choices):
        return trial.suggest_categorical(name, param.choices)
    # Optuna stores numbers and strings only: lists and mappings travel as their JSON text
    encoded = [json.dumps(choice, sort_keys=True) for choice in param.choices]
    return json.loads(trial.suggest_categorical(name, encoded))


def _fill(trial: Suggester, prefix: str, node: Any) -> Any:
    """``node`` with every ``{suggest: ...}`` mapping inside it replaced by a drawn value."""
    if isinstance(node, dict):
        if "suggest" in node:
            return _suggest(trial, prefix, _PARAM.validate_python(node))
        return {key: _fill(trial, f"{prefix}.{key}", value) for key, value in node.items()}
    return node
