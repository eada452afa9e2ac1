"""Claim: `seekforge explain` explains 100 rows of a table (breast_cancer, and a 30-column table of numbers
and categories) in <= 60 s and 20 reviews with the fine-tuned MiniLM in <= 60 s on this 2-core machine;
for tables, beside shap's KernelExplainer on the same rows, background and model output, in the same
process, with both explanations' completeness and their agreement.

Tables: the package's model explained over its encoded columns (seekforge's SHAP: the exact explainer up
to 10 features, the permutation explainer with 10 permutations per row above), against
``shap.KernelExplainer`` (its default number of samples, 2 x features + 2048) on the same 100 background
rows, explaining the same output (the probability of the second class). Times include everything each
side does for the rows (seekforge: also loading the model and encoding the rows; not importing shap). Text: integrated gradients (20 steps,
more for a row that misses completeness) at the token embeddings of the reviews package, 20 test reviews.

    .venv/bin/python benchmarks/explain_speed.py [--text-package PACKAGE] [--rows 100] [--text-rows 20]

Without --text-package only the tables run; the reviews package is ``seekforge run examples/reviews.yaml``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import seekforge
from seekforge.core.hardware import hardware
from seekforge.data import read_source
from seekforge.explain import explain
from seekforge.explain._model import load_model
from seekforge.explain._tabular import encoded, score_matrix

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def wide_table(rows: int = 2000, seed: int = 0) -> pd.DataFrame:
    """30 columns: 24 numbers (a few matter, with an interaction) and 6 categories (two matter)."""
    rng = np.random.default_rng(seed)
    numbers = rng.normal(size=(rows, 24))
    frame = pd.DataFrame(numbers.round(4), columns=[f"n{i:02d}" for i in range(24)])
    for i in range(6):
        frame[f"c{i}"] = rng.choice(list("abcdef")[: 3 + i % 3], rows)
    score = (1.2 * numbers[:, 0] - numbers[:, 1] + 0.8 * numbers[:, 2] * numbers[:, 3] + 0.5 * numbers[:, 4]
             + (frame["c0"] == "a") * 1.0 - (frame["c1"] == "b") * 0.8)  # fmt: skip
    frame["label"] = np.where(score + rng.normal(0, 0.3, rows) > 0, "yes", "no")
    return frame


def wide_recipe(source: Path) -> dict[str, object]:
    inputs = [{"name": f"n{i:02d}", "type": "numeric"} for i in range(24)]
    inputs += [{"name": f"c{i}", "type": "category"} for i in range(6)]
    return {
        "name": "wide", "seed": 0, "data": {"source": str(source)},
        "features": {"inputs": inputs, "output": {"name": "label", "type": "binary"}},
        "model": {"type": "mlp", "hidden": [64, 32]}, "train": {"epochs": 30, "batch_size": 64, "lr": 0.003},
    }  # fmt: skip


def table_packages(root: Path) -> dict[str, tuple[Path, pd.DataFrame]]:
    """breast_cancer and the 30-column table, each trained into a package under ``root``, with its data."""
    wide_table().to_csv(root / "wide.csv", index=False)
    tables = {
        "breast_cancer": (str(EXAMPLES / "breast_cancer.yaml"), read_source("builtin:breast_cancer")),
        "wide (30 columns)": (wide_recipe(root / "wide.csv"), pd.read_csv(root / "wide.csv")),
    }
    return {
        name: (seekforge.run(recipe, runs_dir=root / "runs").package, frame) for name, (recipe, frame) in tables.items()
    }


def kernel(
    package: Path, frame: pd.DataFrame, rows: int, background: int, seed: int
) -> tuple[np.ndarray, float, float]:
    """shap.KernelExplainer's values of the second class's probability, its seconds, its completeness gap."""
    import shap

    model = load_model(package)
    x = encoded(model, model.preprocessor.transform(frame.iloc[:rows]))
    pool = frame if len(frame) <= background else frame.sample(background, random_state=seed)
    reference = encoded(model, model.preprocessor.transform(pool))
    started = time.perf_counter()
    explainer = shap.KernelExplainer(lambda m: score_matrix(model, m)[:, 1], reference)
    values = np.asarray(explainer.shap_values(x, silent=True))
    seconds = time.perf_counter() - started
    gap = np.abs(explainer.expected_value + values.sum(axis=1) - score_matrix(model, x)[:, 1]).max()
    return values, seconds, float(gap)


def main() -> None:
    print(f"machine: {hardware().summary()}", flush=True)  # every figure depends on it
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text-package", type=Path, help="a reviews package (examples/reviews.yaml)")
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--text-rows", type=int, default=20)
    parser.add_argument("--background", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    warnings.simplefilter("ignore")
    import shap  # noqa: F401  (imported before the clocks start, on both sides)

    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        for name, (package, frame) in table_packages(root).items():
            ours = explain(package, frame, rows=args.rows, background=args.background, seed=args.seed,
                           faithfulness=False)  # fmt: skip
            theirs, seconds, gap = kernel(package, frame, args.rows, args.background, args.seed)
            mine = np.asarray(ours.attributions)
            agreement = np.corrcoef(mine.ravel(), theirs.ravel())[0, 1]
            top = np.mean([np.argmax(np.abs(a)) == np.argmax(np.abs(b)) for a, b in zip(mine, theirs, strict=True)])
            lines.append(
                f"| {name} | {args.rows} | {ours.method} | {ours.seconds:.1f} | {ours.completeness['max_error']:.1e} "
                f"| {seconds:.1f} | {gap:.1e} | {seconds / ours.seconds:.1f}x | {agreement:.3f} | {top:.0%} |"
            )
            print(lines[-1], flush=True)
    print("\n| table | rows | seekforge method | seekforge s | its largest completeness gap | KernelExplainer s "
          "| its gap | Kernel / seekforge time | correlation of the values | same top feature |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(lines))
    if args.text_package is not None:
        test = read_source("builtin:reviews/test")
        found = explain(args.text_package, test, rows=args.text_rows, seed=args.seed, faithfulness=False)
        print(f"\ntext: {args.text_rows} reviews, {found.method}, {found.seconds:.1f} s "
              f"(target <= 60 s); completeness {found.completeness['passed']} (largest gap "
              f"{found.completeness['max_error']:.1e}; {found.completeness['note']})")  # fmt: skip


if __name__ == "__main__":
    main()
