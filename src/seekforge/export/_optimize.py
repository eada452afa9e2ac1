"""``optimize``: build the variants that fit a target, measure each one's accuracy and latency here, and
keep the fastest that stays within the accuracy budget, never one slower than the torch model."""

from __future__ import annotations

import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from seekforge.core.errors import ConfigError, PackageError, SeekforgeError
from seekforge.core.hardware import hardware
from seekforge.core.io import atomic_dir
from seekforge.core.package import add_to_package, carried_fields, read_manifest, write_package
from seekforge.core.progress import make_progress
from seekforge.core.variants import TORCH_BACKENDS, VARIANTS, available_backends
from seekforge.export._bench import bench_package
from seekforge.export.config import ExportConfig, ParityConfig

TARGETS = ("cpu", "gpu", "edge")
#: where export files live in a package
EXPORT_FOLDERS = ("onnx/", "openvino/")
#: backend -> how to build it (None: the package's own torch model, as built or channels-last for a model
#: over images); fp16 is for GPU targets only
CPU_CANDIDATES: dict[str, ExportConfig | None] = {
    **dict.fromkeys(TORCH_BACKENDS),
    **{v.backend: ExportConfig.for_variant(v) for v in VARIANTS.values() if v.precision != "fp16"},
}
#: a small device's: the package's own model as the baseline, and the INT8 graphs an edge runtime takes
EDGE_CANDIDATES: dict[str, ExportConfig | None] = {
    "torch": None,
    **{b: c for b, c in CPU_CANDIDATES.items() if c is not None and c.precision == "int8"},
}
#: what an edge target would also build, with the converter it needs (see ``convert``)
EDGE_CONVERTED = {"tflite-int8": "tflite"}


@dataclass(frozen=True)
class Candidate:
    """One variant's figures: accuracy (or R2) on the held-out rows, latency at batch 1 and 32."""

    backend: str
    metric: float | None
    drop: float | None
    p50_ms_batch1: float | None
    p50_ms_batch32: float | None
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class OptimizeResult:
    package: Path
    selected: str
    candidates: list[Candidate]


def select(candidates: list[Candidate], *, budget: float) -> tuple[str, list[Candidate]]:
    """The fastest candidate within ``budget`` that is no slower than torch at either batch size.

    Returns the chosen backend and the candidates with their verdicts filled in.
    """
    base = next(c for c in candidates if c.backend == "torch")
    judged, best, best_cost = [], "torch", 1.0
    for c in candidates:
        if c.backend == "torch":
            judged.append(Candidate(**{**c.to_dict(), "verdict": "baseline"}))
            continue
        if c.p50_ms_batch1 is None or c.drop is None or c.p50_ms_batch32 is None:
            judged.append(c)  # it could not be built; its verdict says why
            continue
        speed = (c.p50_ms_batch1 / base.p50_ms_batch1, c.p50_ms_batch32 / base.p50_ms_batch32)  # type: ignore[operator]
        if c.drop > budget:
            verdict = f"rejected: accuracy drop {c.drop:.4f} > budget {budget:g}"
        elif max(speed) > 1.0:
            verdict = f"rejected: slower than torch ({speed[0]:.2f}x, {speed[1]:.2f}x time)"
        else:
            verdict = f"within budget, {1 / speed[0]:.2f}x / {1 / speed[1]:.2f}x faster"
            cost = (speed[0] * speed[1]) ** 0.5
            if cost < best_cost:
                best, best_cost = c.backend, cost
        judged.append(Candidate(**{**c.to_dict(), "verdict": verdict}))
    return best, judged


def optimize_package(
    package: str | Path,
    output: str | Path,
    *,
    target: str = "cpu",
    max_accuracy_drop: float = 0.01,
    seconds: float = 1.0,
    threads: int | None = None,
    overwrite: bool = False,
) -> OptimizeResult:
    """Write to ``output`` a copy of ``package`` holding the variants built for ``target`` and naming the
    chosen one as its serving backend (``seekforge.load`` then uses it); ``overwrite`` replaces an existing
    ``output`` (never the package itself).

    ``cpu`` builds every variant (and measures a model over images channels-last beside its own NCHW);
    ``edge`` the INT8 graphs a small device's runtime takes (onnxruntime's and OpenVINO's; TFLite's where its
    converter installs, else its verdict says why), measured here against the package's own model.

    Raises:
        ConfigError: An unknown target, or one whose toolchain is not installed here.
        PackageError: The package does not verify.
    """
    if target not in TARGETS:
        raise ConfigError(f"--target must be one of {', '.join(TARGETS)}, got {target!r}")
    if target == "gpu" and not torch.cuda.is_available():
        raise ConfigError(
            "--target gpu needs a CUDA device, and there is none here",
            hint="optimize on the machine that will serve the model",
        )
    if target == "gpu":
        raise ConfigError(
            "--target gpu needs a toolchain that is not installed here (onnxruntime-gpu or TensorRT)",
            hint="use --target cpu, or install the toolchain on the machine that will serve the model",
        )
    source = Path(package).resolve()
    manifest = read_manifest(source)
    output = Path(output)
    inside = output.resolve() == source or source in output.resolve().parents
    if inside or (output.exists() and not overwrite):
        raise PackageError(
            f"--output {output} " + ("is (or lies inside) the package" if inside else "already exists"),
            hint="choose a new folder outside the package" + ("" if inside else ", or pass --force to replace it"),
        )
    with atomic_dir(output, overwrite=overwrite) as tmp:
        # The package's own files only: every variant is built and judged afresh here.
        kept = {name: source / name for name in manifest["files"] if not name.startswith(EXPORT_FOLDERS)}
        fields = carried_fields(manifest, drop=("exports", "serving", "optimize"))
        write_package(tmp, files=kept, manifest=fields, overwrite=True)
        candidates = _measure(tmp, manifest, target=target, budget=max_accuracy_drop, seconds=seconds,
                              threads=threads)  # fmt: skip
        selected, judged = select(candidates, budget=max_accuracy_drop)
        record = {
            "target": target,
            "max_accuracy_drop": max_accuracy_drop,
            "selected": selected,
            "candidates": [c.to_dict() for c in judged],
            "hardware": hardware().to_dict(),  # latency and int8 accuracy depend on the CPU
        }
        lineage = {**manifest["lineage"], "parent": str(source)}
        add_to_package(
            tmp, files={}, manifest={"optimize": record, "serving": {"backend": selected}, "lineage": lineage}
        )
    return OptimizeResult(output, selected, judged)


def _measure(
    package: Path, manifest: dict[str, Any], *, target: str, budget: float, seconds: float, threads: int | None
) -> list[Candidate]:
    from seekforge.export._convert import check_target
    from seekforge.export._package import export_base, export_package
    from seekforge.models import build_model, for_backend, infer
    from seekforge.train import Tensors, headline_metric

    samples = Tensors.load(package / "samples.safetensors")
    wanted = CPU_CANDIDATES if target == "cpu" else EDGE_CANDIDATES
    torch_backends = [b for b in wanted if b in TORCH_BACKENDS and b in available_backends(manifest)]
    metrics: dict[str, float] = {}
    for backend in torch_backends:  # the package's own model, in each memory order it can run in
        logits = infer(for_backend(build_model(package), backend), samples.inputs)
        metrics[backend] = headline_metric(logits, samples.target, task=manifest["task"])[1]
    base = metrics["torch"]
    failures: dict[str, str] = {}
    if target == "edge":  # converters this machine may lack: each said as its candidate's verdict
        for backend, converter in EDGE_CONVERTED.items():
            try:
                check_target(converter)
            except ConfigError as exc:
                failures[backend] = f"not built: {exc.message}"
    builds = {backend: config for backend, config in wanted.items() if config is not None}
    with tempfile.TemporaryDirectory() as scratch, make_progress(transient=True) as progress:
        task = progress.add_task("optimize", total=len(builds) + 1, status="exporting the fp32 graph")
        fp32 = Path(scratch) / "fp32.onnx"
        base_onnx: Path | None = fp32
        try:
            export_base(package, fp32, opset=ExportConfig().opset)
        except SeekforgeError:
            base_onnx = None  # each variant then exports on its own and fails with the exporter's message
        progress.advance(task)
        for backend, config in builds.items():
            progress.update(task, status=f"building {backend}")
            if config.precision != "fp32":  # the budget, not the default gate, judges a lossy variant's accuracy
                limits = ParityConfig(max_abs_diff=None, min_agreement=0.0, max_metric_drop=budget)
                config = ExportConfig.model_validate({**config.model_dump(), "parity": limits.model_dump()})
            try:
                metrics[backend] = export_package(package, config, base=base_onnx).parity.candidate_metric
            except SeekforgeError as exc:  # a variant that cannot be built, or fails its gate, is not a candidate
                failures[backend] = f"not built: {exc.message}"
            progress.advance(task)
    rows = bench_package(package, backends=list(metrics), batches=(1, 32), seconds=seconds, threads=threads)
    latency = {(r.backend, r.batch): r.p50_ms for r in rows}
    return [
        Candidate(backend, None, None, None, None, failures[backend])
        if backend in failures
        else Candidate(
            backend, metrics[backend], base - metrics[backend], latency[(backend, 1)], latency[(backend, 32)], ""
        )
        for backend in [*torch_backends, *builds, *(b for b in failures if b not in builds)]
    ]
