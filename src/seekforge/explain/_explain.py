"""``explain``: attributions of a package's predictions to its inputs, the method picked by the model's
inputs, with a completeness check and a deletion test of faithfulness."""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from seekforge.core.errors import ConfigError, DataError
from seekforge.core.progress import progress_task
from seekforge.explain import _image, _tabular, _text
from seekforge.explain._faithfulness import deletion_curves
from seekforge.explain._model import ExplainedModel, load_model

METHODS = ("auto", "shap", "ig", "occlusion")
#: The most rows one explanation takes, by kind of input (gradient methods cost a backward pass per step).
MAX_ROWS = {"tabular": 1000, "text": 200, "image": 500, "inputs": 200}
#: Integrated gradients' completeness tolerance: this share of the output's scale (1 for probabilities,
#: the target's standard deviation for a regressor), or of |output - base| when that is larger.
TOLERANCE = 0.02


@dataclass
class Explanation:
    """Attributions of some rows' predictions.

    Attributes:
        kind: ``tabular``, ``text`` or ``image``.
        method: ``shap-exact``, ``shap-permutation``, ``integrated-gradients`` or ``occlusion``.
        output: What the attributions explain (the probability of each row's predicted class, or the
            predicted value).
        rows: The explained rows' positions in the data (0-based).
        targets: The output each row's attributions explain (a class index; 0 for a regressor).
        predictions, values, base: Each row's prediction, its explained output, and the output the
            attributions start from (SHAP: the mean over the background; gradients and occlusion: the
            baseline input's).
        features: The tabular features, in the order of the attribution columns.
        attributions: ``[rows, features]`` (tables), one list per row (text: per token, with ``tokens``),
            or ``[rows, height, width]`` (images).
        completeness: Whether base + sum(attributions) = value for every row: ``checked``, ``tolerance``,
            ``max_error``, ``passed`` and ``note``.
        faithfulness: The deletion test: mean drop of the explained output as the top-k inputs (by
            attribution) are removed, against k random ones, and the ratio of the areas under both curves.
    """

    package: str
    kind: str
    method: str
    output: str
    rows: list[int]
    predictions: list[Any]
    values: list[float]
    base: list[float]
    attributions: Any
    completeness: dict[str, Any]
    faithfulness: dict[str, Any]
    seconds: float
    seed: int
    targets: list[int] = field(default_factory=list)
    features: list[str] | None = None
    tokens: list[list[str]] | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def importance(self) -> list[tuple[str, float]]:
        """Tables: features by mean |attribution|, largest first."""
        if self.features is None:
            return []
        mean = np.abs(np.asarray(self.attributions)).mean(axis=0)
        return sorted(zip(self.features, mean.tolist(), strict=True), key=lambda kv: -kv[1])

    def to_dict(self) -> dict[str, Any]:
        """Everything but the images' pixel attributions and the report's pictures, as JSON values."""
        out = {
            "package": self.package,
            "kind": self.kind,
            "method": self.method,
            "output": self.output,
            "rows": self.rows,
            "predictions": self.predictions,
            "values": self.values,
            "base": self.base,
            "completeness": self.completeness,
            "faithfulness": self.faithfulness,
            "seconds": round(self.seconds, 3),
            "seed": self.seed,
        }
        if self.kind in ("tabular", "inputs"):
            out["features"] = self.features
            out["importance"] = dict(self.importance())
            out["attributions"] = np.asarray(self.attributions).tolist()
        elif self.kind == "text":
            out["tokens"] = self.tokens
            out["attributions"] = self.attributions
        else:
            out["attributions"] = "attributions.npz"
        return out


def pick_method(model: ExplainedModel, method: str) -> tuple[str, str]:
    """The method for the model's inputs, and a note when the one asked for was replaced."""
    if method not in METHODS:
        raise ConfigError(f"--method {method!r} is not a method", hint=f"use one of: {', '.join(METHODS)}")
    kind = model.kind
    if kind == "tabular":
        return _tabular.check_method(model, method), ""
    if kind == "inputs":
        if method not in ("auto", "shap"):
            raise ConfigError(
                f"--method {method} has no path through a model over several kinds of input; its inputs are "
                "explained whole, by SHAP",
                hint="use --method shap (the default for it)",
            )
        return "shap", ""
    if method == "shap":
        size = model.preprocessor.model_io().image_shape if kind == "image" else None
        what = f"{int(np.prod(size)):,} pixel values" if size else "tokens"
        return "ig", f"SHAP over {what} would take hours; integrated gradients (captum) explain this {kind} model"
    return ("ig" if method == "auto" else method), ""


def explain(
    package: str | Path | ExplainedModel,
    frame: pd.DataFrame,
    *,
    rows: int = 100,
    method: str = "auto",
    background: int = 100,
    background_frame: pd.DataFrame | None = None,
    background_batch: dict[str, torch.Tensor] | None = None,
    steps: int = 20,
    seed: int = 0,
    max_evals: int | None = None,
    faithfulness: bool = True,
) -> Explanation:
    """Explain the predictions of a package's model on the first ``rows`` rows of ``frame``.

    Args:
        package: The package folder, or its model already loaded (:class:`ExplainedModel`).
        method: ``auto`` (SHAP for tables, integrated gradients for text and images), ``shap``, ``ig``
            (integrated gradients) or ``occlusion``. SHAP asked of a text or image model is replaced by
            integrated gradients, with a warning.
        background: Tables: rows drawn (with ``seed``) from ``frame`` that stand for an unknown feature.
        background_frame: Draw them from this table instead (a server explaining a few rows at a time).
        background_batch: A model over several kinds of input: its first ``background`` rows, already
            encoded, are the background instead (a server's held-out rows).
        steps: Integrated gradients' steps (Gauss-Legendre: few suffice; a row that misses completeness gets
            four times as many).
        max_evals: SHAP's permutation explainer: model evaluations per row.
        faithfulness: Also run the deletion test.

    Raises:
        ConfigError: A method the model's inputs do not allow, or more rows than the limit for its kind.
        DataError: ``frame`` is empty or a value cannot be encoded (the message names row and column).
    """
    started = time.perf_counter()
    model = package if isinstance(package, ExplainedModel) else load_model(package)
    model.model.eval()
    if getattr(model.model, "frozen", False):
        model.model.frozen = False  # a frozen encoder runs without gradients, which attributions need
    chosen, note = pick_method(model, method)
    if note:
        warnings.warn(note, UserWarning, stacklevel=2)
    limit = MAX_ROWS[model.kind]
    if rows > limit:
        raise ConfigError(
            f"--rows {rows} is more than the {limit:,} rows one explanation of a {model.kind} model takes",
            hint=f"explain at most {limit:,} rows at a time (split the data into several files)",
        )
    if frame.empty:
        raise DataError(f"{frame.attrs.get('source', 'data')}: no rows to explain")
    chosen_rows = frame.iloc[:rows]
    batch = model.preprocessor.transform(chosen_rows)
    scores = model.predict_scores(batch)
    targets = model.targets(scores)
    values = scores[torch.arange(len(targets)), targets].double().numpy()
    scale = 1.0 if model.task == "classification" else float(model.preprocessor.target_std_)
    pool = frame if background_frame is None else background_frame
    found = _attribute(model, chosen, batch, targets.numpy(), chosen_rows, pool, background=background, steps=steps,
                       seed=seed, max_evals=max_evals, scale=scale, encoded_background=background_batch)  # fmt: skip
    sums = _sums(found["attributions"])
    gaps = found["base"] + sums - values
    completeness = _completeness(found["method"], gaps, values - found["base"], scale, found.get("note", ""))
    result = Explanation(
        package=str(model.path),
        kind=model.kind,
        method=found["method"],
        output=model.output_name,
        rows=list(range(len(chosen_rows))),
        predictions=model.labels(scores),
        values=values.tolist(),
        base=np.asarray(found["base"], dtype=np.float64).tolist(),
        attributions=found["attributions"],
        completeness=completeness,
        faithfulness={},
        targets=targets.tolist(),
        seconds=0.0,
        seed=seed,
        features=found.get("features"),
        tokens=found.get("tokens"),
        extras=found.get("extras", {}),
    )
    if faithfulness:
        result.faithfulness = deletion_curves(model, result, batch, found.get("background"), seed=seed)
    result.seconds = time.perf_counter() - started
    return result


def _attribute(
    model: ExplainedModel,
    method: str,
    batch: dict[str, torch.Tensor],
    targets: np.ndarray,
    explained: pd.DataFrame,
    frame: pd.DataFrame,
    *,
    background: int,
    steps: int,
    seed: int,
    max_evals: int | None,
    scale: float,
    encoded_background: dict[str, torch.Tensor] | None = None,
) -> dict[str, Any]:
    tolerance = TOLERANCE * scale
    if model.kind == "tabular":
        rows = _tabular.encoded(model, batch)
        pool = frame if len(frame) <= background else frame.sample(background, random_state=seed)
        reference = _tabular.encoded(model, model.preprocessor.transform(pool))
        if method == "shap":
            with progress_task("SHAP values", len(rows)) as advance:
                values, base, name = _tabular.shap_values(
                    model, rows, reference, targets, seed=seed, max_evals=max_evals, advance=advance
                )
        elif method == "ig":
            values, base, name = _tabular.ig_values(model, rows, reference, targets, steps=steps)
        else:
            values, base, name = _tabular.occlusion_values(model, rows, reference, targets)
        raw = _tabular.raw_values(model, explained)
        return {"method": name, "attributions": values, "base": base, "features": _tabular.feature_names(model),
                "background": reference, "extras": {"raw": raw, "encoded": rows}}  # fmt: skip
    if model.kind == "inputs":  # each input whole: SHAP over rows of a pool of encoded inputs
        from seekforge.explain._inputs import InputPool

        if encoded_background is not None:
            reference_rows = {key: values[:background] for key, values in encoded_background.items()}
        else:
            pool = frame if len(frame) <= background else frame.sample(background, random_state=seed)
            reference_rows = model.preprocessor.transform(pool)
        model.pool = InputPool(model.preprocessor, batch, reference_rows)
        rows, reference = model.pool.explained(), model.pool.background()
        with progress_task("SHAP values", len(rows)) as advance:
            values, base, name = _tabular.shap_values(
                model, rows, reference, targets, seed=seed, max_evals=max_evals, advance=advance
            )
        names = [p.name for p in model.pool.players]
        return {"method": name, "attributions": values, "base": base, "features": names, "background": reference,
                "extras": {"raw": explained[names].reset_index(drop=True), "encoded": rows}}  # fmt: skip
    if model.kind == "text":
        with progress_task("token attributions", len(targets)) as advance:
            found = _text.token_rows(
                model, batch, targets, method=method, steps=steps, tolerance=tolerance, advance=advance
            )
        return {
            "method": "occlusion" if method == "occlusion" else "integrated-gradients",
            "attributions": [r.attributions for r in found],
            "tokens": [r.tokens for r in found],
            "base": np.array([r.base for r in found]),
            "note": _steps_note([r.steps for r in found]),
            "extras": {"attention": [_text.attention(model, batch, 0)]},  # every layer and head: one row's is plenty
        }
    pixels = _image.pixel_rows(model, batch["image"], targets, method=method, steps=steps, tolerance=tolerance)
    shown = min(len(targets), 6)
    return {
        "method": "occlusion" if method == "occlusion" else "integrated-gradients",
        "attributions": pixels.attributions,
        "base": pixels.base,
        "note": _steps_note(pixels.steps),
        "extras": {"images": batch["image"][:shown].numpy(),
                   "feature_maps": [_image.feature_maps(model, batch["image"][0])]},  # the report shows row 0's
    }  # fmt: skip


def _steps_note(used: list[int | None]) -> str:
    taken = [s for s in used if s is not None]
    if not taken:
        return ""
    more = sum(s > min(taken) for s in taken)
    note = f"integrated gradients with {min(taken)} steps"
    return note + (f" ({more} row{'s' * (more != 1)} missed it and took {max(taken)})" if more else "")


def _sums(attributions: Any) -> np.ndarray:
    if isinstance(attributions, list):
        return np.array([sum(row) for row in attributions], dtype=np.float64)
    array = np.asarray(attributions, dtype=np.float64)
    return array.reshape(len(array), -1).sum(axis=1)


def _completeness(method: str, gaps: np.ndarray, spans: np.ndarray, scale: float, note: str) -> dict[str, Any]:
    """Whether base + sum(attributions) = output, row by row, within the method's tolerance."""
    worst = float(np.abs(gaps).max()) if len(gaps) else 0.0
    if method == "occlusion":
        return {"checked": False, "tolerance": None, "max_error": worst, "passed": None,
                "note": "occlusion's effects are not additive: no completeness to check"}  # fmt: skip
    if method.startswith("shap"):
        tolerance = 1e-6 * scale
        rule = "SHAP values sum to the output minus the background's mean output"
    else:
        tolerance = TOLERANCE * scale
        rule = f"attributions sum to the output minus the baseline's within {TOLERANCE:g} of the output's scale"
    limits = np.maximum(tolerance, TOLERANCE * np.abs(spans)) if not method.startswith("shap") else tolerance
    passed = bool(np.all(np.abs(gaps) <= limits))
    return {"checked": True, "tolerance": tolerance, "max_error": worst, "passed": passed,
            "note": "; ".join(p for p in (rule, note) if p)}  # fmt: skip
