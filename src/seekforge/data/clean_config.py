"""Configuration of the cleaning and balancing steps: ``clean`` and ``balance`` in ``data_quality.yaml``, or
``data.clean`` and ``data.balance`` in a recipe."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from seekforge.core.config import BaseConfig

Share = Annotated[float, Field(ge=0.0, le=1.0)]


class DeduplicateConfig(BaseConfig):
    """Exact duplicates are identical rows; near duplicates are identical once numbers are rounded to
    ``digits`` significant digits and text is lower-cased with spaces and punctuation collapsed."""

    exact: bool = True
    near: bool = True
    digits: Annotated[int, Field(ge=1, le=15)] = 4


class MissingConfig(BaseConfig):
    """What to do with missing cells: keep them (``none``), drop their rows, or impute numbers with the
    median, the mode or a constant, or iteratively from the other columns (scikit-learn's
    IterativeImputer); categories take the mode or the constant. Columns missing more than
    ``drop_columns_above`` of their values are dropped first."""

    strategy: Literal["none", "drop", "median", "mode", "constant", "iterative"] = "median"
    fill_value: str | float | None = None
    drop_columns_above: Share | None = 0.9

    @model_validator(mode="after")
    def _constant_has_value(self) -> MissingConfig:
        if self.strategy == "constant" and self.fill_value is None:
            raise ValueError("strategy constant needs fill_value")
        return self


class OutlierConfig(BaseConfig):
    """Rows whose numbers are far from the rest: IsolationForest (``contamination`` = expected share), or a
    per-column rule (|z| above ``z``, or beyond ``iqr`` interquartile ranges). ``flag`` adds an
    ``is_outlier`` column; ``drop`` removes the rows."""

    method: Literal["none", "isolation_forest", "zscore", "iqr"] = "none"
    action: Literal["flag", "drop"] = "flag"
    contamination: Annotated[float, Field(gt=0.0, le=0.5)] = 0.02
    z: Annotated[float, Field(gt=0.0)] = 4.0
    iqr: Annotated[float, Field(gt=0.0)] = 3.0


class LabelIssuesConfig(BaseConfig):
    """Rows whose label looks wrong, found by cleanlab from out-of-fold predicted probabilities of a quick
    model. ``flag`` adds a ``label_issue`` column; ``drop`` removes the rows; ``relabel`` replaces the
    label by the predicted one where the model's confidence is at least ``threshold`` (and drops the rest).
    """

    action: Literal["none", "flag", "drop", "relabel"] = "none"
    threshold: Annotated[float, Field(gt=0.0, le=1.0)] = 0.9
    folds: Annotated[int, Field(ge=2, le=20)] = 5


class ColumnsConfig(BaseConfig):
    """Columns to drop or reshape: ID-like columns (near-unique keys, counters), constant columns, and
    category values rarer than ``rare_share`` grouped into ``rare_label``."""

    drop_id_like: bool = True
    drop_constant: bool = True
    rare_share: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    rare_label: str = "__rare__"


class CleanConfig(BaseConfig):
    """The cleaning steps, in the order they run; each is optional."""

    deduplicate: DeduplicateConfig = DeduplicateConfig()
    coerce: bool = True
    missing: MissingConfig = MissingConfig()
    outliers: OutlierConfig = OutlierConfig()
    label_issues: LabelIssuesConfig = LabelIssuesConfig()
    columns: ColumnsConfig = ColumnsConfig()


class BalanceConfig(BaseConfig):
    """Evening out the classes of a classification label.

    ``random_over`` repeats rows of the smaller classes; ``random_under`` drops rows of the larger ones;
    ``smote`` adds synthetic rows between neighbours of the same class (SMOTE when every column is a
    number, SMOTENC when numbers and categories mix, SMOTEN when all are categories; ``smotenc`` is the
    same); ``class_weights`` leaves the rows as they are and weights the training loss by inverse class
    frequency instead. ``ratio`` is the smallest class's size relative to the largest after balancing.
    """

    method: Literal["random_over", "random_under", "smote", "smotenc", "class_weights"] = "random_over"
    ratio: Annotated[float, Field(gt=0.0, le=1.0)] = 1.0
    k_neighbors: Annotated[int, Field(ge=1, le=100)] = 5
