"""``seekforge export``, ``bench`` and ``optimize``: a package's exported variants."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from seekforge.cli._common import (
    Force,
    JsonFlag,
    backend_column,
    err,
    options,
    out,
    print_json,
)


def export(
    package: Annotated[Path, typer.Argument(help="Model package folder.")],
    format_: Annotated[str, typer.Option("--format", help="onnx or openvino.")] = "onnx",
    precision: Annotated[str, typer.Option("--precision", help="fp32; fp16 (onnx); bf16 (openvino); int8.")] = "fp32",
    quantization: Annotated[
        str, typer.Option("--quantization", help="onnx int8: auto (static for CNNs), static or dynamic.")
    ] = "auto",
    optimize_graph: Annotated[
        bool, typer.Option("--optimize-graph", help="onnx fp32: save onnxruntime's graph optimisations.")
    ] = False,
    reduce_range: Annotated[
        str,
        typer.Option(
            "--reduce-range",
            help="int8: 7-bit weights, which CPUs without VNNI need: auto (where this one lacks VNNI), on, off.",
        ),
    ] = "auto",
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset version.")] = 18,
    force: Annotated[bool, typer.Option("--force", help="Write an export that fails the parity gate.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Export the package's model; it is added to the package only if it passes the parity gate."""
    from seekforge.export import ExportConfig, check_format, export_package

    check_format(format_)
    values = {
        "format": format_,
        "precision": precision,
        "quantization": quantization,
        "optimize_graph": optimize_graph,
        "reduce_range": reduce_range,
        "opset": opset,
    }
    config = options(ExportConfig, values)
    result = export_package(package, config, force=force)
    parity = result.parity
    if as_json:
        print_json(result)
        if not parity.passed:
            err.print("parity FAILED (written because of --force)", markup=False)
        return
    table = Table("check", "value", title=escape(f"parity on {parity.rows} held-out rows"))
    table.add_row("max abs difference", f"{parity.max_abs_diff:.3g}")
    if parity.metric != "r2":
        table.add_row("predicted class agreement", f"{parity.agreement:.4f}")
    if parity.exit_agreement is not None:
        table.add_row("exit layer agreement", f"{parity.exit_agreement:.4f}")
    table.add_row(
        f"{parity.metric} torch / {result.record['backend']}",
        f"{parity.reference_metric:.4f} / {parity.candidate_metric:.4f}",
    )
    out.print(table)
    verdict = "passed" if parity.passed else "FAILED (written because of --force)"
    how = f", {result.record['quantization']} quantization" if "quantization" in result.record else ""
    how += ", 7-bit weights" if result.record.get("reduce_range") else ""
    how += ", raw feature values in" if result.record["inputs"] == "raw" else ""
    how += f", {len(result.record['segments'])} graphs chained between exits" if "segments" in result.record else ""
    out.print(f"{result.path} ({result.bytes / 1e6:.2f} MB{how}): parity {verdict}", markup=False, soft_wrap=True)


def convert(
    package: Annotated[Path, typer.Argument(help="Model package folder.")],
    to: Annotated[str, typer.Option("--to", help="coreml; tflite and tensorrt say what they need.")],
    precision: Annotated[str, typer.Option("--precision", help="fp32 or fp16.")] = "fp32",
    force: Force = False,
    as_json: JsonFlag = False,
) -> None:
    """Convert the package's model for another runtime and add it to the package (under conversions).

    Core ML converts here (coremltools) but predicts on macOS only: the program's structure and weights are
    checked here, and the parity gate runs where Core ML does.
    """
    from seekforge.export import convert_package

    result = convert_package(package, to, precision=precision, force=force)
    if as_json:
        print_json(result)
        return
    record = result.record
    weights, structure = record["weights"], record["structure"]
    operations = ", ".join(f"{k} {v}" for k, v in structure["operations"].items() if k != "const")
    out.print(f"{result.path} ({record['bytes'] / 1e6:.2f} MB, {record['precision']}): inputs "
              f"{', '.join(structure['inputs'])}; {operations}", markup=False, soft_wrap=True)  # fmt: skip
    out.print(f"weights: {weights['matched']} of the model's {weights['tensors']} tensors found in the program",
              markup=False)  # fmt: skip
    parity = record["parity"]
    out.print("parity: " + (("passed" if parity["passed"] else "FAILED") if parity.get("checked") else parity["reason"]),
              markup=False)  # fmt: skip


def bench(
    package: Annotated[Path, typer.Argument(help="Model package folder.")],
    backend: Annotated[str, typer.Option("--backend", help="all, or a comma list: torch,onnxruntime,...")] = "all",
    batch: Annotated[str, typer.Option("--batch", help="Comma list of batch sizes.")] = "1,8,32",
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="Threads (default: all cores).")] = None,
    seconds: Annotated[float, typer.Option("--seconds", min=0.1, help="Timed seconds per measurement.")] = 2.0,
    rounds: Annotated[
        int, typer.Option("--rounds", min=1, help="Slices each measurement is taken in, in turn with the others.")
    ] = 4,
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Also write the rows as JSON.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Latency (p50/p90/p99) and throughput of the model on each backend and batch size.

    Without torch (the runtime install), of the package's raw-input ONNX exports.
    """
    from seekforge.core.errors import ConfigError
    from seekforge.core.hardware import hardware
    from seekforge.core.io import write_json_atomic
    from seekforge.serve import full_install

    try:
        batches = [int(b) for b in batch.split(",") if b.strip()]
    except ValueError:
        raise ConfigError(f"--batch must be a comma list of whole numbers, got {batch!r}") from None
    if not batches or min(batches) < 1:
        raise ConfigError(f"--batch must list batch sizes of at least 1, got {batch!r}")
    backends = None if backend == "all" else [b.strip() for b in backend.split(",")]
    if full_install():
        from seekforge.export import bench_package
    else:
        from seekforge.runtime import bench_runtime as bench_package
    rows = bench_package(package, backends=backends, batches=batches, threads=threads, seconds=seconds, rounds=rounds)
    hw = hardware()
    if output is not None:
        write_json_atomic(output, {"hardware": hw.to_dict(), "rows": [row.to_dict() for row in rows]})
        err.print(f"wrote {output}", markup=False)
    if as_json:
        print_json({"hardware": hw.to_dict(), "rows": rows})
        return
    table = Table(
        backend_column(), "batch", "threads", "runs", "p50 ms", "p90 ms", "p99 ms", "rows/s", caption=hw.summary()
    )
    for row in rows:
        table.add_row(
            row.backend, str(row.batch), str(row.threads), str(row.runs),
            f"{row.p50_ms:.3f}", f"{row.p90_ms:.3f}", f"{row.p99_ms:.3f}", f"{row.rows_per_s:,.0f}",
        )  # fmt: skip
    out.print(table)


def optimize(
    package: Annotated[Path, typer.Argument(help="Model package folder.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The optimized package to write.")],
    target: Annotated[
        str,
        typer.Option(
            "--target",
            help="cpu: every variant; edge: the INT8 graphs (and TFLite where its converter is); gpu needs CUDA.",
        ),
    ] = "cpu",
    max_accuracy_drop: Annotated[
        float, typer.Option("--max-accuracy-drop", min=0.0, help="Largest accepted drop of accuracy (or R2).")
    ] = 0.01,
    seconds: Annotated[float, typer.Option("--seconds", min=0.1, help="Timed seconds per measurement.")] = 1.0,
    threads: Annotated[int | None, typer.Option("--threads", min=1, help="Threads (default: all cores).")] = None,
    force: Force = False,
    as_json: JsonFlag = False,
) -> None:
    """Build the variants for a target, measure them here, and keep the fastest within the budget."""
    from seekforge.export import optimize_package

    result = optimize_package(package, output, target=target, max_accuracy_drop=max_accuracy_drop,
                              seconds=seconds, threads=threads, overwrite=force)  # fmt: skip
    if as_json:
        print_json(result)
        return
    table = Table(backend_column(), "metric", "drop", "p50 ms b1", "p50 ms b32", "verdict", title="candidates")
    for c in result.candidates:
        table.add_row(
            c.backend,
            "" if c.metric is None else f"{c.metric:.4f}",
            "" if c.drop is None else f"{c.drop:+.4f}",
            "" if c.p50_ms_batch1 is None else f"{c.p50_ms_batch1:.3f}",
            "" if c.p50_ms_batch32 is None else f"{c.p50_ms_batch32:.3f}",
            escape(c.verdict),
        )
    out.print(table)
    out.print(f"selected {result.selected}; wrote {result.package}", markup=False)
