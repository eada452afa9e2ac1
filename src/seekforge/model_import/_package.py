"""A model made elsewhere as a seekforge package (``seekforge import MODEL --output PKG``): an ONNX file, a
torch.export program (``.pt2``) or a Hugging Face text classifier's folder, the last two through ONNX.

The package holds the graph (model type ``onnx``: its bytes are ``model.safetensors``), a preprocessor
limited to what the declaration says (the numbers in the tensor's column order, scaled only as declared,
a missing one imputed with the declared rows' median; an image resized and normalised as declared; a text
tokenized by the model's own tokenizer), the test rows' metrics, held-out rows for the
parity gate (encoded and raw), calibration rows (the calibration file's, else the test rows') and the
monitor's reference sketch. Export, optimize, bench, serve and monitor then take it as they take a package
seekforge trained. The imported file is only read.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seekforge.core.config_file import load_config
from seekforge.core.errors import ConfigError, DataError, PackageError
from seekforge.core.io import sha256_file
from seekforge.core.package import seekforge_version, write_package
from seekforge.model_import._onnx import OnnxReport, TensorSpec, inspect_onnx
from seekforge.model_import.config import ImportSpec
from seekforge.runtime import canonical

#: held-out rows the package keeps for the parity gate (as a trained package keeps)
SAMPLE_ROWS = 512


@dataclass(frozen=True)
class ImportResult:
    package: Path
    metrics: dict[str, Any]
    report: OnnxReport


def load_spec(path: str | Path) -> ImportSpec:
    """The declaration in the YAML file ``path``.

    Raises:
        ConfigError: Not valid (each problem at its field, with its line).
    """
    return load_config(path, ImportSpec, what="import declaration",
                       hint="see seekforge import --help for its fields")  # fmt: skip


def import_onnx(
    model: str | Path,
    spec: ImportSpec | str | Path | None,
    output: str | Path,
    *,
    test: str | Path,
    calibration: str | Path | None = None,
    force: bool = False,
    task: str | None = None,
    text: str = "text",
    label: str = "label",
) -> ImportResult:
    """Make a package of the ONNX file, torch.export ``.pt2`` program or Hugging Face folder ``model`` as
    ``spec`` declares it, measured on the ``test`` rows. A folder's declaration may be left out (one text
    column ``text``, the label ``label``), and a declaration given for it may leave out its classes and
    tokenizer (the folder's own).

    Raises:
        DataError: The file is not a model onnxruntime runs here, its input or output is not what the
            declaration says, or the rows lack a declared column.
        ConfigError: The declaration is not valid, or missing where the model does not imply one.
        PackageError: ``output`` exists (unless ``force``).
    """
    from seekforge.model_import._hf import read_folder

    model, output = Path(model), Path(output)
    hf = read_folder(model, task) if model.is_dir() else None
    if hf is None and task is not None:
        raise ConfigError(f"--task {task}: a task is given for a Hugging Face folder; {model} is a file")
    if spec is None and hf is None:
        raise ConfigError(f"{model}: what the model takes and gives is declared with --inputs spec.yaml",
                          hint="seekforge import MODEL -o PKG --inputs spec.yaml --test rows.csv")  # fmt: skip
    spec_file = Path(spec) if isinstance(spec, str | Path) else None
    spec = load_spec(spec) if spec_file is not None else spec
    if hf is not None:  # the folder's own classes and tokenizer where the declaration leaves them out
        declared = spec.model_dump(mode="json", exclude_unset=True) if spec is not None else {}
        spec = ImportSpec.model_validate({**hf.declaration(text=text, label=label), **declared})
    assert spec is not None
    if spec.features.output.type != "numeric" and spec.classes is None:
        raise ConfigError("classes: a classifier's classes, in the order of its output's columns, are required",
                          hint="classes: [..] in the --inputs file")  # fmt: skip
    if output.exists() and not force:
        raise PackageError(f"{output} already exists", hint="choose another --output, or pass --force to replace it")
    inside = [str(p) for p in (model, test, calibration, spec_file, spec.tokenizer)
              if p is not None and Path(p).resolve().is_relative_to(output.resolve())]  # fmt: skip
    if inside:
        raise PackageError(f"{', '.join(inside)} lie(s) inside {output}, which the package would replace",
                           hint="choose an --output folder that holds none of the inputs")  # fmt: skip
    if hf is None and model.suffix.lower() != ".pt2":
        return _import(model, spec, output, test=test, calibration=calibration, force=force, source=model)
    with as_onnx(model, spec) as converted:  # an ExportedProgram or a folder: through torch's ONNX exporter
        return _import(converted, spec, output, test=test, calibration=calibration, force=force, source=model)


@contextmanager
def as_onnx(model: Path, spec: ImportSpec | None = None, task: str | None = None) -> Iterator[Path]:
    """``model`` as an ONNX file: itself, or a ``.pt2`` program or Hugging Face folder converted into a
    scratch folder (gone afterwards); a folder's rows are cut to the declared text's ``max_length``.

    Raises:
        DataError: The program or folder cannot be converted.
    """
    from seekforge.export.config import ExportConfig
    from seekforge.model_import._hf import hf_to_onnx, read_folder
    from seekforge.model_import._pt2 import pt2_to_onnx

    if not model.is_dir() and model.suffix.lower() != ".pt2":
        yield model
        return
    with tempfile.TemporaryDirectory(prefix="seekforge-import-") as scratch:
        converted = Path(scratch) / f"{model.stem or 'model'}.onnx"
        if model.is_dir():
            hf = read_folder(model, task)
            feature = spec.features.inputs[0] if spec is not None else None
            length = feature.max_length if feature is not None and feature.type == "text" else hf.max_length
            hf_to_onnx(hf, converted, max_length=length, opset=ExportConfig().opset)
        else:
            pt2_to_onnx(model, converted)
        yield converted


def _import(model: Path, spec: ImportSpec, output: Path, *, test: str | Path, calibration: str | Path | None,
            force: bool, source: Path) -> ImportResult:  # fmt: skip
    from seekforge.build import model_card
    from seekforge.data import Preprocessor, check_table, frame_fingerprint, read_source
    from seekforge.models import OnnxGraphConfig, infer
    from seekforge.monitor import build_reference
    from seekforge.recipe import Recipe
    from seekforge.train import Tensors, evaluate_logits

    report = inspect_onnx(model)
    report.path = str(source)  # (a .pt2's report is of the graph it became)
    if not report.runs_here:
        raise DataError(f"{model}: onnxruntime {report.onnxruntime['version']} cannot run it: "
                        f"{report.onnxruntime['problem']}", hint="seekforge import MODEL shows the whole report")  # fmt: skip
    if report.external_data:
        raise DataError(f"{source}: its weights are in files beside it, which a package does not carry",
                        hint="save it whole: onnx.save(onnx.load(PATH), 'whole.onnx', save_as_external_data=False)")  # fmt: skip
    features = spec.features
    names = [f.name for f in features.inputs]
    if spec.text:
        tokens = _text_inputs(report.inputs, spec, model)
        taken = [name for name in tokens.values() if name is not None]
    else:
        graph_input = _pick(report.inputs, spec.graph.input, "input", model)
        taken = [graph_input.name]
    graph_output = _pick(report.outputs, spec.graph.output, "output", model)
    unfed = [s.name for s in report.inputs if s.name not in taken]
    if unfed:
        raise DataError(f"{source}: its input(s) {', '.join(map(repr, unfed))} would get nothing: an imported graph "
                        f"takes {', '.join(map(repr, taken))} here", hint="name the inputs the features fill "
                        "(graph: in the --inputs file)")  # fmt: skip
    if spec.image:
        size, channels = _image_input(graph_input, spec, model)
    elif not spec.text:
        _check_input(graph_input, len(names), model)
    width = len(spec.classes) if spec.classes is not None else 1
    _check_output(graph_output, width, model)
    rows = read_source(str(test))
    missing = [c for c in [*names, features.output.name] if c not in rows.columns]
    if missing:
        raise DataError(f"{test} lacks the declared column(s) {', '.join(map(repr, missing))}",
                        hint=f"its columns: {', '.join(map(str, rows.columns))}")  # fmt: skip
    checked = check_table(rows, features)
    if spec.classes is not None and checked[features.output.name].nunique() < 2:
        raise DataError(f"{test}: every row's '{features.output.name}' is {checked[features.output.name].iloc[0]!r}; "
                        "the test rows measure a classifier only with at least two of its classes among them",
                        hint="give --test rows of several classes")  # fmt: skip
    # an image model's statistics are declared, not measured: fitted on one row per class (not every image)
    fitted = checked.groupby(features.output.name, sort=False).head(1) if spec.image and spec.classes else checked
    tokenizer = {names[0]: _tokenizer(spec.tokenizer)} if spec.text else None
    pre = Preprocessor(features, tokenizer_path=tokenizer).fit(fitted if len(fitted) else checked)
    if spec.classes is not None:  # the model's own order, not the labels' sorted order; the labels' own values
        seen = {canonical(v): v for v in checked[features.output.name].unique()}
        unknown = sorted(set(seen) - {canonical(c) for c in spec.classes})
        if unknown:
            raise DataError(f"{test}: labels {unknown} of '{features.output.name}' are not among classes {spec.classes}",
                            hint="list every class the model outputs, in the order of its output's columns")  # fmt: skip
        pre.classes_ = [_native(seen.get(canonical(c), c)) for c in spec.classes]
    else:  # the graph gives values in the label's own units
        pre.target_mean_, pre.target_std_ = 0.0, 1.0
    if spec.image:  # resized and normalised as declared, not as the rows' own statistics would have it
        from seekforge.data import ImageStats

        mean, std = spec.normalize.mean or [0.0], spec.normalize.std or [1.0]
        pre.images_[names[0]] = ImageStats(size, channels, tuple(_per_channel(mean, channels, "mean")),
                                           tuple(_per_channel(std, channels, "std")))  # fmt: skip
    io = pre.model_io()
    zeros: dict[str, str] = {}
    if spec.text:  # the token ids and mask under the text's batch keys; segment ids zeros shaped as the ids
        entry = next(entry for entry in io.inputs if entry["type"] == "text")
        feeds = {entry["ids"]: tokens["ids"], entry["mask"]: tokens["mask"]}
        zeros = {tokens["segments"]: entry["ids"]} if tokens["segments"] is not None else {}
    else:
        feeds = {next((entry["key"] for entry in io.inputs if entry["type"] == "image"), "numeric"): graph_input.name}
    graph = model.read_bytes()
    scores = "values" if spec.classes is None else spec.graph.scores
    config = OnnxGraphConfig(size=len(graph), feeds=feeds, zeros=zeros, output=graph_output.name, scores=scores)
    net = config.build(io, pretrained=False)
    state = {"graph": torch.frombuffer(bytearray(graph), dtype=torch.uint8)}
    net.load_state_dict(state)
    held_out = Tensors(pre.transform(rows), pre.transform_target(rows))
    metrics = evaluate_logits(pre, infer(net, held_out.inputs), held_out.target)
    calibrating = read_source(str(calibration)) if calibration is not None else rows
    lacking = [c for c in names if c not in calibrating.columns]
    if lacking:
        raise DataError(f"{calibration} lacks the declared column(s) {', '.join(map(repr, lacking))}")
    labelled = features.output.name in calibrating.columns
    calibration_rows = Tensors(pre.transform(calibrating), pre.transform_target(calibrating) if labelled
                               else torch.zeros(len(calibrating), dtype=held_out.target.dtype))  # fmt: skip
    drawn = torch.randperm(len(calibration_rows), generator=torch.Generator().manual_seed(spec.seed))[:SAMPLE_ROWS]
    calibration_rows = Tensors(
        {k: v[drawn.sort().values] for k, v in calibration_rows.inputs.items()},
        calibration_rows.target[drawn.sort().values],
    )  # a sorted file: not one class only
    reference = build_reference(calibrating if labelled else rows, pre)  # (its output needs labels)
    name = spec.name or _name_of(source)
    recipe = Recipe.model_validate({
        "name": name, "seed": spec.seed, "data": {"source": str(Path(test).resolve())},
        "features": features.model_dump(mode="json"), "model": config.model_dump(mode="json"),
    })  # fmt: skip
    imported = {
        "file": str(source.resolve()),
        "sha256": _checksum(source),
        "opset": report.opset,
        "format": _format_of(source),
        "producer": report.producer,
        "operators": report.operators,
    }
    manifest: dict[str, Any] = {
        "name": name,
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "task": pre.task,
        "inputs": pre.input_schema(),
        "output": pre.output_schema(),
        "model": {"type": "onnx", "parameters": 0, "trainable": 0},
        "metrics": {"test": metrics},
        "data": {"rows": {"test": len(rows), "calibration": len(calibrating)}},
        "lineage": {
            "data_hash": frame_fingerprint(checked),
            "recipe_hash": recipe.fingerprint(),
            "parent": None,
            "seed": spec.seed,
            "imported": imported,
        },
    }
    card, _ = model_card({**manifest, "seekforge_version": seekforge_version()}, recipe)
    from safetensors.torch import save as save_tensors

    files = {
        "recipe.yaml": recipe.to_yaml(),
        "preprocessor.json": json.dumps(pre.to_dict()),
        "model.json": json.dumps({"config": config.model_dump(mode="json"), "io": io.to_dict()}, indent=2),
        "model.safetensors": save_tensors(state),
        "reference.json": json.dumps(reference),
        "model_card.md": card,
        "samples.safetensors": held_out.head(SAMPLE_ROWS).to_bytes(),
        "calibration.safetensors": calibration_rows.to_bytes(),
    }
    if not (spec.image or spec.text):  # the same rows, raw, for exports that hold the preprocessing
        head = rows.head(SAMPLE_ROWS)
        files["samples.json"] = json.dumps({n: [None if np.isnan(v) else float(v)
                                                for v in head[n].to_numpy(dtype=np.float64)] for n in names})  # fmt: skip
    package = write_package(output, files=files, manifest=manifest, overwrite=force)
    return ImportResult(package, metrics, report)


def _format_of(source: Path) -> str:
    return "huggingface" if source.is_dir() else "pt2" if source.suffix.lower() == ".pt2" else "onnx"


def _checksum(source: Path) -> str:
    """The file's sha256; a folder's: its weight files' (as a pretrained base is named)."""
    if not source.is_dir():
        return sha256_file(source)
    from seekforge.models import base_sha256

    return base_sha256(source)


def _tokenizer(declared: str | None) -> Path:
    """The declared ``tokenizer.json`` (or the one in the declared folder).

    Raises:
        ConfigError: None declared, or no such file.
    """
    if declared is None:
        raise ConfigError("tokenizer: a text model's tokenizer.json (or the folder holding it) is required",
                          hint="tokenizer: path/to/tokenizer.json in the --inputs file")  # fmt: skip
    path = Path(declared).expanduser()
    path = path / "tokenizer.json" if path.is_dir() else path
    if not path.is_file():
        raise ConfigError(f"tokenizer: {path} does not exist",
                          hint="a Hugging Face fast tokenizer's tokenizer.json: tokenizer.save_pretrained(FOLDER)")  # fmt: skip
    return path


def _text_inputs(specs: list[TensorSpec], spec: ImportSpec, model: Path) -> dict[str, str | None]:
    """The graph inputs of the token ids, the attention mask and (where it has them) the segment ids: as
    declared, else the ones named as Hugging Face names them. Each is a ``[rows, tokens]`` tensor with both
    axes dynamic (a text's tokens are cut to each batch's longest row)."""
    by_name = {s.name: s for s in specs}
    chosen: dict[str, str | None] = {}
    for role, usual, what in (("ids", "input_ids", "token ids"), ("mask", "attention_mask", "attention mask"),
                              ("segments", "token_type_ids", "segment ids")):  # fmt: skip
        wanted = getattr(spec.graph, role)
        if wanted is not None and wanted not in by_name:
            raise DataError(f"{model} has no input {wanted!r} (graph.{role}); its inputs: {', '.join(by_name)}")
        name = wanted or (usual if usual in by_name else None)
        if name is None and role != "segments":
            raise DataError(f"{model}: none of its inputs ({', '.join(by_name)}) is named {usual!r}; which takes the "
                            f"{what}?", hint=f"graph: {{{role}: NAME}} in the --inputs file (a text graph takes "
                            "its token ids and attention mask)")  # fmt: skip
        chosen[role] = name
        tensor = by_name.get(name) if name is not None else None
        if tensor is None:
            continue
        kinds = ("int64", "int32") + (("float32", "bool") if role == "mask" else ())
        if tensor.dtype not in kinds or len(tensor.shape) != 2:
            raise DataError(f"{model}: input {name!r} is {tensor.dtype} {tensor.shape}; the {what} are one "
                            f"{' or '.join(kinds)} tensor [rows, tokens]")  # fmt: skip
        _dynamic_batch(tensor, model)
        if isinstance(tensor.shape[1], int):
            raise DataError(f"{model}: input {name!r} takes exactly {tensor.shape[1]} tokens a row ({tensor.shape})",
                            hint="export it with a dynamic sequence axis: dynamic_axes={NAME: {0: 'batch', "
                                 "1: 'sequence'}}")  # fmt: skip
    return chosen


def _native(value: Any) -> Any:
    """A label as the rows hold it, numpy's scalars as Python's (so a 0/1 classifier serves 0 and 1)."""
    return value.item() if isinstance(value, np.generic) else value


def _pick(specs: list[TensorSpec], wanted: str | None, kind: str, model: Path) -> TensorSpec:
    if wanted is None:
        if kind == "input" and len(specs) != 1:
            raise DataError(f"{model} has {len(specs)} inputs ({', '.join(s.name for s in specs)}); declare which one "
                            "the features fill", hint="graph: {input: NAME} in the --inputs file")  # fmt: skip
        return specs[0]
    for spec in specs:
        if spec.name == wanted:
            return spec
    raise DataError(f"{model} has no {kind} {wanted!r}; its {kind}s: {', '.join(s.name for s in specs)}")


def _check_input(spec: TensorSpec, width: int, model: Path) -> None:
    """The input is a float tensor ``[rows, features]`` whose width, where the file fixes it, is the number
    of declared features (an undeclared dynamic axis besides the batch is refused)."""
    if spec.dtype != "float32" or len(spec.shape) != 2:
        raise DataError(f"{model}: input {spec.name!r} is {spec.dtype} {spec.shape}; an imported model's features "
                        "fill one float32 tensor [rows, features]",
                        hint="export it with float32 inputs (skl2onnx: FloatTensorType)")  # fmt: skip
    _dynamic_batch(spec, model)
    if isinstance(spec.shape[1], int) and spec.shape[1] != width:
        raise DataError(f"{model}: input {spec.name!r} takes {spec.shape[1]} features, and {width} are declared",
                        hint="declare one numeric input per column of the tensor, in its order")  # fmt: skip


def _image_input(graph: TensorSpec, spec: ImportSpec, model: Path) -> tuple[tuple[int, int], int]:
    """The image size and channels the graph input ``[rows, channels, height, width]`` takes: fixed by the
    file, or declared (``size``, ``channels``) where the file leaves them dynamic; the two must agree."""
    feature = spec.features.inputs[0]
    if graph.dtype != "float32" or len(graph.shape) != 4:
        raise DataError(f"{model}: input {graph.name!r} is {graph.dtype} {graph.shape}; an imported image model takes "
                        "one float32 tensor [rows, channels, height, width]")  # fmt: skip
    _dynamic_batch(graph, model)
    channels, height, width = graph.shape[1:]
    declared = getattr(feature, "size", None)
    if not (isinstance(height, int) and isinstance(width, int)):
        if declared is None:
            raise DataError(f"{model}: input {graph.name!r} leaves its height and width dynamic ({graph.shape}), and "
                            "no size is declared", hint="declare the size the model was trained on: "
                            "{name: ..., type: image, size: [224, 224]}")  # fmt: skip
        height, width = declared
    elif declared is not None and tuple(declared) != (height, width):
        raise DataError(
            f"{model}: input {graph.name!r} takes {height}x{width} images, and size {list(declared)} is declared"
        )
    wanted = getattr(feature, "channels", None)
    if not isinstance(channels, int):
        channels = wanted or 3
    elif wanted is not None and wanted != channels:
        raise DataError(f"{model}: input {graph.name!r} takes {channels} channel(s), and {wanted} are declared")
    if channels not in (1, 3):
        raise DataError(f"{model}: input {graph.name!r} takes {channels} channels; images have 1 or 3")
    return (int(height), int(width)), int(channels)


def _per_channel(values: list[float], channels: int, what: str) -> list[float]:
    if len(values) == 1:
        return values * channels
    if len(values) != channels:
        raise DataError(f"normalize.{what}: {len(values)} values for a {channels}-channel image")
    return values


def _dynamic_batch(spec: TensorSpec, model: Path) -> None:
    """The first axis takes any number of rows (a graph exported for one row cannot serve batches)."""
    if spec.shape and isinstance(spec.shape[0], int):
        raise DataError(f"{model}: {spec.name!r} takes exactly {spec.shape[0]} row(s) a call ({spec.shape})",
                        hint="export it with a dynamic batch axis: torch.onnx.export(..., dynamic_shapes=...) or "
                             "dynamic_axes={NAME: {0: 'batch'}}")  # fmt: skip


def _check_output(spec: TensorSpec, width: int, model: Path) -> None:
    _dynamic_batch(spec, model)
    if spec.dtype != "float32":
        raise DataError(f"{model}: output {spec.name!r} is {spec.dtype}, not a float tensor of scores",
                        hint="declare another output (graph: {output: NAME}); for a scikit-learn classifier, "
                             "convert it with options={'zipmap': False} to get its probabilities as a tensor")  # fmt: skip
    fixed = [s for s in spec.shape[1:] if isinstance(s, int)]
    if len(spec.shape) > 2 or (fixed and int(np.prod(fixed)) != width):
        raise DataError(f"{model}: output {spec.name!r} has shape {spec.shape}, and {width} score(s) per row are "
                        "declared", hint="list the classes in the order of the output's columns")  # fmt: skip


def _name_of(model: Path) -> str:
    cleaned = "".join(c if c.isalnum() or c in "_.-" else "-" for c in model.stem).strip("-._") or "imported"
    return cleaned[:100] if cleaned[0].isalnum() else f"m{cleaned}"[:100]
