"""Claim: every example recipe matches or beats a scikit-learn baseline fitted in the same run on the same split.

Baselines (fitted on train + validation, since they need no validation split): HistGradientBoosting for
tabular data, an RBF SVC on the pixels for digits, logistic regression on TF-IDF for reviews.

Test sets of these data sets hold 36 to 1,000 rows, so one row moves accuracy by up to 3 points: each data
set runs under `--seeds` seeds (the seed redraws the split for both sides, and seekforge's initialisation),
and the table compares the means. reviews has an official test split and a 7-minute fine-tune on 2 CPU
cores, so it runs `--text-seeds` seeds.

    python benchmarks/accuracy_vs_sklearn.py [--only digits,wine] [--seeds 5] [--set train.epochs=5]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from seekforge.core.hardware import hardware
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
    print(f"machine: {hardware().summary()}", flush=True)  # every figure depends on it
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", default=",".join(ORDER))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--text-seeds", type=int, default=1)
    parser.add_argument("--set", action="append", default=[], dest="overrides")
    args = parser.parse_args()
    os.environ.setdefault("SEEKFORGE_NO_PROGRESS", "1")
    rows = []
    with tempfile.TemporaryDirectory() as runs:
        for example in args.only.split(","):
            base = load_recipe(EXAMPLES / f"{example}.yaml", overrides=args.overrides)
            metric = "r2" if base.task == "regression" else "accuracy"
            seeds = args.text_seeds if example == "reviews" else args.seeds
            ours, theirs, t_ours, t_base = [], [], 0.0, 0.0
            for seed in range(base.seed, base.seed + seeds):
                recipe = load_recipe(base, overrides=[f"seed={seed}"])
                started = time.perf_counter()
                base_name, score = baseline(recipe)
                t_base += time.perf_counter() - started
                started = time.perf_counter()
                ours.append(float(run(recipe, runs_dir=runs).metrics[metric]))
                t_ours += time.perf_counter() - started
                theirs.append(score)
                print(f"{example} seed {seed}: seekforge {ours[-1]:.4f}  {base_name} {score:.4f}", flush=True)
            rows.append((example, metric, seeds, ours, base_name, theirs, t_ours / seeds, t_base / seeds))
    print()
    header = (
        f"{'example':<14} {'metric':<9} {'seeds':>5} {'seekforge':>16} {'baseline':>16} {'delta':>7} "
        f"{'ours s':>7} {'base s':>7}  baseline"
    )
    print(header)
    print("-" * len(header))
    wins = 0
    for example, metric, seeds, ours, base_name, theirs, t_ours, t_base in rows:
        delta = float(np.mean(ours) - np.mean(theirs))
        wins += delta >= 0
        print(
            f"{example:<14} {metric:<9} {seeds:>5} {np.mean(ours):8.4f} ±{np.std(ours):.4f} "
            f"{np.mean(theirs):8.4f} ±{np.std(theirs):.4f} {delta:+7.4f} {t_ours:7.1f} {t_base:7.1f}  {base_name}"
        )
    print(f"\nseekforge's mean matches or beats the baseline's on {wins}/{len(rows)} data sets")


if __name__ == "__main__":
    main()
