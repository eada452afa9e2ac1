"""Claim: every example recipe matches or beats a scikit-learn baseline fitted in the same run on the same split.

Baselines (fitted on train + validation, since they need no validation split): HistGradientBoosting for
tabular data, an RBF SVC on the pixels for digits, logistic regression on TF-IDF for reviews.

    python benchmarks/accuracy_vs_sklearn.py [--only digits,wine] [--set train.epochs=5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from seekforge.data import load_splits
from seekforge.pipeline import run
from seekforge.recipe import Recipe, load_recipe

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ORDER = ("digits", "breast_cancer", "wine", "diabetes", "reviews")


def baseline(recipe: Recipe) -> tuple[str, float]:
    """Fit the scikit-learn baseline on train + validation; return (name, headline test metric)."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.svm import SVC

    splits = load_splits(recipe.data, recipe.features, recipe.seed)
    fit_frame = pd.concat([splits.train, splits.validation], ignore_index=True)
    names = [f.name for f in recipe.features.inputs]
    target = recipe.features.output.name
    kinds = {f.type for f in recipe.features.inputs}
    if kinds == {"image"}:

        def pixels(frame: pd.DataFrame) -> np.ndarray:
            return np.stack([np.asarray(v, dtype=float).ravel() / 255.0 for v in frame[names[0]]])

        model, x_fit, x_test, name = SVC(), pixels(fit_frame), pixels(splits.test), "SVC (rbf) on pixels"
    elif kinds == {"text"}:
        vec = TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)
        x_fit = vec.fit_transform(fit_frame[names[0]].fillna(""))
        x_test = vec.transform(splits.test[names[0]].fillna(""))
        model, name = LogisticRegression(max_iter=2000, C=4.0), "LogisticRegression on TF-IDF"
    else:
        x_fit, x_test = fit_frame[names], splits.test[names]
        if recipe.task == "regression":
            model = HistGradientBoostingRegressor(random_state=recipe.seed)
        else:
            model = HistGradientBoostingClassifier(random_state=recipe.seed)
        name = type(model).__name__
    y_fit = fit_frame[target].astype(float if recipe.task == "regression" else str)
    y_test = splits.test[target].astype(float if recipe.task == "regression" else str)
    model.fit(x_fit, y_fit)
    pred = model.predict(x_test)
    score = r2_score(y_test, pred) if recipe.task == "regression" else accuracy_score(y_test, pred)
    return name, float(score)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(ORDER))
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    os.environ.setdefault("SEEKFORGE_NO_PROGRESS", "1")
    rows = []
    with tempfile.TemporaryDirectory() as runs:
        for example in args.only.split(","):
            recipe = load_recipe(EXAMPLES / f"{example}.yaml", overrides=args.overrides)
            started = time.perf_counter()
            base_name, base_score = baseline(recipe)
            base_seconds = time.perf_counter() - started
            started = time.perf_counter()
            result = run(recipe, runs_dir=runs)
            ours_seconds = time.perf_counter() - started
            metric = "r2" if recipe.task == "regression" else "accuracy"
            ours = float(result.metrics[metric])
            rows.append((example, metric, ours, base_name, base_score, ours - base_score, ours_seconds, base_seconds))
    print()
    header = f"{'example':<14} {'metric':<9} {'seekforge':>9} {'baseline':>9} {'delta':>7} {'ours s':>7} {'base s':>7}  baseline"
    print(header)
    print("-" * len(header))
    for ex, metric, ours, base_name, base, delta, t_ours, t_base in rows:
        print(f"{ex:<14} {metric:<9} {ours:9.4f} {base:9.4f} {delta:+7.4f} {t_ours:7.1f} {t_base:7.1f}  {base_name}")
    beaten = sum(1 for r in rows if r[5] >= 0)
    print(f"\nseekforge matches or beats the baseline on {beaten}/{len(rows)} data sets")


if __name__ == "__main__":
    main()
