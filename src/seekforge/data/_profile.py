"""Profile a table: inferred types, missing values, distributions, and the problems that cost models
accuracy (constant and ID-like columns, label leakage, duplicates, class imbalance, unreadable images),
with the permutation importance of each column for a quick model of the label.

Everything is computed column by column on the frame as read, without copies of the whole table, so a
1,000,000 x 20 table profiles within a few times its size in memory.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seekforge.core.errors import DataError
from seekforge.core.images import image_size
from seekforge.core.progress import progress_task
from seekforge.data._correlation import class_distributions, correlations, redundant_partners
from seekforge.data._duplicates import duplicate_counts
from seekforge.data._pii import pii_profile
from seekforge.data._sequences import numeric_item
from seekforge.data._values import as_text, nested_positions, numbers
from seekforge.data._warnings import warnings_of

#: a value that parses as a number in at least this share of a column's non-missing cells makes it numeric
NUMERIC_SHARE = 0.95
#: unique share above which a non-numeric, non-text column is a key rather than a category
ID_UNIQUE_SHARE = 0.95
#: rows sampled for the costlier checks (leakage, near duplicates of text, language)
SAMPLE_ROWS = 20_000
#: a table with this many columns shows progress column by column
WIDE = 200
#: permutation importance is measured on a seeded sample of at most this many columns (each one costs a
#: pass of the model over the held-out rows per repeat: 10,000 columns would take many minutes)
IMPORTANCE_COLUMNS = 500
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
_WORDS = re.compile(r"\w+", re.UNICODE)


def infer_type(column: pd.Series, declared: str | None = None) -> str:
    """numeric, binary, category, text, datetime, image or sequence, from the values (``declared`` wins)."""
    if declared:
        return declared
    present = column.dropna()
    if present.empty:
        return "category"
    lists = not pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if lists and present.head(SAMPLE_ROWS).astype(str).map(_is_json_list).mean() >= NUMERIC_SHARE:
        return "sequence"  # before the two-values test: lists can be few and alike
    if pd.api.types.is_bool_dtype(column) or present.nunique() == 2:
        return "binary"
    if pd.api.types.is_numeric_dtype(column):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(column):
        return "datetime"
    sample = present.head(SAMPLE_ROWS).astype(str)
    if pd.to_numeric(sample, errors="coerce").notna().mean() >= NUMERIC_SHARE:
        return "numeric"
    if sample.str.lower().str.endswith(_IMAGE_SUFFIXES).mean() >= NUMERIC_SHARE:
        return "image"
    if _looks_like_dates(sample):
        return "datetime"
    words = sample.str.count(r"\s+") + 1
    if words.mean() >= 4 and sample.nunique() / len(sample) > 0.5:
        return "text"
    return "category"


def _is_json_list(text: str) -> bool:
    """Whether ``text`` is a JSON list of plain values (numbers, strings, nulls): a sequence's cell."""
    text = text.strip()
    if not (text.startswith("[") and text.endswith("]")):
        return False
    try:
        value = json.loads(text)
    except ValueError:
        return False
    return isinstance(value, list) and all(v is None or isinstance(v, int | float | str) for v in value)


def _looks_like_dates(sample: pd.Series) -> bool:
    if not sample.str.contains(r"\d{1,4}[-/.:]\d{1,2}", regex=True).mean() >= NUMERIC_SHARE:
        return False
    parsed = pd.to_datetime(sample, errors="coerce", format="mixed")
    return bool(parsed.notna().mean() >= NUMERIC_SHARE)


def infer_task(column: pd.Series, kind: str) -> str:
    """classification for binary/category labels and for numbers with few distinct integer values."""
    if kind != "numeric":
        return "classification"
    values = pd.Series(numbers(column)).dropna()
    integral = bool((values == values.round()).all())
    return "classification" if integral and values.nunique() <= 20 else "regression"


def profile_steps(label: str | None) -> int:
    """How many steps ``profile_frame`` announces."""
    return 4 if label is None else 6


def profile_frame(
    frame: pd.DataFrame,
    *,
    label: str | None = None,
    types: Mapping[str, str] | None = None,
    task: str = "auto",
    seed: int = 0,
    base: Path | None = None,
    step: Callable[[str], Any] | None = None,
) -> dict[str, Any]:
    """A JSON-ready profile of ``frame``.

    Args:
        frame: The table as read.
        label: The label column, if any.
        types: Declared column types (the rest are inferred).
        task: classification, regression or auto.
        seed: Seed of the row samples the costlier checks use.
        base: Where relative image paths that do not exist as given are looked for (the data file's folder).
        step: Called with the name of each step as it starts (``profile_steps`` of them), for progress.

    Raises:
        DataError: The table is empty, or ``label`` is not a column.
    """
    source = frame.attrs.get("source", "data")
    if frame.empty or not len(frame.columns):
        raise DataError(f"{source} holds no rows", hint="check the file and its delimiter")
    if label is not None and label not in frame.columns:
        raise DataError(
            f"{source}: the label column '{label}' does not exist",
            hint=f"columns: {', '.join(map(str, frame.columns[:20]))}",
        )
    types = dict(types or {})
    unknown = [name for name in types if name not in frame.columns]
    if unknown:
        raise DataError(f"{source}: declared types name missing columns: {', '.join(unknown)}")
    nested = {str(name): len(where) for name in frame.columns if len(where := nested_positions(frame[name]))}
    if nested:  # lists and objects (Parquet, JSON Lines) are profiled as their text, and named in the warnings
        frame = frame.assign(**{name: frame[name].map(as_text) for name in nested})
    kinds = {str(name): infer_type(frame[name], types.get(str(name))) for name in frame.columns}
    rows = len(frame)
    step = step or (lambda name: None)
    step("column statistics")
    columns: dict[str, Any] = {}
    width = len(frame.columns)
    with progress_task(f"statistics of {width:,} columns", width, show=width >= WIDE) as advance:
        for name in frame.columns:
            columns[str(name)] = _column(frame[name], kinds[str(name)], rows, base)
            if str(name) in nested:
                columns[str(name)]["nested"] = nested[str(name)]
            advance()
    profile: dict[str, Any] = {
        "source": source,
        "rows": rows,
        "columns": columns,
        "memory_bytes": int(frame.memory_usage(deep=False).sum()),
        "duplicates": step("duplicates") or duplicate_counts(frame, kinds),
    }
    if label is not None:
        kind = kinds[label]
        label_task = infer_task(frame[label], kind) if task == "auto" else task
        profile["label"] = _label(frame[label], label, label_task)
        step("leakage")
        for name, share in leakage(frame, label, kinds, label_task, seed=seed).items():
            columns[name]["leakage"] = share
        step("importance")
        measured = importance(frame, label, kinds, label_task, seed=seed)
        for name, drop in measured.items():
            columns[name]["importance"] = drop
        candidates = sum(1 for n, k in kinds.items() if n != label and k in ("numeric", "binary", "category"))
        if len(measured) < candidates:
            profile["importance_sample"] = {"columns": len(measured), "of": candidates}
        if label_task == "classification":
            ranked = sorted((n for n, k in kinds.items() if k == "numeric" and n != label),
                            key=lambda n: -columns[n].get("importance", 0.0))  # fmt: skip
            profile["by_class"] = class_distributions(frame, kinds, label, ranked, seed=seed)
    step("personal data")
    profile["pii"] = pii_profile(frame, {n: k for n, k in kinds.items() if n != label}, seed=seed)
    step("correlations")
    profile["correlation"] = correlations(frame, kinds, label, seed=seed)
    for name, (partner, rho) in redundant_partners(profile["correlation"]).items():
        columns[name]["redundant_with"] = [partner, rho]
    profile["warnings"] = warnings_of(profile)
    return profile


def _column(column: pd.Series, kind: str, rows: int, base: Path | None) -> dict[str, Any]:
    missing = int(column.isna().sum())
    present = column.dropna()
    unique = int(present.nunique())
    out: dict[str, Any] = {
        "type": kind,
        "missing": missing,
        "missing_share": missing / rows,
        "unique": unique,
        "unique_share": unique / max(len(present), 1),
        "constant": unique <= 1,
        "id_like": id_like(column, kind),
    }
    if kind == "numeric":
        values = numbers(present)
        values = values[~np.isnan(values)]
        out["unparseable"] = int(len(present) - len(values))
        if len(values):
            quantiles = np.quantile(values, [0.0, 0.01, 0.25, 0.5, 0.75, 0.99, 1.0])
            counts, edges = np.histogram(values, bins=20)
            out.update(
                min=float(quantiles[0]),
                max=float(quantiles[-1]),
                mean=float(values.mean()),
                std=float(values.std()),
                quantiles=dict(zip(["p0", "p1", "p25", "p50", "p75", "p99", "p100"], quantiles.tolist(), strict=True)),
                zeros=int((values == 0).sum()),
                negatives=int((values < 0).sum()),
                histogram={"edges": edges.tolist(), "counts": counts.tolist()},
            )
    elif kind in ("category", "binary"):
        top = present.astype(str).value_counts().head(10)
        out["top"] = [[str(k), int(v)] for k, v in top.items()]
    elif kind == "text":
        out.update(_text(present.astype(str)))
    elif kind == "datetime":
        parsed = pd.to_datetime(present, errors="coerce", format="mixed")
        out["unparseable"] = int(parsed.isna().sum())
        if parsed.notna().any():
            out.update(min=str(parsed.min()), max=str(parsed.max()))
    elif kind == "image":
        out.update(_images(present.astype(str), base))
    elif kind == "sequence":
        out.update(_sequences(present.astype(str)))
    return out


def _sequences(cells: pd.Series) -> dict[str, Any]:
    """Lengths of the lists (how many a ``max_length`` of 64, the default, would cut), their items' kind,
    and the commonest items."""
    lists = [json.loads(c) if _is_json_list(c) else [] for c in cells]
    if not lists:  # declared a sequence, and every cell missing
        return {"items": None, "lengths": {}, "empty": 0, "longer_than_64": 0, "top": []}
    lengths = np.array([len(items) for items in lists], dtype=float)
    items = [v for values in lists for v in values if v is not None]
    numbers_only = all(numeric_item(v) for v in items)
    counts = pd.Series([str(v) for v in items], dtype=object).value_counts().head(10)
    return {
        "items": "numbers" if numbers_only else "tokens",
        "lengths": {
            "min": float(lengths.min()),
            "mean": float(lengths.mean()),
            "p99": float(np.quantile(lengths, 0.99)),
            "max": float(lengths.max()),
        },
        "empty": int((lengths == 0).sum()),
        "longer_than_64": int((lengths > 64).sum()),
        "top": [[str(k), int(v)] for k, v in counts.items()],
    }


def id_like(column: pd.Series, kind: str) -> str | None:
    """Why the column looks like an identifier (near-unique key, or a counter), or None."""
    present = column.dropna()
    if len(present) < 20 or kind in ("text", "image", "binary", "datetime", "sequence"):
        return None
    unique_share = present.nunique() / len(present)
    if kind == "numeric":
        values = pd.Series(numbers(present)).dropna()
        integral = len(values) == len(present) and bool((values == values.round()).all())
        if integral and unique_share >= 0.999 and (values.is_monotonic_increasing or values.is_monotonic_decreasing):
            return "a monotonic counter"
        return None
    if unique_share >= ID_UNIQUE_SHARE:
        return f"a near-unique key ({unique_share:.1%} of values distinct)"
    return None


def _text(texts: pd.Series) -> dict[str, Any]:
    lengths = texts.str.len()
    words = texts.str.count(r"\S+")
    scripts: Counter[str] = Counter(_script(t) for t in texts.head(SAMPLE_ROWS))
    total = sum(scripts.values()) or 1
    return {
        "chars": {"mean": float(lengths.mean()), "p50": float(lengths.median()), "max": int(lengths.max())},
        "words": {"mean": float(words.mean()), "p50": float(words.median()), "max": int(words.max())},
        "empty": int((texts.str.strip() == "").sum()),
        "scripts": {k: v / total for k, v in scripts.most_common()},
    }


def _script(text: str) -> str:
    """The writing system most of a text's letters belong to (Latin, Cyrillic, CJK, ...)."""
    counts: Counter[str] = Counter()
    for char in text[:500]:
        if char.isalpha():
            name = unicodedata.name(char, "")
            counts["CJK" if name.startswith(("CJK", "HIRAGANA", "KATAKANA", "HANGUL")) else name.split(" ")[0]] += 1
    return counts.most_common(1)[0][0].title() if counts else "none"


def _images(paths: pd.Series, base: Path | None) -> dict[str, Any]:
    sizes: Counter[str] = Counter()
    unreadable: list[str] = []
    too_large: list[str] = []
    for value in paths:
        path = Path(value)  # as training reads it; else beside the data file, as its author may have meant
        if base is not None and not path.is_absolute() and not path.exists() and (base / value).exists():
            path = base / value
        try:
            width, height = image_size(path, what=path)
            sizes[f"{width}x{height}"] += 1
        except DataError:
            too_large.append(value)
        except (OSError, ValueError, SyntaxError):  # Pillow's UnidentifiedImageError too
            unreadable.append(value)
    return {
        "sizes": dict(sizes.most_common(10)),
        "unreadable": len(unreadable),
        "unreadable_files": unreadable[:20],
        "too_large": len(too_large),
        "too_large_files": too_large[:20],
    }


def _label(column: pd.Series, name: str, task: str) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name, "task": task, "missing": int(column.isna().sum())}
    if task == "classification":
        counts = column.dropna().astype(str).value_counts()
        out["classes"] = {str(k): int(v) for k, v in counts.items()}
        out["imbalance_ratio"] = float(counts.max() / counts.min()) if len(counts) > 1 else float("inf")
    return out


def leakage(frame: pd.DataFrame, label: str, kinds: Mapping[str, str], task: str, *, seed: int = 0) -> dict[str, float]:
    """How well each column alone predicts the label (cross-validated accuracy of a shallow tree, or R2 for
    regression), on at most SAMPLE_ROWS rows. A score near 1 on its own means the column leaks the label."""
    from sklearn.metrics import r2_score
    from sklearn.model_selection import KFold, StratifiedKFold
    from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

    data = frame[frame[label].notna()]
    if len(data) > SAMPLE_ROWS:
        data = data.sample(SAMPLE_ROWS, random_state=seed)
    if len(data) < 20:
        return {}
    target = data[label].astype(str) if task == "classification" else pd.to_numeric(data[label], errors="coerce")
    if task == "classification" and target.value_counts().min() < 3:
        return {}
    classify = task == "classification"
    y = target.to_numpy()
    # the folds cross_val_score(cv=3) makes, made once for every column (it would remake them per column)
    folds = list((StratifiedKFold(3) if classify else KFold(3)).split(np.zeros(len(y)), y))
    names = [n for n in frame.columns if n != label and kinds[str(n)] not in ("text", "image")]
    scores = {}
    with progress_task(f"leakage of {len(names):,} columns", len(names), show=len(names) >= WIDE) as advance:
        for name in names:
            advance()
            kind = kinds[str(name)]
            if kind == "numeric":
                x = numbers(data[name]).reshape(-1, 1)  # trees take NaN
            else:
                x = data[name].astype(str).astype("category").cat.codes.to_numpy().reshape(-1, 1)
            if id_like(data[name], kind):
                continue  # a key predicts nothing beyond the rows it was seen on
            tree = DecisionTreeClassifier if classify else DecisionTreeRegressor
            fold_scores = []
            for fit, held in folds:
                guess = tree(max_depth=4, random_state=seed).fit(x[fit], y[fit]).predict(x[held])
                fold_scores.append(np.mean(guess == y[held]) if classify else r2_score(y[held], guess))
            scores[str(name)] = float(np.mean(fold_scores))
    return scores


def importance(
    frame: pd.DataFrame, label: str, kinds: Mapping[str, str], task: str, *, seed: int = 0
) -> dict[str, float]:
    """Permutation importance of each numeric, binary and category column: how much a quick gradient
    boosting model's held-out score (accuracy, or R2) drops when the column's values are shuffled, on
    at most SAMPLE_ROWS rows. Near zero: the column adds little the others do not."""
    from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
    from sklearn.inspection import permutation_importance
    from sklearn.model_selection import train_test_split
    from threadpoolctl import threadpool_limits

    data = frame[frame[label].notna()]
    if len(data) > SAMPLE_ROWS:
        data = data.sample(SAMPLE_ROWS, random_state=seed)
    names = [str(c) for c in data.columns if c != label and kinds[str(c)] in ("numeric", "binary", "category")]
    if len(data) < 40 or not names:
        return {}
    if len(names) > IMPORTANCE_COLUMNS:
        keep = np.sort(np.random.default_rng(seed).choice(len(names), IMPORTANCE_COLUMNS, replace=False))
        names = [names[i] for i in keep]
    columns, categorical = [], []
    for name in names:
        if kinds[name] == "numeric":
            columns.append(numbers(data[name]))
            categorical.append(False)
        else:
            codes = data[name].astype(str).where(data[name].notna()).astype("category").cat.codes.to_numpy()
            columns.append(np.where(codes < 0, np.nan, codes).astype(np.float64))
            categorical.append(int(codes.max(initial=0)) < 255)
    x = np.column_stack(columns)
    classify = task == "classification"
    y = data[label].astype(str).to_numpy() if classify else pd.to_numeric(data[label], errors="coerce").to_numpy()
    if classify and pd.Series(y).value_counts().min() < 2:
        return {}
    x_fit, x_held, y_fit, y_held = train_test_split(
        x, y, test_size=0.3, random_state=seed, stratify=y if classify else None
    )
    kind = HistGradientBoostingClassifier if classify else HistGradientBoostingRegressor
    model = kind(categorical_features=np.array(categorical) if any(categorical) else None, random_state=seed)
    with threadpool_limits(limits=1, user_api="openmp"):  # see _label_issues: a contended pool crawls
        model.fit(x_fit, y_fit)
        result = permutation_importance(model, x_held, y_held, n_repeats=5, random_state=seed)
    return {name: float(value) for name, value in zip(names, result.importances_mean, strict=True)}
