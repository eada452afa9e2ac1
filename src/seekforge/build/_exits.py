"""An early-exit package's figures: where the test rows left, what each exit costs, how accuracy and the
layers run go with the threshold; for the manifest and the report."""

from __future__ import annotations

from typing import Any

from torch import nn

from seekforge.core import report as r
from seekforge.models import exit_latency, infer, point
from seekforge.train import Tensors


def exit_summary(model: nn.Module, calibration: dict[str, Any], test: Tensors) -> dict[str, Any]:
    """The manifest's ``model.early_exit``: the policy and its threshold, the test split through the model as
    it runs (accuracy, mean layers, rows per exit) beside the full model, the validation figures the
    threshold was chosen on, and milliseconds per row (batch 1) to each exit."""
    summary: dict[str, Any] = {
        k: calibration[k] for k in ("policy", "threshold", "training", "exits", "layers", "budget", "calibrated")
    }
    if "met" in calibration:
        chosen = calibration["chosen"]
        summary["met"] = calibration["met"]
        summary["validation"] = {"rows": calibration["rows"], "accuracy_full": calibration["accuracy_full"],
                                 "accuracy": chosen["accuracy"], "mean_layers": chosen["mean_layers"],
                                 "drop_bound": chosen["drop_bound"]}  # fmt: skip
    if len(test):
        # every exit's outputs in one pass; where the policy sends each row follows from them (what running
        # the rows through decides: a test holds the two together)
        outputs = infer(model, test.inputs, forward=model.exit_outputs)  # type: ignore[arg-type]
        found = point(model.policy, list(outputs.unbind(1)), test.target, test.inputs["attention_mask"])  # type: ignore[arg-type]
        summary["test"] = {
            "rows": len(test),
            "accuracy_full": float((outputs[:, -1].argmax(1) == test.target).double().mean()),
            **{k: found[k] for k in ("accuracy", "mean_layers", "exits")},
        }
        summary["latency_ms"] = [round(ms, 4) for ms in exit_latency(model, test.inputs)]
    return summary


def exit_section(summary: dict[str, Any], calibration: dict[str, Any]) -> str:
    """The report's early-exit section: the figures, the test rows per exit layer, the latency of each exit,
    and accuracy and layers run against the threshold on the validation split."""
    layers, exits = summary["layers"], summary["exits"]
    threshold = summary["threshold"]
    rows: list[tuple[str, Any]] = [
        ("policy", summary["policy"]),
        ("exit heads after layers", ", ".join(map(str, exits[:-1])) + f" (and the last, {layers})"),
        ("training", summary["training"]),
        ("threshold", "none: every row runs all layers" if threshold is None else threshold),
    ]
    if "met" in summary:
        budget, confidence = summary["budget"]["max_accuracy_drop"], summary["budget"]["confidence"]
        met = "calibrated on the validation split" if summary["calibrated"] else "fixed by the recipe"
        if summary["calibrated"] and not summary["met"]:
            met = f"no threshold met the budget ({budget:g} accuracy drop): the model runs all layers"
        rows.append(("threshold chosen", met))
        v = summary["validation"]
        rows += [
            ("validation accuracy (full model / with exits)", f"{v['accuracy_full']:.4f} / {v['accuracy']:.4f}"),
            (f"validation accuracy drop, bound at {confidence:g} confidence (budget)",
             f"{v['drop_bound']:.4f} ({budget:g})"),
        ]  # fmt: skip
    test = summary.get("test")
    parts = []
    if test is not None:
        saved = 1 - test["mean_layers"] / layers
        rows += [
            ("test accuracy (full model / with exits)", f"{test['accuracy_full']:.4f} / {test['accuracy']:.4f}"),
            ("mean layers run (test)", f"{test['mean_layers']:.2f} of {layers} ({saved:.0%} saved)"),
        ]
        parts.append(r.bar_chart([f"layer {n}" for n in exits], test["exits"], title="test rows by exit layer",
                                 x_label="rows"))  # fmt: skip
        latency = summary["latency_ms"]
        parts.append(r.curves({"ms per row": (exits, latency)}, title="latency by exit layer (batch 1)",
                              x_label="exit layer", y_label="ms", markers=True, integer_x=True))  # fmt: skip
    curve = calibration.get("curve")
    if curve:
        ordered = sorted(curve, key=lambda c: c["threshold"])
        xs = [c["threshold"] for c in ordered]
        parts.append(r.curves(
            {"accuracy": (xs, [c["accuracy"] for c in ordered]),
             "share of layers run": (xs, [c["mean_layers"] / layers for c in ordered])},
            title="validation: accuracy and layers run vs threshold", x_label=f"{summary['policy']} threshold",
            markers=summary["policy"] != "entropy",
        ))  # fmt: skip
    return r.table(rows) + f"<div class='charts'>{''.join(parts)}</div>"
