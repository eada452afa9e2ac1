"""Exporting a package's model: build the variant, judge it with the parity gate, add it to the package."""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seekforge.core.errors import ConfigError
from seekforge.core.hardware import hardware, int8_portability
from seekforge.core.package import add_to_package, read_manifest, read_package_json
from seekforge.core.variants import PRECISIONS, Variant
from seekforge.export._exits import export_segments, segment_file
from seekforge.export._gate import ParityRecord, check_parity
from seekforge.export._graph import graph_changes
from seekforge.export._imported import imported_graph
from seekforge.export._onnx import ExportError, OnnxRunner, export_onnx, load_samples, optimize_graph, to_fp16
from seekforge.export._quantize import quantize_int8
from seekforge.export.config import ExportConfig


@dataclass(frozen=True)
class ExportResult:
    """Where the export went in the package and how it compared with the torch model."""

    package: Path
    path: Path
    parity: ParityRecord
    bytes: int
    record: dict[str, Any]


def check_format(name: str) -> None:
    """Fail with what is needed when ``name`` is a format this machine cannot build.

    Raises:
        ConfigError: An unknown format, or one whose toolchain is not here.
    """
    if name in ("coreml", "tflite", "tensorrt"):  # runtimes a package's model is converted for
        raise ConfigError(f"{name} is not an export format: seekforge convert makes it",
                          hint=f"run: seekforge convert PACKAGE --to {name}")  # fmt: skip
    if name not in PRECISIONS:
        raise ConfigError(f"unknown export format {name!r}; available: {', '.join(PRECISIONS)}")


def export_package(
    package: str | Path, config: ExportConfig | None = None, *, force: bool = False, base: Path | None = None
) -> ExportResult:
    """Export a package's model and add it to the package if it passes the parity gate.

    The torch model and the export both predict the held-out rows the package carries; an export that
    breaks a limit of ``config.limits`` is not written, unless ``force``, which writes it marked failed.
    Each variant has its own file (see :data:`VARIANTS`), its record under ``exports`` in package.json
    and beside it in ``<file>.parity.json``. ONNX files of packages whose inputs are all numeric, binary or
    category features hold the preprocessing too, and take raw feature values (``"inputs": "raw"``).

    ``base`` is an fp32 ONNX file of this package's model made by :func:`export_base` with the same
    opset, to reuse when building several variants.

    Raises:
        PackageError: Not a valid package, or one without held-out rows.
        ExportError: The export failed, or failed the gate (the message says by how much).
    """
    from seekforge.models import OnnxGraph, build_model, infer
    from seekforge.train import Tensors

    config = config or ExportConfig()
    variant = config.variant
    package = Path(package)
    manifest = read_manifest(package)
    samples = load_samples(package, manifest)
    model = build_model(package)
    calibration = (
        Tensors.load(package / "calibration.safetensors") if "calibration.safetensors" in manifest["files"] else None
    )
    record: dict[str, Any] = {
        "file": variant.file,
        "backend": variant.backend,
        "format": variant.format,
        "precision": variant.precision,
        "opset": config.opset,
        "inputs": "encoded",
        "hardware": hardware().to_dict(),  # the gate's verdict on int8 and bf16 depends on the CPU
    }
    exits = getattr(model, "policy", None)  # a model with early exit: one graph per segment between exits
    raw_samples = raw_samples_of(package, manifest, samples) if variant.format == "onnx" and exits is None else None
    qat = _uses_qat(package, manifest, config)
    if qat:
        from seekforge.models import quantized_model

        model = quantized_model(package, model, _example(samples))
        base = None  # the float graph is not this model's
    seven_bits = variant.precision == "int8" and not qat and config.seven_bit_weights
    if variant.precision == "int8" and not qat:
        record["reduce_range"] = seven_bits
    if exits is not None:
        _check_exit_variant(package, variant, config.quantization)
        record["early_exit"] = {"policy": exits.kind, "threshold": exits.threshold, "exits": list(exits.exits)}
        record["segments"] = [segment_file(variant.file, k) for k in range(len(exits.exits))]
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        fp32 = scratch / "fp32.onnx"
        if exits is not None:
            sources = export_segments(model, _example(samples), scratch, opset=config.opset)
        elif isinstance(model, OnnxGraph):  # imported: its own graph, named as exports name theirs
            record["opset"] = imported_graph(model, fp32)
            sources = [fp32]
        elif base is None:
            export_onnx(model, _example(samples), fp32, opset=config.opset)
            sources = [fp32]
        else:
            shutil.copyfile(base, fp32)
            sources = [fp32]
        built = [scratch / Path(name).name for name in record.get("segments", [variant.file])]
        for source, out in zip(sources, built, strict=True):
            record.update(_convert(source, out, config, calibration=calibration, qat=qat, seven_bits=seven_bits))
        if raw_samples is not None:
            _prepend_preprocessing(built[0], package)
            record["inputs"] = "raw"
        if exits is not None:
            from seekforge.export._exits import exit_runner
            from seekforge.models import infer_exits

            reference, reference_exits = infer_exits(model, samples.inputs)
            candidate, candidate_exits = exit_runner(package, record, paths=built)(samples.inputs)
            layers: tuple[Any, Any] | None = (reference_exits, candidate_exits)
        else:
            reference = infer(model, samples.inputs)
            candidate = open_runner(package, record, path=built[0])(raw_samples or samples.inputs)
            layers = None
        parity = check_parity(reference, candidate, samples.target, task=manifest["task"], limits=config.limits,
                              exits=layers)  # fmt: skip
        if not parity.passed and not force:
            raise ExportError(
                f"the {variant.name} model failed the parity gate on {parity.rows} held-out rows: "
                + "; ".join(parity.failures),
                hint="nothing was written; --force writes it anyway, marked as failed",
            )
        files: dict[str, Path | str] = dict(zip(record.get("segments", [variant.file]), built, strict=True))
        if variant.format == "openvino":
            files[variant.file.replace(".xml", ".bin")] = built[0].with_suffix(".bin")
        size = sum(Path(f).stat().st_size for f in files.values())
        record.update(parity=parity.to_dict(), limits=config.limits.model_dump(), bytes=size)
        files[str(Path(variant.file).with_suffix(".parity.json"))] = json.dumps(record, indent=2)
        add_to_package(
            package, files=files, manifest={"exports": {**manifest.get("exports", {}), variant.name: record}}
        )
    return ExportResult(package, package / record["file"], parity, record["bytes"], record)


def _convert(
    fp32: Path, built: Path, config: ExportConfig, *, calibration: Any, qat: bool, seven_bits: bool
) -> dict[str, Any]:
    """Turn the fp32 graph ``fp32`` into ``config``'s variant at ``built``; what the record says of how."""
    variant = config.variant
    if variant.format == "openvino":
        from seekforge.export._openvino import export_openvino

        return export_openvino(
            fp32, built, precision=variant.precision, calibration=calibration, reduce_range=seven_bits
        )
    if qat:
        fp32.rename(built)  # the converted model's graph: int8 QDQ already
        return {"quantization": "qat"}
    if variant.precision == "int8":
        method = quantize_int8(fp32, built, method=config.quantization, calibration=calibration,
                               reduce_range=seven_bits)  # fmt: skip
        return {"quantization": method}
    if variant.precision == "fp16":
        to_fp16(fp32, built)
    elif variant.graph_optimized:
        optimize_graph(fp32, built)
        return {"graph": graph_changes(fp32, built)}  # the fusions onnxruntime made
    else:
        fp32.rename(built)
    return {}


def _check_exit_variant(package: Path, variant: Variant, quantization: str) -> None:
    """Refuse the variants an early-exit model's segments cannot be.

    Raises:
        ConfigError: OpenVINO; fp16 (onnxruntime's CPU optimiser crashes the process loading an fp16 segment
            that hands its states on: seen with onnxruntime 1.32); static INT8 (calibrated on the package's
            inputs, which only the first segment takes).
    """
    if variant.precision == "fp16":
        raise ConfigError(
            "fp16 is not offered for early exit: onnxruntime's graph optimiser crashes loading the fp16 graph of "
            "a segment that hands its states to the next one",
            hint=f"run: seekforge export {package} --format onnx [--precision int8]",
        )
    if variant.format == "openvino":
        raise ConfigError(
            f"{package} has early exit, which runs as one ONNX graph per segment between exits, chained by "
            "onnxruntime; seekforge does not chain OpenVINO models",
            hint=f"run: seekforge export {package} --format onnx [--precision int8]",
        )
    if quantization == "static":
        raise ConfigError(
            "static INT8 quantization calibrates on the package's inputs, which only the first segment of an "
            "early-exit model takes",
            hint="use --quantization dynamic (or auto, which is dynamic for a transformer)",
        )


def _uses_qat(package: Path, manifest: dict[str, Any], config: ExportConfig) -> bool:
    """Whether this export is the int8 graph of a package's own quantization-aware training.

    Raises:
        ConfigError: ``quantization: qat`` for a package that was not trained with QAT.
    """
    has = "quantization" in manifest
    if config.quantization == "qat" and not (has and config.variant.name == "onnx-int8"):
        raise ConfigError(
            f"--quantization qat exports the quantizers of quantization-aware training as ONNX int8; {package} "
            + ("has none" if not has else "needs --format onnx --precision int8"),
            hint="make one with seekforge compress PACKAGE --quantize qat",
        )
    return has and config.variant.name == "onnx-int8" and config.quantization in ("auto", "qat")


def export_base(package: Path, out: Path, *, opset: int) -> None:
    """Export the package's model, unchanged, to the fp32 ONNX file ``out`` (encoded inputs).

    Raises:
        ExportError: The model has early exit: it exports as one graph per segment, which each variant makes.
    """
    from seekforge.models import OnnxGraph, build_model

    model = build_model(package)
    if getattr(model, "policy", None) is not None:
        raise ExportError("a model with early exit exports as one graph per segment; each variant makes its own")
    if isinstance(model, OnnxGraph):  # imported: its own graph
        imported_graph(model, out)
        return
    export_onnx(model, _example(load_samples(package, read_manifest(package))), out, opset=opset)


def _example(samples: Any) -> dict[str, Any]:
    """The batch the exporter traces the model with: the first held-out rows."""
    return {k: v[:8] for k, v in samples.inputs.items()}


def open_runner(package: Path, record: dict[str, Any], *, path: Path | None = None, threads: int | None = None) -> Any:
    """A callable that runs the export ``record`` describes (``path`` overrides its file): encoded batch
    dicts, or raw feeds for an ONNX graph that holds its preprocessing, in; logits out."""
    file = path or package / record["file"]
    if path is None and (why := int8_portability(record)):
        warnings.warn(why, RuntimeWarning, stacklevel=2)
    if "segments" in record:  # early exit: returns logits and each row's exit layer
        from seekforge.export._exits import exit_runner

        return exit_runner(package, record, threads=threads)
    if record["format"] == "openvino":
        from seekforge.export._openvino import OpenVinoRunner

        return OpenVinoRunner(file, precision=record["precision"], threads=threads)
    return OnnxRunner(file, threads=threads)


def raw_samples_of(package: Path, manifest: dict[str, Any], samples: Any = None) -> dict[str, Any] | None:
    """The held-out rows as a graph that holds the package's tabular preprocessing takes them: numeric,
    binary and category values raw, and the other inputs encoded from their raw values by the package's
    own code (images, which the package keeps encoded only, from ``samples``: the held-out rows'
    :class:`~seekforge.train.Tensors`). None when the package has no numeric, binary or category input, or
    carries no raw rows (``samples.json``)."""
    from seekforge.runtime import GRAPH_TYPES, InputEncoder, graph_holds, raw_feeds

    types = [f["type"] for f in manifest["inputs"]]
    if not any(t in GRAPH_TYPES for t in types) or "samples.json" not in manifest["files"]:
        return None
    columns = read_package_json(package, "samples.json")
    if graph_holds(types):
        return raw_feeds(manifest["inputs"], columns)
    encoder = InputEncoder(read_package_json(package, "preprocessor.json"))
    images = {key: samples.inputs[key].numpy() for _, key in encoder.images.values()} if samples else {}
    return encoder.graph_feeds(manifest["inputs"], columns, encoded=images)


def _prepend_preprocessing(path: Path, package: Path) -> None:
    from seekforge.core.deps import require
    from seekforge.export._pregraph import with_preprocessing

    onnx = require("onnx", purpose="ONNX export")
    state = read_package_json(package, "preprocessor.json")
    onnx.save(with_preprocessing(onnx.load(str(path)), state), str(path))
