"""Claim: removing each row's inputs in the order of seekforge's attributions moves the prediction more
than removing as many random ones, on every kind of data: the deletion test's area ratio (attribution
order over random order) is above 1 for breast_cancer, a 30-column table, digits and reviews.

For each data set, ``seekforge explain``'s own method (SHAP for the tables, integrated gradients for digits
and reviews) and occlusion run on the same rows; for the tables, shap's KernelExplainer's values of the
same output go through the same deletion test. Removing an input: a table's feature takes background
rows' values (the output averaged over 30 of them), a token becomes padding, a pixel the training mean.
0 to 50% of each row's inputs are removed in steps of 10%; the random order averages 5 permutations.

    .venv/bin/python benchmarks/explain_faithfulness.py [--text-package PACKAGE] [--rows 100]
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

import seekforge
from explain_speed import EXAMPLES, kernel, table_packages
from seekforge.core.hardware import hardware
from seekforge.data import read_source
from seekforge.explain import explain
from seekforge.explain._faithfulness import deletion_curves
from seekforge.explain._model import load_model
from seekforge.explain._tabular import encoded


def row(name: str, method: str, curve: dict[str, float]) -> str:
    return (f"| {name} | {method} | {curve['area_by_attribution']:.4f} | {curve['area_random']:.4f} "
            f"| {curve['area_ratio']:.2f} |")  # fmt: skip


def main() -> None:
    print(f"machine: {hardware().summary()}", flush=True)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--text-package", type=Path, help="a reviews package (examples/reviews.yaml)")
    parser.add_argument("--rows", type=int, default=100)
    parser.add_argument("--text-rows", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    warnings.simplefilter("ignore")
    lines = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        packages = {name: (package, frame, args.rows) for name, (package, frame) in table_packages(root).items()}
        digits = seekforge.run(str(EXAMPLES / "digits.yaml"), runs_dir=root / "runs").package
        packages["digits"] = (digits, read_source("builtin:digits"), args.rows)
        if args.text_package is not None:
            packages["reviews"] = (args.text_package, read_source("builtin:reviews/test"), args.text_rows)
        for name, (package, frame, rows) in packages.items():
            ours = explain(package, frame, rows=rows, seed=args.seed)
            lines.append(row(name, ours.method, ours.faithfulness))
            print(lines[-1], flush=True)
            occluded = explain(package, frame, rows=rows, method="occlusion", seed=args.seed)
            lines.append(row(name, "occlusion", occluded.faithfulness))
            print(lines[-1], flush=True)
            if ours.kind == "tabular":
                values, _, _ = kernel(package, frame, rows, 100, args.seed)
                theirs = dataclasses.replace(ours, attributions=np.asarray(values))
                model = load_model(package)
                batch = model.preprocessor.transform(frame.iloc[:rows])
                background = model.preprocessor.transform(frame.sample(min(100, len(frame)), random_state=args.seed))
                curve = deletion_curves(model, theirs, batch, encoded(model, background), seed=args.seed)
                lines.append(row(name, "shap KernelExplainer", curve))
                print(lines[-1], flush=True)
    print("\n| data | attributions | area, by attribution | area, random | ratio |")
    print("|---|---|---|---|---|")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
