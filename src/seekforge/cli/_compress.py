"""``seekforge compress``: prune, distil and quantize a package into a new one."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

if TYPE_CHECKING:
    from seekforge.compress import CompressResult


from seekforge.cli._common import (
    Force,
    JsonFlag,
    RunsDir,
    options,
    out,
    print_json,
)

_COMPRESS_OPTIONS = {
    "ratio": "--prune",
    "student": "--student",
    "temperature": "--temperature",
    "alpha": "--alpha",
    "epochs": "--epochs",
    "finetune_epochs": "--finetune-epochs",
    "importance": "--importance",
    "scope": "--scope",
    "steps": "--steps",
    "keep": "--keep",
    "method": "--quantize",
    "copies": "--augment",
}


def compress(
    package: Annotated[Path, typer.Argument(help="Model package folder (never modified).")],
    prune: Annotated[
        str | None, typer.Option("--prune", help="Share of channels/neurons to remove (0-1), or auto.")
    ] = None,
    importance: Annotated[str, typer.Option("--importance", help="magnitude, taylor or lamp.")] = "magnitude",
    scope: Annotated[str, typer.Option("--scope", help="layer: each layer the same share; global.")] = "layer",
    steps: Annotated[int, typer.Option("--steps", help="Iterative pruning: steps, fine-tuning after each.")] = 1,
    finetune_epochs: Annotated[int, typer.Option("--finetune-epochs", help="Fine-tuning epochs a step.")] = 5,
    keep: Annotated[list[str] | None, typer.Option("--keep", help="A layer never pruned (repeatable).")] = None,
    distill: Annotated[
        bool, typer.Option("--distill", help="Fine-tune from the unpruned model's outputs (distillation).")
    ] = False,
    student: Annotated[
        Path | None, typer.Option("--student", help="Distil into this model (a YAML file with a model: section).")
    ] = None,
    temperature: Annotated[float, typer.Option("--temperature", help="Distillation temperature.")] = 4.0,
    alpha: Annotated[float, typer.Option("--alpha", help="Weight of the teacher's soft targets (0-1).")] = 0.7,
    augment: Annotated[
        int | None,
        typer.Option("--augment", help="Distil on this many altered copies of each training text too (text models)."),
    ] = None,
    quantize: Annotated[
        str | None, typer.Option("--quantize", help="qat: quantization-aware training, int8 ONNX export.")
    ] = None,
    epochs: Annotated[
        int | None, typer.Option("--epochs", min=1, help="Epochs of quantization-aware training or of a student.")
    ] = None,
    max_accuracy_drop: Annotated[
        float,
        typer.Option(
            "--max-accuracy-drop",
            help="Largest accepted drop of accuracy (or R2): test for verdicts, validation for auto.",
        ),
    ] = 0.01,
    lr: Annotated[float | None, typer.Option("--lr", help="Fine-tuning learning rate (default: the recipe's).")] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The new package (default: in the work folder).")
    ] = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue the latest unfinished compression.")] = False,
    work_dir: Annotated[Path | None, typer.Option("--work-dir", help="Use (or resume) this work folder.")] = None,
    runs_dir: RunsDir = Path("runs"),
    force: Force = False,
    as_json: JsonFlag = False,
) -> None:
    """Prune, distil and quantize a package into a new, measured one whose lineage names its parent."""
    from seekforge.compress import CompressConfig, compress_package
    from seekforge.core.errors import ConfigError

    values: dict[str, object] = {"max_accuracy_drop": max_accuracy_drop, "lr": lr}
    if prune is not None:
        values["prune"] = {
            "ratio": prune, "importance": importance, "scope": scope, "steps": steps,
            "finetune_epochs": finetune_epochs, "keep": keep or [],
        }  # fmt: skip
    if distill or student is not None:
        values["distill"] = {"temperature": temperature, "alpha": alpha, "student": student}
        if student is not None and epochs is not None:
            values["distill"]["epochs"] = epochs  # type: ignore[index]
        if augment is not None:
            values["distill"]["augment"] = {"copies": augment}  # type: ignore[index]
    elif augment is not None:
        raise ConfigError("--augment feeds distillation: add --distill or --student")
    if quantize is not None:
        values["quantize"] = {"method": quantize, **({"epochs": epochs} if epochs is not None else {})}
    config = options(CompressConfig, values, _COMPRESS_OPTIONS)
    result = compress_package(package, config, output=output, runs_dir=runs_dir, work_dir=work_dir, resume=resume,
                              overwrite=force)  # fmt: skip
    if as_json:
        print_json(result)
        return
    print_variants(result)
    out.print(f"selected {result.selected}; package: {result.package}", markup=False)


def print_variants(result: CompressResult) -> None:
    def ms(one: float | None, many: float | None) -> str:
        return "" if one is None or many is None else f"{one:.2f} / {many:.2f}"

    table = Table(
        "variant", "parameters", "MMACs", "ONNX MB", "torch ms b1 / b32", "ORT ms b1 / b32", result.metric, "drop",
        "verdict", title=f"compression (budget: a drop of {result.budget:g})",
    )  # fmt: skip
    for row in result.rows:
        table.add_row(
            escape(row.name), f"{row.parameters:,}", f"{row.macs / 1e6:.2f}",
            "" if row.onnx_bytes is None else f"{row.onnx_bytes / 1e6:.3f}",
            ms(row.torch_ms_batch1, row.torch_ms_batch32), ms(row.onnxruntime_ms_batch1, row.onnxruntime_ms_batch32),
            f"{row.metric:.4f}", f"{row.drop:+.4f}", escape(row.verdict),
        )  # fmt: skip
    out.print(table)
