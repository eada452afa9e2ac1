"""``seekforge compress``: prune (a fixed ratio, or the largest within the accuracy budget), fine-tune with
distillation from the unpruned model, or distil into a smaller student; measure every variant; write the
chosen one as a new package whose lineage names its parent.

The work happens in a folder of stages (``prune-0.500/step-1/``, ``student/``, ...). Each stage keeps
its starting weights, its training checkpoints and, once done, its trained model and package, so an
interrupted run continues where it stopped and finished stages are never redone.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from rich.markup import escape
from torch import nn

from seekforge.build import Prepared, prepare, write_trained
from seekforge.compress._prune import count, ignored_layers, prunable_width, prune_step, step_ratio
from seekforge.compress._stage import Stage
from seekforge.compress.config import CompressConfig
from seekforge.core.deps import require
from seekforge.core.errors import ConfigError, DataError, PackageError, SeekforgeError
from seekforge.core.hardware import hardware
from seekforge.core.io import atomic_dir, atomic_path, sha256_file, work_folder, write_json_atomic
from seekforge.core.package import carried_fields, read_manifest, write_package
from seekforge.core.progress import console, progress_task
from seekforge.models import MODELS, ModelConfig, ModelIO, infer, model_spec_of, num_rows
from seekforge.recipe import Recipe, load_recipe
from seekforge.train import Distillation, Tensors, Trainer, TrainResult, task_loss


@dataclass(frozen=True)
class VariantRow:
    """One model's figures: parameters, MACs for one row, the weights file's and the ONNX file's bytes,
    latency (ms, p50) on torch and onnxruntime (int8 for a QAT model), accuracy (or R2) on the test and
    validation splits, the drop from the parent, and the verdict."""

    name: str
    ratio: float | None
    parameters: int
    macs: int
    bytes: int
    onnx_bytes: int | None
    torch_ms_batch1: float | None
    torch_ms_batch32: float | None
    onnxruntime_ms_batch1: float | None
    onnxruntime_ms_batch32: float | None
    metric: float
    val_metric: float | None
    drop: float
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class CompressResult:
    """The package written, the work folder, every variant's row and which one was kept."""

    package: Path
    work_dir: Path
    metric: str
    rows: list[VariantRow]
    selected: str
    budget: float


_UNTRAINED = TrainResult(history=[], best_epoch=0, steps=0, stopped_early=False)


class _Compression:
    def __init__(self, source: Path, config: CompressConfig, folder: Path, *, seconds: float) -> None:
        from seekforge.models import build_model
        from seekforge.train import headline_metric

        self.source, self.config, self.folder, self.seconds = source, config, folder, seconds
        self.manifest = read_manifest(source)
        self.recipe = load_recipe(source / "recipe.yaml")
        self.prepared = prepare(self.recipe, folder)
        _check_same_data(self.prepared, self.manifest, source)
        if not len(self.prepared.splits["test"].target):
            raise DataError(
                f"the recipe of {source} leaves no test rows, and every variant is judged on them",
                hint="compress a package trained with data.split.test > 0 or a data.test file",
            )
        self.model_config, self.io = model_spec_of(source)
        self.parent = build_model(source)
        if config.prune is not None:
            ignored_layers(self.parent, self.model_config, config.prune)  # unknown layers fail before any work
        self.task = self.manifest["task"]
        self.metric_name = headline_metric(torch.zeros(1, 1), torch.zeros(1, dtype=torch.long), task=self.task)[0]
        self.example = {k: v[:8] for k, v in self.prepared.splits["train"].inputs.items()}
        self.budget = config.max_accuracy_drop
        self.parent_metric: dict[str, float] = {}

    # ------------------------------------------------------------------------------------- figures

    def score(self, model: nn.Module, split: str) -> float | None:
        """Accuracy (or R2) on ``split``; None when the split has no rows."""
        from seekforge.train import headline_metric

        data = self.prepared.splits[split]
        if not len(data.target):
            return None
        return headline_metric(infer(model, data.inputs), data.target, task=self.task)[1]

    def test_score(self, model: nn.Module) -> float:
        score = self.score(model, "test")
        assert score is not None, "checked when the work began"
        return score

    def measure(
        self,
        name: str,
        package: Path,
        model: nn.Module,
        ratio: float | None,
        note: str = "",
        *,
        counted: nn.Module | None = None,
    ) -> VariantRow:
        """Export the package to ONNX (through the parity gate) and time torch and onnxruntime on it; the
        verdict judges the test drop against the budget (``note`` adds to it)."""
        from seekforge.export import VARIANTS, ExportConfig, bench_package, export_package

        test = self.test_score(model)
        parent = self.parent_metric.get("test", test)
        verdict = "baseline" if name == "parent" else self.verdict(parent - test)
        verdict += f"; {note}" if note else ""
        manifest = read_manifest(package)
        qat = "quantization" in manifest
        variant = "onnx-int8" if qat else "onnx"
        backends = ["torch"]
        if variant not in manifest.get("exports", {}):
            try:
                export_package(package, ExportConfig(precision="int8" if qat else "fp32"))
            except SeekforgeError as exc:
                verdict += f" (no ONNX export: {exc.message})"
        exports = read_manifest(package).get("exports", {})
        if variant in exports:
            backends.append(VARIANTS[variant].backend)
        timing = bench_package(package, backends=backends, batches=(1, 32), seconds=self.seconds)
        latency = {(row.backend, row.batch): row.p50_ms for row in timing}
        sizes = count(counted or model, self.example)
        return VariantRow(
            name=name,
            ratio=ratio,
            parameters=sizes["parameters"],
            macs=sizes["macs"],
            bytes=(package / "model.safetensors").stat().st_size,
            onnx_bytes=exports[variant]["bytes"] if variant in exports else None,
            torch_ms_batch1=latency.get(("torch", 1)),
            torch_ms_batch32=latency.get(("torch", 32)),
            onnxruntime_ms_batch1=latency.get((backends[-1], 1)) if len(backends) > 1 else None,
            onnxruntime_ms_batch32=latency.get((backends[-1], 32)) if len(backends) > 1 else None,
            metric=test,
            val_metric=self.score(model, "validation"),
            drop=parent - test,
            verdict=verdict,
        )

    def verdict(self, drop: float) -> str:
        return "within budget" if drop <= self.budget else "over budget"

    # ------------------------------------------------------------------------------------- training

    def train_config(self, epochs: int, lr: float | None = None) -> Any:
        update: dict[str, Any] = {"epochs": epochs, "checkpoint_every": None}
        if lr or self.config.lr:
            update["lr"] = lr or self.config.lr
        if self.config.batch_size is not None:
            update["batch_size"] = self.config.batch_size
        base = self.recipe.train.model_dump()
        return type(self.recipe.train).model_validate({**base, **update})

    @functools.cached_property
    def training_rows(self) -> tuple[Tensors, torch.Tensor | None]:
        """The rows to train on, and the teacher's outputs on them when they are known already: the
        training split, plus with ``distill.augment`` its altered copies labelled by the teacher (its
        predicted class, or value, as the copies' label).

        The copies and the teacher's outputs are kept in the work folder, so a resumed job reuses them;
        within one job they are read once, whatever the number of stages that train on them.
        """
        from seekforge.compress._augment import augment_tokens

        train = self.prepared.splits["train"]
        augment = self.config.distill.augment if self.config.distill is not None else None
        if augment is None:
            return train, None
        cache = self.folder / "augmented.safetensors"
        if not cache.is_file():
            encoder = next(iter(self.prepared.preprocessor.text_.values()))
            table = getattr(self.parent, "token_table", None)
            ids, mask, source = augment_tokens(
                train.inputs["input_ids"],
                train.inputs["attention_mask"],
                augment,
                special_ids=encoder.special_ids,
                mask_id=encoder.mask_id,
                pad_id=encoder.pad_id,
                table=table() if table is not None else None,
                seed=self.recipe.seed,
            )
            copies = {**{k: v[source] for k, v in train.inputs.items()}, "input_ids": ids, "attention_mask": mask}
            inputs = {k: torch.cat([train.inputs[k], copies[k]]) for k in train.inputs}
            console.print(f"  the teacher labels {len(source):,} altered copies of the training texts")
            outputs = _outputs_of(self.parent, inputs)
            with atomic_path(cache) as tmp:
                Tensors(inputs, outputs).save(tmp)
        rows = Tensors.load(cache)
        outputs, known = rows.target, len(train)
        labels = outputs[known:].argmax(dim=1) if self.task != "regression" else outputs[known:].reshape(-1)
        target = torch.cat([train.target, labels.reshape(-1, *train.target.shape[1:]).to(train.target.dtype)])
        return Tensors(rows.inputs, target), outputs

    def distillation(self, outputs: torch.Tensor | None = None) -> Distillation | None:
        distill = self.config.distill
        if distill is None:
            return None
        return Distillation(
            copy.deepcopy(self.parent), temperature=distill.temperature, alpha=distill.alpha, outputs=outputs
        )

    def train_module(self, stage: Path, model: nn.Module, epochs: int, lr: float | None = None) -> TrainResult:
        """Train ``model`` in ``stage``, resuming its checkpoint, with the parent as teacher when distilling."""
        from seekforge.train import checkpoint_path

        train, outputs = self.training_rows
        trainer = Trainer(
            model,
            self.train_config(epochs, lr),
            task=self.task,
            seed=self.recipe.seed,
            run_dir=stage,
            classes=getattr(self.prepared.preprocessor, "classes_", None),
            distillation=self.distillation(outputs),
        )
        validation = self.prepared.splits["validation"]
        result = trainer.fit(
            train,
            validation if len(validation.target) else None,
            resume=checkpoint_path(stage).exists(),
        )
        model.cpu()  # everything after training (scoring, pruning, export) runs on the CPU
        return result

    def train(
        self, stage: Path, model: nn.Module, config: ModelConfig, epochs: int, io: ModelIO | None = None
    ) -> nn.Module:
        """Train ``model`` in ``stage`` and write ``stage/trained``."""
        result = self.train_module(stage, model, epochs)
        write_trained(stage / "trained", model, config, io or self.io, result)
        return model

    def package(self, stage: Path, extra: dict[str, Any]) -> Path:
        from seekforge.build import finish
        from seekforge.compress._qat import QUANT_FILE

        package = stage / "package"
        if not (package / "package.json").is_file():
            quantized = stage / "trained" / QUANT_FILE
            files = {QUANT_FILE: quantized} if quantized.is_file() else {}
            if files:
                extra = {**extra, "quantization": {"method": "qat", "file": QUANT_FILE}}
            finish(self.recipe, self.prepared, stage, extra=extra, extra_files=files)
        return package

    # ------------------------------------------------------------------------------------- stages

    def prune(self, ratio: float) -> Stage:
        """Prune the parent to ``ratio`` in ``prune.steps`` steps, fine-tuning after each."""
        from seekforge.models import build_model

        prune = self.config.prune
        assert prune is not None
        model, config = copy.deepcopy(self.parent), self.model_config
        original = prunable_width(model, ignored_layers(model, config, prune))
        root = self.folder / f"prune-{ratio:.3f}"
        for step in range(1, prune.steps + 1):
            stage = root / f"step-{step}"
            target = ratio * step / prune.steps
            if (stage / "trained" / "model.json").is_file():  # finished before an interruption
                model, (config, _) = build_model(stage / "trained"), model_spec_of(stage / "trained")
                continue
            if (stage / "start" / "model.json").is_file():  # pruned, then interrupted while fine-tuning
                model, (config, _) = build_model(stage / "start"), model_spec_of(stage / "start")
            else:
                console.print(f"[bold]prune[/] {ratio:.0%} step {step}/{prune.steps}: {target:.0%} of the channels")
                # what earlier steps really removed (widths round to whole channels), not what they aimed at
                done = 1.0 - prunable_width(model, ignored_layers(model, config, prune)) / original
                config = prune_step(
                    model,
                    config,
                    prune,
                    ratio=step_ratio(target, done),
                    example=self.example,
                    gradient_batches=self._gradient_batches,
                    loss=lambda logits, target: task_loss(logits, target, self.task),
                )
                _check_rebuilds(model, config, self.io)
                write_trained(stage / "start", model, config, self.io, _UNTRAINED)
            if prune.finetune_epochs:
                model = self.train(stage, model, config, prune.finetune_epochs)
            else:
                write_trained(stage / "trained", model, config, self.io, _UNTRAINED)
        return Stage(f"pruned {ratio:.0%}", stage, model, config, ratio)

    def student(self) -> Stage:
        """Train the student architecture with the parent as teacher."""
        from seekforge.models import build_model

        distill = self.config.distill
        assert distill is not None and distill.student is not None
        config = _student_config(distill.student, self.recipe)
        stage = self.folder / "student"
        if (stage / "trained" / "model.json").is_file():
            return Stage(f"student {config.type}", stage, build_model(stage / "trained"), config)
        # the student's own facts (a pretrained student's encoder config), on the parent's inputs
        io = config.prepare_io(ModelIO(**{**self.io.to_dict(), "extra": {}}))
        torch.manual_seed(self.recipe.seed)
        model = config.build(io)
        start_from = getattr(model, "start_from", None)
        carried = start_from(self.parent) if distill.student_start == "teacher" and start_from is not None else None
        io = config.adapt(model, io, self.prepared.splits["train"].inputs, self.prepared.preprocessor)
        console.print(f"[bold]distil[/] into a {config.type} student ({_parameters(model):,} parameters)")
        if carried:
            console.print(f"  {carried}")
        self.train(stage, model, config, distill.epochs, io)
        return Stage(f"student {config.type}", stage, model, config)

    def _gradient_batches(self) -> Iterator[tuple[dict[str, torch.Tensor], torch.Tensor]]:
        """Up to 8 training batches, seeded, for Taylor importance."""
        from seekforge.models import collate

        train = self.prepared.splits["train"]
        size = self.config.batch_size or self.recipe.train.batch_size
        order = torch.randperm(len(train.target), generator=torch.Generator().manual_seed(self.recipe.seed))
        for start in range(0, min(len(order), 8 * size), size):
            index = order[start : start + size]
            yield collate(train.inputs, index), train.target[index]


def compress_package(
    package: str | Path,
    config: CompressConfig,
    *,
    output: str | Path | None = None,
    runs_dir: str | Path = "runs",
    work_dir: str | Path | None = None,
    resume: bool = False,
    seconds: float = 0.5,
) -> CompressResult:
    """Compress a package into a new one, measuring the parent and every variant.

    Args:
        package: The parent package (never modified).
        config: What to do: prune, distil, or both.
        output: The new package; default ``<work_dir>/package``.
        runs_dir: Parent of ``<name>/compress-<stamp>/`` work folders.
        work_dir: Use (or resume) this work folder.
        resume: Continue the latest unfinished compression of this package with the same settings.
        seconds: Timed seconds per latency measurement.

    Raises:
        PackageError: The parent does not verify, or ``output`` exists.
        DataError: The package's training data is not where its recipe says, or has changed.
        ConfigError: The model type cannot be pruned, or no pruning ratio stays within the budget.
        TrainingInterrupted: Ctrl-C or SIGTERM during fine-tuning; ``resume=True`` continues.
    """
    source = Path(package).resolve()
    manifest = read_manifest(source)
    _preflight(source, manifest, config)
    folder = _work_folder(source, manifest, config, Path(runs_dir), resume=resume, explicit=work_dir)
    out = Path(output) if output is not None else folder / "package"
    if out.exists():
        raise PackageError(f"{out} already exists", hint="choose another --output or remove it")
    console.print(f"[bold]compress[/] {escape(str(source))} -> {escape(str(folder))}")
    job = _Compression(source, config, folder, seconds=seconds)
    lineage = {
        **manifest["lineage"],
        "parent": str(source),
        "parent_sha256": sha256_file(source / "package.json"),
    }

    parent_pkg = folder / "parent"
    if not (parent_pkg / "package.json").is_file():  # a copy to export and time: the input stays untouched
        with atomic_dir(parent_pkg, overwrite=True) as tmp:
            write_package(
                tmp, files={n: source / n for n in manifest["files"]}, manifest=carried_fields(manifest), overwrite=True
            )
    job.parent_metric = {"test": job.test_score(job.parent)}
    validation = job.score(job.parent, "validation")
    if validation is not None:
        job.parent_metric["validation"] = validation
    rows = [job.measure("parent", parent_pkg, job.parent, None)]

    stages: list[Stage] = []
    prune = config.prune
    if prune is not None and prune.ratio == "auto":
        chosen, tried = _search(job, rows)
        if chosen is None:
            _write_rows(folder, rows)
            raise ConfigError(
                f"no pruning ratio kept the validation {job.metric_name} within {job.budget:g} of the parent's "
                f"(tried {', '.join(f'{r:.0%}' for r in tried)}); figures in {folder / 'variants.json'}",
                hint="raise --max-accuracy-drop, fine-tune longer (--finetune-epochs) or add --distill",
            )
        stages.append(chosen)
    elif prune is not None:
        stage = job.prune(float(prune.ratio))
        stages.append(stage)
    if config.distill is not None and config.distill.student is not None:
        stages.append(job.student())
    if config.quantize is not None:
        from seekforge.compress._qat import quantize_stage

        stages.append(quantize_stage(job, stages[-1] if stages else None))

    final = stages[-1]
    # the figures (latency, and whether an int8 graph passes its gate) depend on the machine
    record = {"config": config.model_dump(mode="json"), "metric": job.metric_name, "hardware": hardware().to_dict()}
    for stage in stages:
        if any(row.name == stage.name for row in rows):
            continue
        pkg = job.package(stage.folder, {"lineage": lineage, "compress": record})
        rows.append(job.measure(stage.name, pkg, stage.model, stage.ratio, counted=stage.float_model))
    record = {**record, "selected": final.name, "variants": [row.to_dict() for row in rows]}
    _write_rows(folder, rows)
    built = job.package(final.folder, {"lineage": lineage, "compress": record})
    _write_final(built, out, record, lineage)
    return CompressResult(out, folder, job.metric_name, rows, final.name, job.budget)


def _preflight(source: Path, manifest: dict[str, Any], config: CompressConfig) -> None:
    """Options that cannot work for this package fail here, before any work.

    Raises:
        ConfigError: A student that does not fit the features, QAT of a text model, ``--prune auto``
            without a validation split to choose on, or a missing optional library.
    """
    recipe = load_recipe(source / "recipe.yaml")
    if config.prune is not None:
        require("torch_pruning", purpose="Structured pruning")
        if config.prune.ratio == "auto" and recipe.data.split.validation == 0:
            raise ConfigError(
                f"--prune auto chooses the ratio on the validation split, and {source} was trained without one",
                hint="give a fixed ratio (--prune 0.5), or retrain with data.split.validation > 0",
            )
    if config.distill is not None and config.distill.student is not None:
        _student_config(config.distill.student, recipe)
    texts = any(feature["type"] == "text" for feature in manifest["inputs"])
    if config.distill is not None and config.distill.augment is not None and not texts:
        raise ConfigError(
            f"distill.augment alters training texts, and {source} has no text input", hint="remove distill.augment"
        )
    if config.quantize is not None:
        from seekforge.compress._qat import check_qat_supported

        check_qat_supported()
        if texts:
            raise ConfigError(
                "--quantize qat: quantization-aware training supports MLP and CNN models; for a text model use "
                "post-training int8 (seekforge export PACKAGE --format onnx --precision int8)"
            )


def _search(job: _Compression, rows: list[VariantRow]) -> tuple[Stage | None, list[float]]:
    """Bisection over ratios in (0, max_ratio]: the largest whose validation accuracy (or R2) after
    fine-tuning stays within the budget. Every candidate's figures join ``rows``."""
    prune = job.config.prune
    assert prune is not None
    low, high = 0.0, prune.max_ratio
    best: Stage | None = None
    tried: list[float] = []
    candidates = [high] + [None] * (prune.search_steps - 1)  # the largest first: it may already pass
    for guess in candidates:
        ratio = round(guess if guess is not None else (low + high) / 2, 3)
        tried.append(ratio)
        stage = job.prune(ratio)
        val = job.score(stage.model, "validation")
        reference = job.parent_metric["validation"]
        passed = val is not None and reference - val <= job.budget
        console.print(
            f"  ratio {ratio:.0%}: validation {job.metric_name} {val:.4f} vs parent {reference:.4f}: "
            + ("within budget" if passed else "over budget")
        )
        pkg = job.package(stage.folder, {"lineage": {**job.manifest["lineage"], "parent": str(job.source)}})
        note = "search: " + ("kept" if passed else "rejected") + " on validation"
        rows.append(job.measure(stage.name, pkg, stage.model, ratio, note))
        if passed:
            low, best = ratio, stage
            if guess is not None:
                break
        else:
            high = ratio
    return best, tried


def _write_final(built: Path, out: Path, record: dict[str, Any], lineage: dict[str, Any]) -> None:
    """Copy the chosen stage's package, with the ONNX export that was measured (it passed its parity gate
    on these weights), to ``out`` with the full compression record."""
    from seekforge.build import render_report

    manifest = read_manifest(built)
    files = {name: built / name for name in manifest["files"]}
    fields = {**carried_fields(manifest), "compress": record, "lineage": lineage}

    history = json.loads((built.parent / "trained" / "result.json").read_text(encoding="utf-8"))["history"]
    report = render_report(
        manifest={**fields, "seekforge_version": manifest["seekforge_version"]},
        history=history,
        recipe_yaml=(built / "recipe.yaml").read_text(encoding="utf-8"),
    )
    write_package(out, files={**files, "report.html": report}, manifest=fields)


def _write_rows(folder: Path, rows: list[VariantRow]) -> None:
    write_json_atomic(folder / "variants.json", [row.to_dict() for row in rows])


def _work_folder(
    source: Path, manifest: dict[str, Any], config: CompressConfig, runs_dir: Path, *, resume: bool, explicit: Any
) -> Path:
    """The work folder: given, the latest unfinished one for this package and settings, or a new one."""
    settings = {"parent": sha256_file(source / "package.json"), "config": config.model_dump(mode="json")}

    def unfinished(d: Path) -> bool:
        saved = d / "settings.json"
        return (saved.is_file() and json.loads(saved.read_text(encoding="utf-8")) == settings
                and not (d / "package" / "package.json").is_file())  # fmt: skip

    folder = work_folder(runs_dir / manifest.get("name", "package"), "compress-", resume=resume,
                         explicit=Path(explicit) if explicit is not None else None, resumable=unfinished,
                         what=f"compression of {source} with these settings")  # fmt: skip
    saved = folder / "settings.json"
    if saved.is_file() and json.loads(saved.read_text(encoding="utf-8")) != settings:
        raise ConfigError(
            f"{folder} holds a compression of another package or with other settings",
            hint="use a new --work-dir, or the same package and options",
        )
    write_json_atomic(saved, settings)
    return folder


def _check_same_data(prepared: Prepared, manifest: dict[str, Any], source: Path) -> None:
    """Fine-tuning needs the training rows the package was made from: the data must hash the same and
    give the same fitted preprocessor."""
    expected = manifest["lineage"].get("data_hash")
    if expected and prepared.data_hash != expected:
        raise DataError(
            f"the data named in {source / 'recipe.yaml'} changed since the package was trained "
            f"(hash {prepared.data_hash[:12]}..., the package says {expected[:12]}...)",
            hint="compress on the machine and data the package was trained with, or retrain it",
        )
    fitted = json.loads((source / "preprocessor.json").read_text(encoding="utf-8"))
    if json.loads(json.dumps(prepared.preprocessor.to_dict())) != fitted:
        raise DataError(
            f"the preprocessor fitted again on the package's data differs from {source / 'preprocessor.json'}",
            hint="compress with the seekforge version that trained the package, or retrain it",
        )


def _check_rebuilds(model: nn.Module, config: ModelConfig, io: ModelIO) -> None:
    """The pruned config must rebuild a module with exactly the pruned weights' shapes."""
    rebuilt = config.build(io, pretrained=False).state_dict()
    state = model.state_dict()
    wrong = [k for k, v in state.items() if k not in rebuilt or rebuilt[k].shape != v.shape]
    wrong += [k for k in rebuilt if k not in state]
    if wrong:
        raise SeekforgeError(
            f"the pruned {config.type} cannot be described by its config: {', '.join(wrong[:5])} differ",
            hint="keep those layers with compress.prune.keep",
        )


def _student_config(student: Path | dict[str, Any], recipe: Recipe) -> ModelConfig:
    """The ``model:`` section of the student file, validated against the recipe's features."""
    from seekforge.core.config import BaseConfig, pluggable
    from seekforge.core.config_file import load_config

    class StudentFile(BaseConfig):
        model: pluggable(MODELS, ModelConfig)  # type: ignore[valid-type]

    loaded = load_config(student, StudentFile, what="student model", resolve_paths=True)
    config: ModelConfig = loaded.model
    problems = config.check_features(recipe.features)
    if problems:
        where = student if isinstance(student, Path) else "distill.student"
        raise ConfigError(f"{where}: model: {'; '.join(problems)}")
    return config


def _outputs_of(model: nn.Module, inputs: dict[str, torch.Tensor], chunk: int = 256) -> torch.Tensor:
    """``infer`` over many rows, with a progress bar; texts go shortest first, so that each batch is
    trimmed to little padding."""
    rows = num_rows(inputs)
    mask = inputs.get("attention_mask")
    order = torch.argsort(mask.sum(dim=1), stable=True) if mask is not None else torch.arange(rows)
    outputs = []
    with progress_task("teacher", rows) as advance:
        for start in range(0, rows, chunk):
            index = order[start : start + chunk]
            outputs.append(infer(model, {k: v[index] for k, v in inputs.items()}, batch_size=64))
            advance(len(index))
    ordered = torch.cat(outputs)
    result = torch.empty_like(ordered)
    result[order] = ordered
    return result


def _parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
