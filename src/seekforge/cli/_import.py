"""``seekforge import``: what a model made elsewhere is, and what can run it here."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from seekforge.cli._common import Force, JsonFlag, out, print_json, print_metrics
from seekforge.core.errors import ConfigError, DataError


def import_model(
    model: Annotated[
        Path, typer.Argument(help="An ONNX file (.onnx), a torch.export program (.pt2) or a Hugging Face folder.")
    ],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Make a package here (needs --inputs and --test).")
    ] = None,
    inputs: Annotated[
        Path | None,
        typer.Option(
            "--inputs",
            help="YAML: features (numbers in the tensor's column order, one image or one text), output, classes, "
            "graph, tokenizer (a Hugging Face folder implies one).",
        ),
    ] = None,
    test: Annotated[
        Path | None, typer.Option("--test", help="Labelled rows: the metrics and the parity gate's rows.")
    ] = None,
    calibration: Annotated[
        Path | None, typer.Option("--calibration", help="Rows for INT8 calibration and the drift reference.")
    ] = None,
    task: Annotated[
        str | None, typer.Option("--task", help="A Hugging Face folder's task: text-classification.")
    ] = None,
    text: Annotated[
        str, typer.Option("--text", help="A Hugging Face folder's text column (without --inputs).")
    ] = "text",
    label: Annotated[
        str, typer.Option("--label", help="A Hugging Face folder's label column (without --inputs).")
    ] = "label",
    force: Force = False,
    as_json: JsonFlag = False,
) -> None:
    """Read a model made elsewhere before anything runs it (its opset, inputs and outputs with the axes left
    dynamic, operators, shape inference, whether onnxruntime and OpenVINO run each operator here, and what
    onnxruntime fuses); with --output, make it a package that export, optimize, bench, serve and monitor take.

    Exits 2 when onnxruntime cannot run it (an opset newer than it knows, an operator it has no kernel
    for). The file is only read.
    """
    from seekforge.model_import import as_onnx, import_onnx, inspect_onnx

    if inputs is not None and (text, label) != ("text", "label"):
        raise ConfigError("--text and --label name a Hugging Face folder's columns when no --inputs file declares them",
                          hint="declare the columns in the --inputs file (features) instead")  # fmt: skip
    if output is not None:
        if (inputs is None and not model.is_dir()) or test is None:
            raise ConfigError("--output needs --inputs (what the model takes and gives; a Hugging Face folder implies "
                              "it) and --test (labelled rows)",
                              hint="seekforge import MODEL.onnx -o pkg --inputs spec.yaml --test rows.csv")  # fmt: skip
        result = import_onnx(model, inputs, output, test=test, calibration=calibration, force=force, task=task,
                             text=text, label=label)  # fmt: skip
        if as_json:
            print_json({"package": result.package, "metrics": result.metrics, "report": result.report.to_dict()})
        else:
            print_metrics(result.metrics, title=f"{result.package} (imported): test rows")
        return

    with as_onnx(model, task=task) as converted:  # a program's or folder's: the report of the graph it becomes
        report = inspect_onnx(converted)
        report.path = str(model)
    if as_json:
        print_json(report.to_dict())
    else:
        _print(report)
    if not report.runs_here:
        raise DataError(f"{model}: onnxruntime {report.onnxruntime['version']} cannot run it: "
                        f"{report.onnxruntime['problem']}",
                        hint="re-export it with an older opset or without the operators named")  # fmt: skip


def _print(report: object) -> None:
    from seekforge.model_import import OnnxReport

    assert isinstance(report, OnnxReport)
    out.print(f"[bold]{escape(report.path)}[/]  {report.bytes / 1e6:.2f} MB, opset {report.opset}, "
              f"IR {report.ir_version}, made by {escape(report.producer or 'unknown')}")  # fmt: skip
    table = Table("", "name", "type", "shape", "dynamic axes (after the batch)", box=None)
    for kind, specs in (("input", report.inputs), ("output", report.outputs)):
        for spec in specs:
            shape = escape("[" + ", ".join("?" if s is None else str(s) for s in spec.shape) + "]")
            table.add_row(kind, escape(spec.name), spec.dtype, shape, ", ".join(map(str, spec.dynamic_axes)) or "–")
    out.print(table)
    ops = ", ".join(f"{name} {count}" for name, count in report.operators.items())
    out.print(f"operators ({sum(report.operators.values())} nodes): {escape(ops)}")
    inference = report.shape_inference
    out.print("shape inference: " + ("ok" if inference["ok"] else f"failed: {escape(str(inference['problem']))}"))
    ort = report.onnxruntime
    out.print(
        f"onnxruntime {ort['version']}: " + ("runs it" if ort["runs"] else f"cannot: {escape(str(ort['problem']))}")
    )
    if report.fusions:
        before, after = report.fusions["nodes"]
        fused = ", ".join(f"{name} {count}" for name, count in report.fusions["added"].items()) or "nothing"
        out.print(f"  its graph optimiser fuses: {escape(fused)} ({before} nodes -> {after})")
    ov = report.openvino
    if not ov["available"]:
        out.print(f"openvino: {escape(str(ov['problem']))}")
    elif ov["unsupported"] or ov["problem"]:
        shown = ", ".join(ov["unsupported"]) or str(ov["problem"])
        out.print(f"openvino {ov['version'].split('-')[0]}: cannot run {escape(shown)}")
    else:
        out.print(f"openvino {ov['version'].split('-')[0]}: runs every operator on CPU")
