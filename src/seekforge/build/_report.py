"""The run report: metrics, learning curves, confusion matrix or residual plot, the recipe."""

from __future__ import annotations

from typing import Any

import numpy as np

from seekforge.build._card import parameters_text
from seekforge.build._curves import classification_sections
from seekforge.core import report as r
from seekforge.fairness import fairness_html


def render_report(
    *,
    manifest: dict[str, Any],
    history: list[dict[str, Any]],
    recipe_yaml: str,
    test_predictions: tuple[list[float], list[float]] | None = None,
    test_scores: tuple[np.ndarray, np.ndarray] | None = None,
    card: str | None = None,
    extra_sections: list[tuple[str, str]] | None = None,
) -> str:
    """HTML report of a trained package. ``test_predictions`` is (actual, predicted) for regression,
    ``test_scores`` (true class indices, class probabilities) for classification; ``extra_sections`` (title, html)
    follow the training summary."""
    metrics = manifest["metrics"]["test"]
    training = manifest.get("training", {})
    sections: list[tuple[str, str]] = []
    rows = [(k, v) for k, v in metrics.items() if not isinstance(v, list | dict)]
    sections.append(("Test metrics", r.table(rows, ["metric", "value"])))
    summary = [
        ("task", manifest["task"]),
        ("model", manifest["model"]["type"]),
        ("parameters", parameters_text(manifest["model"])),
        ("epochs run", len(history)),
        ("kept weights of epoch", training.get("best_epoch", "")),
        ("optimizer steps", training.get("steps", "")),
        ("training seconds", round(training.get("seconds", 0.0), 1)),
        ("rows (train / validation / test)", " / ".join(str(n) for n in manifest["data"]["rows"].values())),
    ]
    if any(h.get("gradient_checkpointing") for h in history):
        summary.append(("gradient checkpointing", "on (encoder layers recomputed in the backward pass)"))
    if history and "train_rows" in history[0]:
        summary.append(("training rows per epoch (progressive data)", ", ".join(str(h["train_rows"]) for h in history)))
    sections.append(("Training", r.table(summary)))
    sections += extra_sections or []
    charts = [
        r.line_chart(
            {
                k: [h.get(k, float("nan")) for h in history]
                for k in ("train_loss", "val_loss")
                if history and k in history[0]
            },
            title="loss",
        )
    ]
    headline = "val_accuracy" if manifest["task"] == "classification" else "val_r2"
    if history and headline in history[-1]:
        charts.append(r.line_chart({headline: [h.get(headline, float("nan")) for h in history]}, title=headline))
    sections.append(("Learning curves", f"<div class='charts'>{''.join(charts)}</div>"))
    if "confusion_matrix" in metrics:
        classes = manifest["output"]["classes"]
        sections.append(
            (
                "Confusion matrix (test)",
                r.heatmap(metrics["confusion_matrix"], classes, title="true vs predicted"),
            )
        )
    if test_scores is not None and manifest["task"] == "classification":
        sections += classification_sections(*test_scores, manifest["output"]["classes"])
    if test_predictions is not None:
        actual, predicted = test_predictions
        residuals = [p - a for a, p in zip(actual, predicted, strict=True)]
        sections.append(
            (
                "Residuals (test)",
                "<div class='charts'>"
                + r.scatter(
                    actual,
                    predicted,
                    title="predicted vs actual",
                    x_label="actual",
                    y_label="predicted",
                    diagonal=True,
                )
                + r.scatter(
                    predicted,
                    residuals,
                    title="residual vs predicted",
                    x_label="predicted",
                    y_label="residual",
                )
                + r.histogram(*_histogram(residuals), title="residuals (predicted - actual)", width=460, height=260)
                + "</div>",
            )
        )
    if "fairness" in manifest:
        by = ", ".join(manifest["fairness"]["by"])
        sections.append((f"Fairness: test metrics by {by}", fairness_html(manifest["fairness"])))
    if "variants" in manifest.get("compress", {}):
        sections.append(("Compression", _compression(manifest["compress"])))
    lineage = manifest["lineage"]
    sections.append(("Lineage", r.table([(k, v if v is not None else "-") for k, v in lineage.items()])))
    if card is not None:
        sections.append(("Model card", card))
    sections.append(("Recipe", f"<pre>{r.esc(recipe_yaml)}</pre>"))
    subtitle = f"seekforge {manifest.get('seekforge_version', '')} · {manifest.get('created', '')}"
    return r.page(f"{manifest['name']}: {manifest['task']} report", subtitle, sections)


def _histogram(values: list[float]) -> tuple[list[float], list[int]]:
    finite = np.asarray(values, dtype=float)
    finite = finite[np.isfinite(finite)]  # a model that diverged: its infinite residuals have no bin
    if not len(finite):
        return [0.0, 1.0], [0]
    counts, edges = np.histogram(finite, bins=min(30, max(5, len(finite) // 10)))
    return edges.tolist(), counts.tolist()


def _compression(record: dict[str, Any]) -> str:
    """Every variant the compression measured, and which one this package is."""

    def ms(row: dict[str, Any], backend: str) -> str:
        one, many = row[f"{backend}_ms_batch1"], row[f"{backend}_ms_batch32"]
        return "" if one is None or many is None else f"{one:.3f} / {many:.3f}"

    header = ["variant", "parameters", "MACs", "weights MB", "ONNX MB", "torch ms b1 / b32", "onnxruntime ms b1 / b32",
              f"test {record['metric']}", "drop", "verdict"]  # fmt: skip
    rows = []
    for row in record["variants"]:
        onnx = "" if row["onnx_bytes"] is None else f"{row['onnx_bytes'] / 1e6:.3f}"
        rows.append([
            row["name"] + (" (this package)" if row["name"] == record["selected"] else ""),
            f"{row['parameters']:,}", f"{row['macs']:,}", f"{row['bytes'] / 1e6:.3f}", onnx,
            ms(row, "torch"), ms(row, "onnxruntime"), f"{row['metric']:.4f}", f"{row['drop']:+.4f}", row["verdict"],
        ])  # fmt: skip
    budget = record["config"]["max_accuracy_drop"]
    note = f"<p>Budget: a drop of at most {budget:g} in test {r.esc(record['metric'])} from the parent.</p>"
    return note + r.table(rows, header)
