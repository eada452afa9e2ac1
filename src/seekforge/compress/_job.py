"""One compression job: the parent package, its data, and the stages made from it (pruned, distilled,
quantized), each trained, packaged and measured the same way."""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from seekforge.build import Prepared, calibrated, distill_exit_heads, hold_exit_heads, prepare, write_trained
from seekforge.compress._prune import count, ignored_layers, prunable_width, prune_step, step_ratio
from seekforge.compress._stage import Stage
from seekforge.compress.config import CompressConfig
from seekforge.core.errors import ConfigError, DataError, SeekforgeError
from seekforge.core.io import atomic_path
from seekforge.core.package import read_manifest, read_package_json
from seekforge.core.progress import console, progress_task
from seekforge.data import Preprocessor
from seekforge.models import MODELS, ModelConfig, ModelIO, infer, model_spec_of, num_rows, through_all_layers
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


_UNTRAINED = TrainResult(history=[], best_epoch=0, steps=0, stopped_early=False)


class Compression:
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
        # An adapter is merged first: every variant is an ordinary model of the parent's type.
        self.model_config, self.parent = self.model_config.merged(build_model(source))
        self.teacher = through_all_layers(self.parent)  # what a student learns from: never an early exit
        if self.model_config.model_dump() != self.recipe.model.model_dump():  # the variants' recipes say so too
            self.recipe = load_recipe({**self.recipe.to_dict(), "model": self.model_config.model_dump(mode="json")})
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
            outputs = _outputs_of(self.teacher, inputs)
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
            copy.deepcopy(self.teacher), temperature=distill.temperature, alpha=distill.alpha, outputs=outputs
        )

    def train_module(self, stage: Path, model: nn.Module, epochs: int, lr: float | None = None) -> TrainResult:
        """Train ``model`` in ``stage``, resuming its checkpoint, with the parent as teacher when distilling; then
        the exit heads of a model with early exit whose heads learn after it (``training: distill``)."""
        from seekforge.train import checkpoint_path

        train, outputs = self.training_rows
        distilling = hold_exit_heads(model)
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
        held_out = validation if len(validation.target) else None
        result = trainer.fit(train, held_out, resume=checkpoint_path(stage).exists())
        if distilling:
            result = distill_exit_heads(model, trainer, train, held_out, stage,
                                        resume=checkpoint_path(stage / "exits").exists(), first=result)  # fmt: skip
        model.cpu()  # everything after training (scoring, pruning, export) runs on the CPU
        return result

    def train(
        self, stage: Path, model: nn.Module, config: ModelConfig, epochs: int, io: ModelIO | None = None
    ) -> nn.Module:
        """Train ``model`` in ``stage`` and write ``stage/trained``."""
        result = self.train_module(stage, model, epochs)
        config, extra = calibrated(model, config, self.prepared.splits["validation"])  # early exit: threshold again
        write_trained(stage / "trained", model, config, io or self.io, result, extra=extra)
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
        # traced and pruned through all its layers; its exit heads keep their widths, and their threshold is
        # calibrated again after fine-tuning
        model, config = copy.deepcopy(self.teacher), self.model_config
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
                config, extra = calibrated(model, config, self.prepared.splits["validation"])
                write_trained(stage / "trained", model, config, self.io, _UNTRAINED, extra=extra)
        return Stage(f"pruned {ratio:.0%}", stage, model, config, ratio)

    def student(self) -> Stage:
        """Train the student architecture with the parent as teacher."""
        from seekforge.models import build_model

        distill = self.config.distill
        assert distill is not None and distill.student is not None
        config = student_config(distill.student, self.recipe)
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
        size = 32 if size == "auto" else size  # rows enough for importance scores, whatever training takes
        order = torch.randperm(len(train.target), generator=torch.Generator().manual_seed(self.recipe.seed))
        for start in range(0, min(len(order), 8 * size), size):
            index = order[start : start + size]
            yield collate(train.inputs, index), train.target[index]


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
    # through this version's Preprocessor, so that a setting added since (at its default) is no difference
    fitted = json.loads(json.dumps(Preprocessor.from_dict(read_package_json(source, "preprocessor.json")).to_dict()))
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


def student_config(student: Path | dict[str, Any], recipe: Recipe) -> ModelConfig:
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
