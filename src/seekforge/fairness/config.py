"""The recipe's ``fairness:`` section: the columns whose groups must be treated alike, the metrics compared
between groups, and the limits that fail a run's gate.

Example:
    ``fairness: {sensitive: [gender], metrics: [accuracy, selection_rate, tpr], max_difference: 0.05}``
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from seekforge.core.config import BaseConfig

#: Metrics compared between groups, by kind of task (the positive class of a binary output is its second).
GROUP_METRICS: dict[str, tuple[str, ...]] = {
    "binary": ("accuracy", "selection_rate", "tpr", "fpr"),
    "multiclass": ("accuracy", "f1_macro"),
    "regression": ("mae", "rmse", "r2"),
}

Limit = Annotated[float, Field(ge=0.0)]


def metric_kind(task: str, classes: int | None) -> str:
    """``binary``, ``multiclass`` or ``regression``: which :data:`GROUP_METRICS` apply."""
    if task == "regression":
        return "regression"
    return "binary" if classes == 2 else "multiclass"


class FairnessConfig(BaseConfig):
    """Per-group metrics on the test split, and the gate they must pass.

    Attributes:
        sensitive: Columns of the data whose values form the groups (they need not be model inputs).
        metrics: The metrics the gate compares (default: every metric of the task; see ``GROUP_METRICS``).
        max_difference: The largest difference allowed between groups, for every gated metric or per
            metric (``{selection_rate: 0.05, tpr: 0.1}``; a metric left out is reported, not gated).
        min_ratio: The smallest ratio allowed between groups (0.8 is the "four-fifths rule"); None: no
            ratio limit.
        boot: Bootstrap resamples for the 95% intervals (0: none).
    """

    sensitive: Annotated[list[Annotated[str, Field(min_length=1)]], Field(min_length=1)]
    metrics: list[str] | None = None
    max_difference: Limit | dict[str, Limit] = 0.1
    min_ratio: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    boot: Annotated[int, Field(ge=0, le=10_000)] = 200

    @model_validator(mode="after")
    def _limits_name_metrics(self) -> FairnessConfig:
        if isinstance(self.max_difference, dict) and self.metrics is not None:
            extra = [m for m in self.max_difference if m not in self.metrics]
            if extra:
                raise ValueError(f"max_difference names {', '.join(extra)}, which metrics does not list")
        if len(set(self.sensitive)) < len(self.sensitive):
            raise ValueError("sensitive lists a column twice")
        return self

    def problems(self, output_type: str) -> list[str]:
        """What in this section does not suit a model whose output is of ``output_type`` (binary, category
        or numeric; a category output may have two classes, so either kind of classifier metric is fine)."""
        kinds = {"binary": ["binary"], "numeric": ["regression"]}.get(output_type, ["binary", "multiclass"])
        known = list(dict.fromkeys(m for k in kinds for m in GROUP_METRICS[k]))
        kind = {"binary": "binary", "numeric": "regression"}.get(output_type, "classification")
        named = [*(self.metrics or []), *(self.max_difference if isinstance(self.max_difference, dict) else [])]
        return [
            f"fairness.metrics: '{m}' is not a group metric of a {kind} task; choose from {', '.join(known)}"
            for m in dict.fromkeys(named)
            if m not in known
        ]

    def gated(self, kind: str) -> dict[str, float]:
        """Each gated metric and its largest allowed difference."""
        if isinstance(self.max_difference, dict):
            return dict(self.max_difference)
        return dict.fromkeys(self.metrics or GROUP_METRICS[kind], self.max_difference)
