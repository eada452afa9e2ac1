"""The model card every package carries (``model_card.md``, and a section of ``report.html``): purpose
(from the recipe's ``card:``), the model, its data, its metrics overall and by group, what its predictions
rest on, its limits (stated and measured) and its lineage."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from seekforge.core.report import esc, fmt
from seekforge.core.report import table as html_table
from seekforge.fairness import group_name

if TYPE_CHECKING:
    import pandas as pd

    from seekforge.recipe import Recipe

#: Test rows under which the card warns that the metrics' intervals are wide.
FEW_TEST_ROWS = 200

Block = str | tuple[list[str], list[list[Any]]]  # a paragraph, or a table (header, rows)


def parameters_text(model: dict[str, Any]) -> str:
    """``22,788,098 parameters`` and, when training changed only part of them, how many and by what."""
    text = f"{model['parameters']:,} parameters"
    trainable = model.get("trainable")
    if trainable is not None and trainable != model["parameters"]:
        text += f", {trainable:,} trainable ({100 * trainable / max(model['parameters'], 1):.2f}%)"
    adapter = model.get("adapter")
    if adapter:
        text += f"; LoRA rank {adapter['rank']} on {', '.join(adapter['target_modules'])} of {adapter['base']}"
    return text


def card_summary(manifest: dict[str, Any], recipe: Recipe) -> list[tuple[str, list[Block]]]:
    """The card's sections: (heading, blocks)."""
    card = recipe.card
    missing = "_Not stated: set `card.{}` in the recipe._"
    sections: list[tuple[str, list[Block]]] = []
    sections.append(("Purpose", [
        card.description or missing.format("description"),
        f"**Intended use.** {card.intended_use or missing.format('intended_use')}",
        f"**Out of scope.** {card.out_of_scope or missing.format('out_of_scope')}",
        *([f"**Owners.** {', '.join(card.owners)}"] if card.owners else []),
        *([f"**License.** {card.license}"] if card.license else []),
    ]))  # fmt: skip
    output = manifest["output"]
    classes = output.get("classes")
    sections.append(("Model", [(["field", "value"], [
        ["task", manifest["task"]],
        ["model", f"{manifest['model']['type']}, {parameters_text(manifest['model'])}"],
        ["output", f"{output['name']} ({output['type']}" + (f": {', '.join(map(str, classes))})" if classes else ")")],
        ["inputs", ", ".join(f"{f['name']} ({f['type']})" for f in manifest["inputs"])],
        ["created", f"{manifest.get('created', '')} by seekforge {manifest.get('seekforge_version', '')}"],
        *([["compression", f"{manifest['compress'].get('selected', '')} of the trained model (see report.html)"]]
          if "selected" in manifest.get("compress", {}) else []),
    ])]))  # fmt: skip
    data = manifest["data"]
    rows = data["rows"]
    about = [
        ["source", recipe.data.source],
        ["rows (train / validation / test)", " / ".join(str(rows[k]) for k in rows)],
    ]
    if recipe.data.test:
        about.append(["test rows from", recipe.data.test])
    if "clean" in data:
        clean = data["clean"]
        about.append(["cleaning", ", ".join(f"{k}: {v}" for k, v in clean.items() if isinstance(v, int | float))])
    if "balance" in data:
        about.append(["balancing", str(data["balance"].get("method", "yes"))])
    sections.append(("Data", [(["field", "value"], about)]))
    metrics = manifest["metrics"]["test"]
    shown = [[k, fmt(v)] for k, v in metrics.items() if isinstance(v, int | float)]
    sections.append(("Evaluation (test split)", [(["metric", "value"], shown)]))
    sections.append(("Metrics by group", _groups(manifest.get("fairness"))))
    sections.append(("What predictions rest on", _explanation(manifest.get("explanation"))))
    limits = [*card.limitations, *_measured_limits(manifest)]
    sections.append(("Limitations", ["\n".join(f"- {item}" for item in limits)]))
    lineage = manifest["lineage"]
    sections.append(("Lineage", [(["field", "value"], [[k, "-" if v is None else v] for k, v in lineage.items()])]))
    return sections


def _groups(fairness: dict[str, Any] | None) -> list[Block]:
    if fairness is None:
        return ["_No groups compared: add a `fairness:` section (sensitive columns) to the recipe, or run "
                "`seekforge evaluate PACKAGE DATA --by COLUMNS`._"]  # fmt: skip
    gate = fairness.get("gate") or {}
    metrics = fairness["metrics"]
    rows = [[group_name(g), g["rows"], *(fmt(g["values"][m]) for m in metrics)]
            for g in fairness["groups"]]  # fmt: skip
    rows.append(["largest difference", "", *(fmt(fairness["difference"][m]) for m in metrics)])
    verdict = "passed" if gate.get("passed") else "**failed**: " + "; ".join(gate.get("reasons", []))
    return [f"Fairness gate: {verdict}", (["group", "rows", *metrics], rows)]


def _explanation(found: dict[str, Any] | None) -> list[Block]:
    if found is None:
        return ["_Not explained at packaging: run `seekforge explain PACKAGE DATA` (or, for tables, set "
                "`card.explain_rows`)._"]  # fmt: skip
    rows = [[name, fmt(value)] for name, value in found["importance"]]
    ratio = found["deletion_area_ratio"]
    deletion = (
        f"removing the top features moves the output {fmt(ratio)}x as much as random ones"
        if ratio is not None
        else "removing random features does not move the output, so there is nothing to compare with"
    )
    return [
        f"Mean absolute attribution ({found['method']}) to the {found['output']} over {found['rows']} test rows "
        f"(completeness {'passed' if found['completeness'] else 'failed'}; deletion test: {deletion}).",
        (["feature", "mean absolute attribution"], rows),
    ]


def _measured_limits(manifest: dict[str, Any]) -> list[str]:
    found = []
    test_rows = manifest["data"]["rows"].get("test", 0)
    if test_rows < FEW_TEST_ROWS:
        spread = (f" (a 95% interval of an accuracy near 0.9 spans about ±{1.96 * (0.09 / max(test_rows, 1)) ** 0.5:.2f})"
                  if manifest["task"] == "classification" else "")  # fmt: skip
        found.append(f"The test metrics rest on {test_rows} rows: their uncertainty is large{spread}.")
    gate = (manifest.get("fairness") or {}).get("gate")
    if gate is not None and not gate["passed"]:
        found.append("The fairness gate failed: " + "; ".join(gate["reasons"]))
    small = [g for g in (manifest.get("fairness") or {}).get("groups", []) if g["note"]]
    if small:
        names = ", ".join(group_name(g) for g in small)
        found.append(f"Groups too small to compare in the test split: {names}.")
    found.append("The model is only known to work on data like its training data; `seekforge monitor` compares "
                 "live inputs with the training sketch this package carries.")  # fmt: skip
    return found


def explanation_summary(model: Any, frame: pd.DataFrame, rows: int, seed: int) -> dict[str, Any]:
    """SHAP importance of a table package over ``rows`` rows of ``frame`` (its raw test rows), for the card."""
    from seekforge.explain import explain

    found = explain(model, frame, rows=min(rows, len(frame)), background=min(100, len(frame)), seed=seed)
    return {
        "method": found.method,
        "output": found.output,
        "rows": len(found.rows),
        "importance": [[name, value] for name, value in found.importance()[:15]],
        "completeness": bool(found.completeness["passed"]),
        "deletion_area_ratio": found.faithfulness["area_ratio"],
    }


def model_card(manifest: dict[str, Any], recipe: Recipe) -> tuple[str, str]:
    """The card of a package's manifest: (``model_card.md`` text, HTML for ``report.html``)."""
    sections = card_summary(manifest, recipe)
    return card_markdown(sections, manifest["name"]), card_html(sections)


def card_markdown(sections: list[tuple[str, list[Block]]], title: str) -> str:
    lines = [f"# Model card: {title}", ""]
    for heading, blocks in sections:
        lines += [f"## {heading}", ""]
        for block in blocks:
            if isinstance(block, str):
                lines += [block, ""]
                continue
            header, rows = block
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in rows]
            lines.append("")
    return "\n".join(lines)


def card_html(sections: list[tuple[str, list[Block]]]) -> str:
    parts = []
    for heading, blocks in sections:
        parts.append(f"<h3>{esc(heading)}</h3>")
        for block in blocks:
            if isinstance(block, str):
                for line in block.split("\n"):
                    text = esc(line.strip("_").removeprefix("- ")).replace("**", "").replace("`", "")
                    parts.append(f"<p>{text}</p>")
            else:
                header, rows = block
                parts.append(html_table(rows, header))
    return "".join(parts)
