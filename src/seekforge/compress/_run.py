"""``seekforge compress``: prune (a fixed ratio, or the largest within the accuracy budget), fine-tune with
distillation from the unpruned model, or distil into a smaller student; measure every variant; write the
chosen one as a new package whose lineage names its parent.

The work happens in a folder of stages (``prune-0.500/step-1/``, ``student/``, ...). Each stage keeps
its starting weights, its training checkpoints and, once done, its trained model and package, so an
interrupted run continues where it stopped and finished stages are never redone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.markup import escape

from seekforge.compress._job import Compression, VariantRow, student_config
from seekforge.compress._stage import Stage
from seekforge.compress.config import CompressConfig
from seekforge.core.deps import require
from seekforge.core.errors import ConfigError, PackageError
from seekforge.core.hardware import hardware
from seekforge.core.io import atomic_dir, sha256_file, work_folder, write_json_atomic
from seekforge.core.package import carried_fields, read_manifest, write_package
from seekforge.core.progress import console
from seekforge.recipe import load_recipe


@dataclass(frozen=True)
class CompressResult:
    """The package written, the work folder, every variant's row and which one was kept."""

    package: Path
    work_dir: Path
    metric: str
    rows: list[VariantRow]
    selected: str
    budget: float


def compress_package(
    package: str | Path,
    config: CompressConfig,
    *,
    output: str | Path | None = None,
    runs_dir: str | Path = "runs",
    work_dir: str | Path | None = None,
    resume: bool = False,
    seconds: float = 0.5,
    overwrite: bool = False,
) -> CompressResult:
    """Compress a package into a new one, measuring the parent and every variant.

    Args:
        package: The parent package (never modified).
        config: What to do: prune, distil, or both.
        output: The new package; default ``<work_dir>/package``.
        overwrite: Replace an existing ``output`` (never the parent).
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
    if out.exists() and (not overwrite or out.resolve() == source or source in out.resolve().parents):
        raise PackageError(
            f"{out} already exists" + (" and is (or lies inside) the parent package" if overwrite else ""),
            hint="choose another --output" + ("" if overwrite else ", or pass --force to replace it"),
        )
    console.print(f"[bold]compress[/] {escape(str(source))} -> {escape(str(folder))}")
    job = Compression(source, config, folder, seconds=seconds)
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
    _write_final(built, out, record, lineage, overwrite=overwrite)
    return CompressResult(out, folder, job.metric_name, rows, final.name, job.budget)


def _preflight(source: Path, manifest: dict[str, Any], config: CompressConfig) -> None:
    """Options that cannot work for this package fail here, before any work.

    Raises:
        ConfigError: An imported model (seekforge does not retrain a graph made elsewhere), a student that
            does not fit the features, QAT of a text model, ``--prune auto`` without a validation split to
            choose on, or a missing optional library.
    """
    if (manifest.get("model") or {}).get("type") == "onnx":
        raise ConfigError(f"{source} is an imported ONNX model, which seekforge does not prune, distil or retrain",
                          hint=f"its INT8 and optimised variants come from: seekforge optimize {source} -o OUT")  # fmt: skip
    recipe = load_recipe(source / "recipe.yaml")
    if config.prune is not None:
        require("torch_pruning", purpose="Structured pruning")
        if config.prune.ratio == "auto" and recipe.data.split.validation == 0:
            raise ConfigError(
                f"--prune auto chooses the ratio on the validation split, and {source} was trained without one",
                hint="give a fixed ratio (--prune 0.5), or retrain with data.split.validation > 0",
            )
    if config.distill is not None and config.distill.student is not None:
        student_config(config.distill.student, recipe)
    texts = sum(feature["type"] == "text" for feature in manifest["inputs"])
    if config.distill is not None and config.distill.augment is not None and texts != 1:
        raise ConfigError(
            f"distill.augment alters the training texts of a model with one text input, and {source} has "
            f"{texts or 'no'} text input{'s' * (texts != 1)}",
            hint="remove distill.augment",
        )
    if config.quantize is not None:
        from seekforge.compress._qat import check_qat_supported

        check_qat_supported()
        if texts:
            raise ConfigError(
                "--quantize qat: quantization-aware training supports MLP and CNN models; for a text model use "
                "post-training int8 (seekforge export PACKAGE --format onnx --precision int8)"
            )


def _search(job: Compression, rows: list[VariantRow]) -> tuple[Stage | None, list[float]]:
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


def _write_final(
    built: Path, out: Path, record: dict[str, Any], lineage: dict[str, Any], *, overwrite: bool = False
) -> None:
    """Copy the chosen stage's package, with the ONNX export that was measured (it passed its parity gate
    on these weights), to ``out`` with the full compression record."""
    from seekforge.build import model_card, render_report
    from seekforge.recipe import load_recipe

    manifest = read_manifest(built)
    files = {name: built / name for name in manifest["files"]}
    fields = {**carried_fields(manifest), "compress": record, "lineage": lineage}
    shown = {**fields, "seekforge_version": manifest["seekforge_version"]}
    card_text, card = model_card(shown, load_recipe(built / "recipe.yaml"))
    history = json.loads((built.parent / "trained" / "result.json").read_text(encoding="utf-8"))["history"]
    report = render_report(
        manifest=shown, history=history, recipe_yaml=(built / "recipe.yaml").read_text(encoding="utf-8"), card=card
    )
    files = {**files, "report.html": report, "model_card.md": card_text}
    write_package(out, files=files, manifest=fields, overwrite=overwrite)


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
