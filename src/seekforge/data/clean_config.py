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


#: What the privacy step looks for, by Presidio's entity names (PERSON needs a spaCy English model).
PiiEntity = Literal["EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS", "PERSON"]


class PrivacyConfig(BaseConfig):
    """Personal data (Presidio: e-mail addresses, phone numbers, card numbers, IBANs, US social security
    numbers, IP addresses; names where a spaCy English model is installed) in text and category columns,
    every distinct value checked. A column whose cells hold it at least ``column_share`` of the time is a
    personal-data column: ``drop`` removes it, ``hash`` replaces each value by its sha256 (16 hex digits:
    still a key to join or count on; a pseudonym, not an anonymisation: short values such as phone numbers
    can be found again by trying them all), ``mask`` stars it out; inside other text, each span found is
    replaced by its entity (``<EMAIL_ADDRESS>``: drop), its hash or a mask. ``keep`` changes nothing."""

    pii: Literal["keep", "drop", "hash", "mask"] = "drop"
    entities: list[PiiEntity] | None = None
    column_share: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5


class CleanConfig(BaseConfig):
    """The cleaning steps, in the order they run; each is optional."""

    deduplicate: DeduplicateConfig = DeduplicateConfig()
    coerce: bool = True
    missing: MissingConfig = MissingConfig()
    outliers: OutlierConfig = OutlierConfig()
    label_issues: LabelIssuesConfig = LabelIssuesConfig()
    columns: ColumnsConfig = ColumnsConfig()
    privacy: PrivacyConfig | None = None


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


class BinConfig(BaseConfig):
    """Bin a numeric ``column`` into ``bins`` intervals, as a new column ``name`` (default
    ``<column>_bin``) holding the bin's number (0, 1, ...; missing where the number is):
    ``quantile`` (equal counts), ``kmeans`` (1-D k-means centres; scikit-learn's KBinsDiscretizer) or
    ``tree`` (supervised: the split points of a decision tree of the label on this column alone, at most
    ``bins`` leaves, each holding at least ``min_share`` of the rows)."""

    column: Annotated[str, Field(min_length=1)]
    name: Annotated[str, Field(min_length=1)] | None = None
    method: Literal["quantile", "kmeans", "tree"] = "quantile"
    bins: Annotated[int, Field(ge=2, le=256)] = 5
    min_share: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.05


class StlConfig(BaseConfig):
    """Seasonal-trend decomposition (statsmodels' STL) of a time series ``column`` into
    ``<column>_trend``, ``<column>_seasonal`` and ``<column>_residual``. Rows are taken in ``time``
    order when given (else as they come), one series per value of ``group`` when given; ``period`` is the
    season's length in rows (7 for daily data with a weekly cycle)."""

    column: Annotated[str, Field(min_length=1)]
    period: Annotated[int, Field(ge=2)]
    time: str | None = None
    group: str | None = None
    seasonal: Annotated[int, Field(ge=3)] = 7
    robust: bool = True

    @model_validator(mode="after")
    def _odd_seasonal(self) -> StlConfig:
        if self.seasonal % 2 == 0:
            raise ValueError(f"seasonal must be odd, got {self.seasonal}")
        return self


class FeatureEngineeringConfig(BaseConfig):
    """New columns derived from existing ones by ``seekforge data features``; the originals are kept."""

    bins: list[BinConfig] = []
    stl: list[StlConfig] = []

    @model_validator(mode="after")
    def _distinct_names(self) -> FeatureEngineeringConfig:
        names = [b.name or f"{b.column}_bin" for b in self.bins]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"two bins would both be called {', '.join(twice)}: give one of them a name")
        return self
