"""Finishing a run: evaluate the trained weights on the test split and write the package and its report."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from seekforge.build._card import explanation_summary, model_card
from seekforge.build._exits import exit_section, exit_summary
from seekforge.build._prepare import SAMPLE_ROWS, Prepared
from seekforge.build._report import render_report
from seekforge.core.io import write_text_atomic
from seekforge.core.package import seekforge_version, write_package
from seekforge.fairness import fairness_gate, group_metrics, metric_kind
from seekforge.models import build_model, infer
from seekforge.monitor import with_embeddings
from seekforge.recipe import Recipe
from seekforge.train import Tensors, evaluate_logits


@dataclass(frozen=True)
class Built:
    """Where a run put its package, its test metrics and its training history."""

    run_dir: Path
    package: Path
    metrics: dict[str, Any]
    history: list[dict[str, Any]]


def finish(
    recipe: Recipe,
    prepared: Prepared,
    folder: Path,
    *,
    extra: dict[str, Any] | None = None,
    extra_files: dict[str, Path] | None = None,
    sections: list[tuple[str, str]] | None = None,
) -> Built:
    """Evaluate the trained weights on the test split and write the package and its report; ``extra``
    manifest fields (a compressed package's lineage, say) replace the ones made here, ``extra_files``
    join the package's own in the same atomic write, and ``sections`` (title, html) join the report."""
    trained = folder / "trained"
    model_json = json.loads((trained / "model.json").read_text(encoding="utf-8"))
    result = json.loads((trained / "result.json").read_text(encoding="utf-8"))
    model = build_model(trained, model_json=model_json)
    pre = prepared.preprocessor
    test = prepared.splits["test"]
    logits = infer(model, test.inputs, batch_size=recipe.train.eval_batch_size)
    metrics = evaluate_logits(pre, logits, test.target)
    reference = with_embeddings(prepared.reference, model, prepared.splits["train"].inputs, recipe.seed)
    fairness = _fairness(recipe, prepared, logits) if recipe.fairness is not None else None
    manifest = {
        "name": recipe.name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "task": recipe.task,
        "inputs": pre.input_schema(),
        "output": pre.output_schema(),
        "model": _model_entry(model_json, model, result, test),
        "metrics": {"test": metrics},
        "data": {
            "rows": {name: len(split.target) for name, split in prepared.splits.items()},
            **({"clean": prepared.cleaning} if prepared.cleaning is not None else {}),
            **({"balance": prepared.balancing} if prepared.balancing is not None else {}),
        },
        "training": {
            **{k: result[k] for k in ("best_epoch", "steps", "stopped_early", "seconds")},
            **({"warm_start": prepared.warm} if prepared.warm is not None else {}),
        },
        "lineage": {
            "data_hash": prepared.data_hash,
            "recipe_hash": recipe.fingerprint(),
            "parent": None,
            "seed": recipe.seed,
            **(prepared.warm["parent"] if prepared.warm is not None else {}),
        },
        **({"fairness": fairness} if fairness is not None else {}),
        **(extra or {}),
    }
    raw = prepared.raw_samples
    if recipe.card.explain_rows and raw is not None and all(f.name in raw for f in recipe.features.inputs):
        import pandas as pd

        from seekforge.explain import ExplainedModel

        explained = ExplainedModel(folder / "package", manifest, pre, model)
        frame = pd.DataFrame(raw)
        manifest["explanation"] = explanation_summary(explained, frame, recipe.card.explain_rows, recipe.seed)
    card_text, card = model_card({**manifest, "seekforge_version": seekforge_version()}, recipe)
    regression_points = scores = None
    if recipe.task == "regression":
        regression_points = (pre.decode_target(test.target).tolist(), pre.decode_target(logits).tolist())
    else:
        scores = (test.target.numpy(), pre.decode(logits)[1])
    report = render_report(
        manifest={**manifest, "seekforge_version": seekforge_version()},
        history=result["history"],
        recipe_yaml=recipe.to_yaml(),
        test_predictions=regression_points,
        test_scores=scores,
        card=card,
        extra_sections=[
            *(
                [("Early exit", exit_section(manifest["model"]["early_exit"], result["early_exit"]))]
                if "early_exit" in result
                else []
            ),
            *(sections or []),
        ],
    )
    files = {
        "recipe.yaml": recipe.to_yaml(),
        "preprocessor.json": json.dumps(pre.to_dict()),
        "model.json": json.dumps(model_json, indent=2),
        "model.safetensors": trained / "model.safetensors",
        "reference.json": json.dumps(reference),
        "report.html": report,
        "model_card.md": card_text,
        # held-out rows, encoded, that later stages check exported and compressed models against
        "samples.safetensors": test.head(SAMPLE_ROWS).to_bytes(),
        # training rows, encoded, for calibrating quantized models
        "calibration.safetensors": _sample(prepared.splits["train"], SAMPLE_ROWS, recipe.seed).to_bytes(),
    }
    if prepared.raw_samples is not None:  # the same rows, raw, for exports that embed the preprocessing
        files["samples.json"] = json.dumps(prepared.raw_samples)
    files.update(extra_files or {})
    package = write_package(folder / "package", files=files, manifest=manifest, overwrite=True)
    write_text_atomic(folder / "report.html", report)
    return Built(folder, package, metrics, result["history"])


def _model_entry(
    model_json: dict[str, Any], model: torch.nn.Module, result: dict[str, Any], test: Tensors
) -> dict[str, Any]:
    """The manifest's model: its type, its parameters and those training changed (an adapter's, the head),
    and for a model with early exit, where the test rows left it (see :func:`exit_summary`)."""
    config = model_json["config"]
    entry = {
        "type": config["type"],
        "parameters": sum(p.numel() for p in model.parameters()),
        "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
    }
    if config.get("adapter"):
        base = {"base": config["pretrained"], "base_sha256": model_json["io"]["extra"]["base_sha256"]}
        entry["adapter"] = {**config["adapter"], **base}
    if "early_exit" in result:
        entry["early_exit"] = exit_summary(model, result["early_exit"], test)
    return entry


def _fairness(recipe: Recipe, prepared: Prepared, logits: torch.Tensor) -> dict[str, Any]:
    """The test split's metrics by group of the recipe's sensitive columns, and the gate's verdict."""
    import pandas as pd

    assert recipe.fairness is not None and prepared.sensitive is not None
    pre, target = prepared.preprocessor, prepared.splits["test"].target
    if recipe.task == "regression":
        truth, predicted, classes = pre.decode_target(target), pre.decode_target(logits), None
    else:
        truth, predicted, classes = target.numpy(), logits.argmax(dim=1).numpy(), list(pre.classes_)
    report = group_metrics(pd.DataFrame(prepared.sensitive), truth, predicted, task=recipe.task, classes=classes,
                           n_boot=recipe.fairness.boot, seed=recipe.seed)  # fmt: skip
    kind = metric_kind(recipe.task, len(classes) if classes is not None else None)
    return {**report.to_dict(), "gate": fairness_gate(report, recipe.fairness, kind)}


def _sample(data: Tensors, rows: int, seed: int) -> Tensors:
    """``rows`` rows drawn at random (seeded), so a sorted file does not give a one-class sample."""
    index = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))[:rows].sort().values
    return Tensors({k: v[index] for k, v in data.inputs.items()}, data.target[index])
