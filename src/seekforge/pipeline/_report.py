"""The run report: metrics, learning curves, confusion matrix or residual plot, the recipe."""

from __future__ import annotations

from typing import Any

from seekforge.core import report as r


def render_report(
    *,
    manifest: dict[str, Any],
    history: list[dict[str, Any]],
    recipe_yaml: str,
    test_predictions: tuple[list[float], list[float]] | None = None,
) -> str:
    """HTML report of a trained package. ``test_predictions`` is (actual, predicted) for regression."""
    metrics = manifest["metrics"]["test"]
    training = manifest.get("training", {})
    sections: list[tuple[str, str]] = []
    rows = [(k, v) for k, v in metrics.items() if not isinstance(v, list | dict)]
    sections.append(("Test metrics", r.table(rows, ["metric", "value"])))
    summary = [
        ("task", manifest["task"]),
        ("model", manifest["model"]["type"]),
        ("parameters", f"{manifest['model']['parameters']:,}"),
        ("epochs run", len(history)),
        ("kept weights of epoch", training.get("best_epoch", "")),
        ("optimizer steps", training.get("steps", "")),
        ("training seconds", round(training.get("seconds", 0.0), 1)),
        ("rows (train / validation / test)", " / ".join(str(n) for n in manifest["data"]["rows"].values())),
    ]
    sections.append(("Training", r.table(summary)))
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
                + "</div>",
            )
        )
    lineage = manifest["lineage"]
    sections.append(("Lineage", r.table([(k, v if v is not None else "-") for k, v in lineage.items()])))
    sections.append(("Recipe", f"<pre>{r.esc(recipe_yaml)}</pre>"))
    subtitle = f"seekforge {manifest.get('seekforge_version', '')} · {manifest.get('created', '')}"
    return r.page(f"{manifest['name']}: {manifest['task']} report", subtitle, sections)
