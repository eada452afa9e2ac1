"""Configuration of drift monitoring: the test that compares each feature's live values with the package's
reference sketch, the thresholds that call a drift, and when a whole window counts as drifted.

This is the recipe's ``monitor:`` section and the options of ``seekforge monitor``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from seekforge.core.config import BaseConfig

NumericTest = Literal["psi", "ks", "wasserstein"]
CategoricalTest = Literal["psi", "chi2", "jensenshannon"]
DriftTest = Literal["psi", "ks", "wasserstein", "chi2", "jensenshannon"]
EmbeddingTest = Literal["classifier", "mmd", "none"]

#: Tests for numbers (numeric features, text lengths, image intensities, a regression output).
NUMERIC_TESTS: tuple[str, ...] = ("psi", "ks", "wasserstein")
#: Tests for categories (category and binary features, a classifier's labels).
CATEGORICAL_TESTS: tuple[str, ...] = ("psi", "chi2", "jensenshannon")
#: Tests whose threshold is a p-value: drift when p < threshold. The others are distances: drift when
#: the distance >= threshold.
P_VALUE_TESTS: tuple[str, ...] = ("ks", "chi2")

Probability = Annotated[float, Field(gt=0.0, lt=1.0)]
Share = Annotated[float, Field(gt=0.0, le=1.0)]
Positive = Annotated[float, Field(gt=0.0)]


class FeatureMonitorConfig(BaseConfig):
    """Overrides for one input feature, or for the output (by its name).

    Attributes:
        test: The test for this feature instead of ``numeric_test`` / ``categorical_test``; it must suit
            the feature's type (checked against the reference when the report is made).
        threshold: Its threshold instead of the test's default: a p-value for ``ks`` and ``chi2``, a
            distance for the others.
        ignore: Leave the feature out of the report and of the dataset-level share.
    """

    test: DriftTest | None = None
    threshold: Positive | None = None
    ignore: bool = False

    @model_validator(mode="after")
    def _p_value_below_one(self) -> FeatureMonitorConfig:
        if self.test in P_VALUE_TESTS and self.threshold is not None and self.threshold >= 1.0:
            raise ValueError(f"threshold of a {self.test} test is a p-value and must be < 1, got {self.threshold}")
        return self


class MonitorConfig(BaseConfig):
    """How live inputs are compared with the training data's sketch (``reference.json``).

    Defaults: PSI for both numbers and categories. PSI (population stability index) is the industry's
    usual drift score, reads the same for every feature type (0.1: moderate, 0.2: significant change),
    and does not grow with the window's size the way p-values do: a KS or chi-square test on a million
    rows calls a shift of a hundredth of a standard deviation significant. ``wasserstein`` (threshold 0.1
    of the reference's standard deviation) and ``jensenshannon`` (0.1) are the more sensitive distances
    Evidently uses for large samples; ``ks`` and ``chi2`` suit small windows where a p-value's
    "is this more than noise" is the question.

    Attributes:
        numeric_test: Test for numeric features, token/word counts of text, mean intensities of images
            and a regression output: ``psi``, ``ks`` or ``wasserstein``.
        categorical_test: Test for category and binary features and a classifier's labels: ``psi``,
            ``chi2`` or ``jensenshannon``.
        psi_threshold: Drift when PSI >= this.
        ks_p_value: Drift when the two-sample Kolmogorov-Smirnov p-value < this.
        wasserstein_threshold: Drift when the Wasserstein-1 distance divided by the reference's standard
            deviation >= this.
        chi2_p_value: Drift when the chi-square test of homogeneity gives p < this.
        jensenshannon_threshold: Drift when the Jensen-Shannon distance (natural logarithm, as scipy and
            Evidently compute it: from 0 to 0.83) >= this.
        missing_threshold: A feature also drifts when its share of missing values (of empty texts, for
            text) moved by more than this, up or down, from the training data's.
        embedding_test: How a text feature's meaning is compared, on the package model's own text
            embeddings (the pooled vector its head reads; the sketch holds a seeded sample of 1,000
            training rows' embeddings on their (up to) 32 principal axes): ``classifier``, a logistic
            regression that tries to tell training rows from live ones, cross-validated (drift when its
            ROC AUC >= ``classifier_auc``: 0.5 means it cannot tell them apart); ``mmd``, the maximum mean
            discrepancy with a Gaussian kernel and a permutation test (drift when p < ``mmd_p_value``);
            ``none`` to skip it (monitoring then needs no torch). Text lengths are compared either way.
        classifier_auc: Drift when the domain classifier's ROC AUC >= this (Evidently's default, 0.55).
        mmd_p_value: Drift when the MMD permutation test gives p < this.
        embedding_rows: Live texts embedded per window at most (a seeded sample of them beyond it).
        seed: Seed of the live sample, the classifier's folds and the permutations.
        drift_share: The window drifts when at least this share of the features drifted (Evidently's
            default, 0.5: a dataset-level alarm for a broad shift; single features alarm on their own).
        min_rows: Fewer rows in a window (or present values in a feature) are "not enough data", never a
            drift. From 100 rows PSI and Jensen-Shannon hold: a window under 500 rows is compared over fewer
            bins (one per 25 live values, at least 5; the most frequent categories and the rest together),
            which keeps their noise under no drift (about bins / rows for PSI) well below the threshold;
            KS and chi-square give p-values. ``wasserstein`` has a fixed threshold whose noise (about
            1 / sqrt(rows) of a standard deviation) nears 0.1 below ~1,000 rows: raise min_rows with it.
        features: Per-feature overrides, by feature (or output) name.
    """

    numeric_test: NumericTest = "psi"
    categorical_test: CategoricalTest = "psi"
    psi_threshold: Positive = 0.2
    ks_p_value: Probability = 0.05
    wasserstein_threshold: Positive = 0.1
    chi2_p_value: Probability = 0.05
    jensenshannon_threshold: Annotated[float, Field(gt=0.0, lt=0.833)] = 0.1
    missing_threshold: Share = 0.1
    embedding_test: EmbeddingTest = "classifier"
    classifier_auc: Annotated[float, Field(gt=0.5, lt=1.0)] = 0.55
    mmd_p_value: Probability = 0.05
    embedding_rows: Annotated[int, Field(ge=20, le=5000)] = 1000
    seed: int = 0
    drift_share: Share = 0.5
    min_rows: Annotated[int, Field(ge=1)] = 100
    features: dict[str, FeatureMonitorConfig] = {}

    def threshold(self, test: str) -> float:
        """The default threshold of ``test``."""
        return {
            "psi": self.psi_threshold,
            "ks": self.ks_p_value,
            "wasserstein": self.wasserstein_threshold,
            "chi2": self.chi2_p_value,
            "jensenshannon": self.jensenshannon_threshold,
        }[test]
