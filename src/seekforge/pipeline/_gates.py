"""``seekforge pipeline``: validate -> train -> gates -> register -> promote. A failing gate stops it
before promotion, with the reason; the champion stays where it is."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from seekforge.core.package import add_to_package, read_manifest
from seekforge.pipeline._run import RunResult, run
from seekforge.recipe import Recipe, load_recipe
from seekforge.registry import DEFAULT, Registry


@dataclass(frozen=True)
class PipelineResult:
    """The run, each gate's result, and what the registry now says."""

    run: RunResult
    gates: dict[str, dict[str, Any]]
    name: str
    version: int
    promoted: bool
    alias: str

    @property
    def passed(self) -> bool:
        return all(g["passed"] for g in self.gates.values())

    def to_dict(self) -> dict[str, Any]:
        return {"run_dir": self.run.run_dir, "package": self.run.package, "metrics": self.run.metrics,
                "gates": self.gates, "passed": self.passed, "name": self.name, "version": self.version,
                "promoted": self.promoted, "alias": self.alias}  # fmt: skip


def pipeline(
    recipe: str | Path | Recipe | dict[str, Any],
    *,
    overrides: Iterable[str] = (),
    runs_dir: str | Path = "runs",
    registry: str | Path = DEFAULT,
    alias: str = "champion",
    promote: bool = True,
) -> PipelineResult:
    """Train the recipe, check its ``gates:``, register the package and, when every gate passed, point
    ``alias`` at it.

    Raises:
        ConfigError: An invalid recipe (before any work).
        RegistryUnavailable: The registry cannot be opened (before training).
    """
    resolved = load_recipe(recipe, overrides=overrides)
    store = Registry(registry)  # an unreachable registry is found before the training, not after
    result = run(resolved, runs_dir=runs_dir)
    gates = check_gates(resolved, result, store, alias)
    add_to_package(result.package, files={}, manifest={"gates": gates})
    version = store.register(result.package)
    passed = all(g["passed"] for g in gates.values())
    if passed and promote:
        store.promote(resolved.name, version, alias=alias, note="seekforge pipeline: every gate passed")
    return PipelineResult(result, gates, resolved.name, version, passed and promote, alias)


def check_gates(recipe: Recipe, result: RunResult, store: Registry, alias: str) -> dict[str, dict[str, Any]]:
    """Each gate of the recipe's ``gates:`` section: ``passed``, the value and limit, and why it failed."""
    gates = recipe.gates
    if gates is None:
        return {}
    metrics = result.metrics
    found: dict[str, dict[str, Any]] = {}
    for side, name in (("min", "at least"), ("max", "at most")):
        for metric, limit in getattr(gates, side).items():
            value = float(metrics[metric])
            ok = value >= limit if side == "min" else value <= limit
            found[f"{side}:{metric}"] = _gate(
                ok, value, limit, f"{metric} is {value:.4g}; the gate wants {name} {limit:g}"
            )
    if gates.fairness and recipe.fairness is not None:
        verdict = read_manifest(result.package)["fairness"]["gate"]
        found["fairness"] = {"passed": verdict["passed"], "reasons": verdict["reasons"]}
    if gates.vs_champion is not None:
        found["vs_champion"] = _vs_champion(recipe, metrics, store, alias, gates.vs_champion.max_drop)
    if gates.parity:
        found["parity"] = _parity(result.package)
    if gates.latency is not None:
        from seekforge.export import bench_package

        (row,) = bench_package(result.package, backends=["torch"], batches=[gates.latency.batch], seconds=1.0, rounds=2)
        found["latency"] = _gate(row.p99_ms <= gates.latency.p99_ms, row.p99_ms, gates.latency.p99_ms,
                                 f"p99 at batch {gates.latency.batch} is {row.p99_ms:.3g} ms; the gate allows "
                                 f"{gates.latency.p99_ms:g} ms")  # fmt: skip
    return found


def _parity(package: Path) -> dict[str, Any]:
    """The fp32 ONNX export's parity record (exported now when the package has none): its largest
    difference from the torch model, its agreement, and what broke a limit."""
    from seekforge.core.errors import SeekforgeError
    from seekforge.export import export_package

    exports = read_manifest(package).get("exports", {})
    if "onnx" not in exports:
        try:
            export_package(package)
        except SeekforgeError as exc:  # it could not be exported, or failed the gate (and was not written)
            return {"passed": False, "value": None, "limit": None, "reasons": [exc.message]}
        exports = read_manifest(package)["exports"]
    record, limits = exports["onnx"]["parity"], exports["onnx"].get("limits", {})
    return {"passed": bool(record["passed"]), "value": record["max_abs_diff"], "limit": limits.get("max_abs_diff"),
            "agreement": record.get("agreement"), "rows": record.get("rows"), "reasons": list(record["failures"])}  # fmt: skip


def _gate(passed: bool, value: float, limit: float, reason: str) -> dict[str, Any]:
    return {"passed": passed, "value": value, "limit": limit, "reasons": [] if passed else [reason]}


def _vs_champion(
    recipe: Recipe, metrics: dict[str, Any], store: Registry, alias: str, max_drop: float
) -> dict[str, Any]:
    """The headline metric against the champion's on the run's own test rows."""
    from seekforge.core.errors import ConfigError, SeekforgeError
    from seekforge.data import load_splits
    from seekforge.serve import load

    headline = "r2" if recipe.task == "regression" else "accuracy"
    try:
        champion = store.resolve(f"{recipe.name}@{alias}")
    except ConfigError:  # no such model or alias yet: the first version has nothing to beat
        return {"passed": True, "value": metrics[headline], "limit": None, "reasons": [], "note": f"no {alias} yet"}
    test = load_splits(recipe.data, recipe.features, recipe.seed).test
    try:
        theirs = float(load(champion).evaluate(test)[headline])
    except SeekforgeError as exc:
        return {"passed": False, "value": metrics[headline], "limit": None,
                "reasons": [f"the {alias} ({champion}) cannot be scored on these test rows: {exc.message}"]}  # fmt: skip
    ours = float(metrics[headline])
    return _gate(theirs - ours <= max_drop, ours, theirs - max_drop,
                 f"{headline} {ours:.4f} against the {alias}'s {theirs:.4f} on the same {metrics['rows']} test rows: "
                 f"a drop of {theirs - ours:.4f}, more than max_drop {max_drop:g}")  # fmt: skip
