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
from seekforge.core.variants import PRECISIONS
from seekforge.export._gate import ParityRecord, check_parity
from seekforge.export._onnx import ExportError, OnnxRunner, export_onnx, load_samples, optimize_graph, to_fp16
from seekforge.export._quantize import quantize_int8
from seekforge.export.config import UNAVAILABLE_FORMATS, ExportConfig


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
    if name in UNAVAILABLE_FORMATS:
        raise ConfigError(
            f"exporting to {name} needs {UNAVAILABLE_FORMATS[name]}, which seekforge cannot use here",
            hint="export to onnx or openvino, or convert the ONNX export with that toolchain",
        )
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
    from seekforge.models import build_model, infer
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
    raw_samples = raw_samples_of(package, manifest) if variant.format == "onnx" else None
    qat = _uses_qat(package, manifest, config)
    if qat:
        from seekforge.models import quantized_model

        model = quantized_model(package, model, _example(samples))
        base = None  # the float graph is not this model's
    seven_bits = variant.precision == "int8" and not qat and config.seven_bit_weights
    if variant.precision == "int8" and not qat:
        record["reduce_range"] = seven_bits
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        fp32 = scratch / "fp32.onnx"
        if base is None:
            export_onnx(model, _example(samples), fp32, opset=config.opset)
        else:
            shutil.copyfile(base, fp32)
        built = scratch / Path(variant.file).name
        if variant.format == "openvino":
            from seekforge.export._openvino import export_openvino

            record.update(
                export_openvino(
                    fp32, built, precision=variant.precision, calibration=calibration, reduce_range=seven_bits
                )
            )
        elif qat:
            fp32.rename(built)  # the converted model's graph: int8 QDQ already
            record["quantization"] = "qat"
        elif variant.precision == "int8":
            record["quantization"] = quantize_int8(
                fp32, built, method=config.quantization, calibration=calibration, reduce_range=seven_bits
            )
        elif variant.precision == "fp16":
            to_fp16(fp32, built)
        elif variant.graph_optimized:
            optimize_graph(fp32, built)
        else:
            fp32.rename(built)
        if raw_samples is not None:
            _prepend_preprocessing(built, package)
            record["inputs"] = "raw"
        reference = infer(model, samples.inputs)
        candidate = open_runner(package, record, path=built)(raw_samples or samples.inputs)
        parity = check_parity(reference, candidate, samples.target, task=manifest["task"], limits=config.limits)
        if not parity.passed and not force:
            raise ExportError(
                f"the {variant.name} model failed the parity gate on {parity.rows} held-out rows: "
                + "; ".join(parity.failures),
                hint="nothing was written; --force writes it anyway, marked as failed",
            )
        files: dict[str, Path | str] = {variant.file: built}
        if variant.format == "openvino":
            files[variant.file.replace(".xml", ".bin")] = built.with_suffix(".bin")
        size = sum(Path(f).stat().st_size for f in files.values())
        record.update(parity=parity.to_dict(), limits=config.limits.model_dump(), bytes=size)
        files[str(Path(variant.file).with_suffix(".parity.json"))] = json.dumps(record, indent=2)
        add_to_package(
            package, files=files, manifest={"exports": {**manifest.get("exports", {}), variant.name: record}}
        )
    return ExportResult(package, package / record["file"], parity, record["bytes"], record)


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
    """Export the package's model, unchanged, to the fp32 ONNX file ``out`` (encoded inputs)."""
    from seekforge.models import build_model

    export_onnx(build_model(package), _example(load_samples(package, read_manifest(package))), out, opset=opset)


def _example(samples: Any) -> dict[str, Any]:
    """The batch the exporter traces the model with: the first held-out rows."""
    return {k: v[:8] for k, v in samples.inputs.items()}


def open_runner(package: Path, record: dict[str, Any], *, path: Path | None = None, threads: int | None = None) -> Any:
    """A callable that runs the export ``record`` describes (``path`` overrides its file): encoded batch
    dicts, or raw feeds for an ONNX graph that holds its preprocessing, in; logits out."""
    file = path or package / record["file"]
    if path is None and (why := int8_portability(record)):
        warnings.warn(why, RuntimeWarning, stacklevel=2)
    if record["format"] == "openvino":
        from seekforge.export._openvino import OpenVinoRunner

        return OpenVinoRunner(file, precision=record["precision"], threads=threads)
    return OnnxRunner(file, threads=threads)


def raw_samples_of(package: Path, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """Raw feeds of the held-out rows when the ONNX graph can hold the package's preprocessing (every
    input numeric, binary or category) and the package carries those rows raw; else None."""
    from seekforge.runtime import graph_holds, raw_feeds

    if not graph_holds(f["type"] for f in manifest["inputs"]) or "samples.json" not in manifest["files"]:
        return None
    columns = read_package_json(package, "samples.json")
    return raw_feeds(manifest["inputs"], columns)


def _prepend_preprocessing(path: Path, package: Path) -> None:
    from seekforge.core.deps import require
    from seekforge.export._pregraph import with_preprocessing

    onnx = require("onnx", purpose="ONNX export")
    state = read_package_json(package, "preprocessor.json")
    onnx.save(with_preprocessing(onnx.load(str(path)), state), str(path))
