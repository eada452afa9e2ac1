"""Claim: `seekforge monitor`'s embedding drift finds a change in what live texts are about that their
lengths do not show, raises no alarm on fresh texts of the training kind, and agrees with Evidently's
embedding drift methods run on the same embeddings in the same process.

The reviews package (``seekforge run examples/reviews.yaml``) embeds 1,000 seeded training reviews, as
packaging does (``embedding_sketch``: the fine-tuned MiniLM's pooled vector, 32 principal axes), and the
length sketch is built from the 4,000 training reviews (``build_reference``, as packaging does); each
scenario then draws ``--draws`` live windows of ``--rows`` reviews (seeds 0, 1, ...):

- fresh reviews: the test split, never trained on (no drift: a verdict of drift is a false alarm);
- only 'other' reviews: the test split's reviews not scored great (what the reviews say moved);
- about coffee or tea / about dogs or cats: reviews that mention them, test split and the training rows
  outside the reference sample (a change of subject).

For each window: seekforge's token-length PSI (the length test every text feature gets), its domain
classifier (cross-validated logistic regression on the 32 axes, AUC >= 0.55) and its MMD test (p < 0.05),
and Evidently's ``ModelDriftMethod`` (SGD classifier on one half-split, AUC > 0.55) and
``MMDDriftMethod`` (defaults) on the full 384-wide embeddings of the same rows. Embedding the texts is
timed apart: it is the same for both.

Evidently 0.7 needs pandas < 3, so this runs in its own environment (see benchmarks/README.md):

    .venv-bench/bin/python benchmarks/text_drift.py --package PACKAGE [--rows 300] [--draws 5]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from seekforge.core.hardware import hardware
from seekforge.data import Preprocessor, read_source
from seekforge.models import build_model
from seekforge.monitor import MonitorConfig, build_reference, drift_report
from seekforge.monitor._embedding import SAMPLE_ROWS, embed_texts, embedding_drift, sketch_of

SUBJECTS = {"about coffee or tea": r"\b(?:coffee|tea)\b", "about dogs or cats": r"\b(?:dogs?|cats?)\b"}


def main() -> None:
    print(f"machine: {hardware().summary()}", flush=True)  # every figure depends on it
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", type=Path, required=True, help="a reviews package (examples/reviews.yaml)")
    parser.add_argument("--rows", type=int, default=300, help="live reviews per window")
    parser.add_argument("--draws", type=int, default=5, help="windows per scenario")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(2)
    from evidently.legacy.metrics.data_drift.embedding_drift_methods import MMDDriftMethod, ModelDriftMethod

    pre = Preprocessor.load(args.package / "preprocessor.json")
    model = build_model(args.package)
    train, test = read_source("builtin:reviews"), read_source("builtin:reviews/test")

    def embed(texts: pd.Series) -> np.ndarray:
        return embed_texts(model, pre, "review", texts)

    picked = np.sort(np.random.default_rng(args.seed).choice(len(train), SAMPLE_ROWS, replace=False))
    started = time.perf_counter()
    reference_vectors = embed(train["review"].iloc[picked])
    reference_seconds = time.perf_counter() - started
    sketch = sketch_of(reference_vectors)  # as embedding_sketch makes it from its sample
    # the length sketches as packaging makes them, from all 4,000 training reviews
    reference = build_reference(train, pre)
    reference["features"]["review"]["embedding"] = sketch
    print(f"reference: {SAMPLE_ROWS:,} training reviews embedded in {reference_seconds:.1f} s; "
          f"{len(sketch['axes'])} axes hold {sketch['explained']:.1%} of their variance")  # fmt: skip

    rest = train.drop(train.index[picked])
    pools = {
        "fresh reviews (test split)": test,
        "only 'other' reviews (test split)": test[test["score"] != "great"],
        **{name: pd.concat([rest, test])[lambda f, p=p: f["review"].str.contains(p, case=False)] for name, p in SUBJECTS.items()},
    }  # fmt: skip
    classifier, mmd = MonitorConfig(min_rows=args.rows), MonitorConfig(min_rows=args.rows, embedding_test="mmd")
    lengths = MonitorConfig(min_rows=args.rows, embedding_test="none")
    rows = []
    times: dict[str, list[float]] = {k: [] for k in ("embed", "classifier", "mmd", "ev_model", "ev_mmd")}
    for scenario, pool in pools.items():
        found: dict[str, list[float]] = {k: [] for k in ("psi", "auc", "mmd_p", "ev_auc", "ev_mmd")}
        verdicts: dict[str, int] = {k: 0 for k in ("psi", "auc", "mmd_p", "ev_auc", "ev_mmd")}
        for draw in range(args.draws):
            live = pool.sample(n=min(args.rows, len(pool)), random_state=args.seed + draw)
            started = time.perf_counter()
            vectors = embed(live["review"])
            times["embed"].append((time.perf_counter() - started) / len(live))
            length = drift_report(reference, live, lengths, preprocessor=pre).features[0]
            assert length.measure == "token counts" and length.statistic is not None
            found["psi"].append(length.statistic)
            verdicts["psi"] += length.drifted
            for key, config, timer in (("auc", classifier, "classifier"), ("mmd_p", mmd, "mmd")):
                started = time.perf_counter()
                result = embedding_drift(sketch, vectors, config, enough=True)
                times[timer].append(time.perf_counter() - started)
                found[key].append(float(result.p_value if key == "mmd_p" else result.statistic))  # type: ignore[arg-type]
                verdicts[key] += result.drifted
            for key, method, timer in (
                ("ev_auc", ModelDriftMethod(), "ev_model"),
                ("ev_mmd", MMDDriftMethod(), "ev_mmd"),
            ):
                started = time.perf_counter()
                score, drifted, _ = method(pd.DataFrame(vectors), pd.DataFrame(reference_vectors))
                times[timer].append(time.perf_counter() - started)
                found[key].append(float(score))
                verdicts[key] += bool(drifted)
        rows.append((scenario, len(pool), found, verdicts))

    draws = args.draws
    print(f"\n{draws} windows of {args.rows} reviews per scenario; cells: mean statistic, then windows called drift")
    print(
        "| scenario | pool | length PSI | seekforge classifier AUC | seekforge MMD p | Evidently model AUC | Evidently MMD² |"
    )
    print("|---|---|---|---|---|---|---|")
    for scenario, size, found, verdicts in rows:
        cells = [f"{np.mean(found[k]):.3f}: {verdicts[k]}/{draws}" for k in ("psi", "auc", "mmd_p", "ev_auc", "ev_mmd")]
        print(f"| {scenario} | {size} | " + " | ".join(cells) + " |")
    print(f"\nembedding: {1000 * np.mean(times['embed']):.1f} ms per review (both tools need it)")
    ours = {k: np.median(times[k]) for k in ("classifier", "mmd", "ev_model", "ev_mmd")}
    print("| test | seekforge s (median) | Evidently s (median) |\n|---|---|---|")
    print(f"| classifier | {ours['classifier']:.3f} | {ours['ev_model']:.3f} |")
    print(f"| MMD | {ours['mmd']:.3f} | {ours['ev_mmd']:.3f} |")


if __name__ == "__main__":
    main()
