"""``seekforge federate RECIPE``: the recipe's model trained on Flower's simulation runtime, one virtual
site per partition of the training rows, then packaged as any run is.

The sites are carved from the recipe's training split (:func:`partition`); each holds out a share of its
rows to measure the global model on. The server sees no data source: it pools the sites' statistics into
the preprocessor and aggregates their weights. When the rounds are done, the package is built from the
last round's global weights, measured on the recipe's test split (the central held-out rows), with
calibration rows and the drift reference from its validation split (the test split where it has none):
rows the sites never held. Its lineage names the rounds, the sites and their rows, and the strategy;
report.html shows each round's figures per site.

The simulation runs through ``flwr.simulation.run_simulation``, which Flower 1.42 marks deprecated in
favour of ``flwr run`` on a packaged app: it is kept here because it takes the ServerApp and ClientApp as
objects, so the server's is built with no data source at all and each virtual site's with its own rows
(a packaged app's run config is shared by the server and every site). Its deprecation notice is not shown.
"""

from __future__ import annotations

import json
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from seekforge.build import Built, Prepared, finish, write_trained
from seekforge.core import report as r
from seekforge.core.deps import require
from seekforge.core.errors import ConfigError, DataError
from seekforge.core.hardware import hardware
from seekforge.core.io import work_folder, write_text_atomic
from seekforge.core.progress import console, labelled, progress_task
from seekforge.data import Preprocessor, load_splits
from seekforge.federate._partition import partition
from seekforge.federate._site import (
    CHECKPOINT,
    ROUNDS,
    Site,
    cut_to_round,
    encode_rows,
    global_model,
    kept_round,
    load_floats,
    load_site,
    measure,
    read_checkpoint,
    server_recipe,
    write_sites,
)
from seekforge.federate.config import FederatedConfig
from seekforge.monitor import build_reference
from seekforge.recipe import Recipe
from seekforge.train import Tensors, TrainResult

#: where a run keeps the federation's own records (rounds, checkpoint, pooled preprocessor)
FOLDER = "federated"
#: in it: each round's global weights measured on the central test rows
CENTRAL = "central.jsonl"


def federate(
    recipe: Recipe,
    *,
    runs_dir: Path | str = "runs",
    resume: bool = False,
    deployment: bool = False,
    on_round: Callable[[dict[str, Any]], None] | None = None,
) -> Built:
    """Train ``recipe`` federated on Flower's simulation runtime (``deployment``: its deployment runtime, a
    SuperLink and a SuperNode per site as processes on this machine) and write its package; ``resume``
    continues the newest unfinished federation of the recipe from its last round.

    Raises:
        ConfigError: The recipe has no ``federated`` section, or an input that cannot be federated.
        DataError: A site problem (one site, a site column with gaps), named.
        MissingDependencyError: Flower's simulation runtime is not installed.
    """
    fed = recipe.federated
    if fed is None:
        raise ConfigError(f"recipe {recipe.name} has no federated section",
                          hint="add federated: {sites: {iid: 3}, rounds: 5}, or train it with seekforge run")  # fmt: skip
    refuse_central_fits(recipe)
    if fed.sites.remote is not None:
        raise ConfigError(f"federated.sites.remote: {', '.join(fed.sites.remote)} are sites on their own machines; "
                          "federate carves its sites from the recipe's rows",
                          hint="run seekforge federate server RECIPE here and seekforge federate site RECIPE --site NAME "
                               "at each site")  # fmt: skip
    require("flwr", purpose="federated training", extra="federated")
    if not deployment:
        require("ray", purpose="Flower's simulation runtime", extra="federated")
    inputs = [f.name for f in recipe.features.inputs]
    keep = [fed.sites.by] if fed.sites.by is not None and fed.sites.by not in inputs else []
    splits = load_splits(recipe.data, recipe.features, recipe.seed, keep=keep)  # (the site column rides along)
    sites = partition(splits.train, fed.sites, label=recipe.features.output.name, seed=recipe.seed,
                      classes=recipe.task == "classification")  # fmt: skip
    folder = federation_folder(recipe, runs_dir, resume)
    output = folder / FOLDER
    started = time.perf_counter()
    with rounds_shown(fed, on_round, CentralTest(recipe, output, splits.test)) as round_done:
        if deployment:
            from seekforge.federate._deploy import deploy

            deploy(recipe, sites, output, round_done)
        else:
            _simulate(recipe, sites, output, round_done)
    seconds = time.perf_counter() - started
    return package(recipe, folder, splits=splits, sites={n: len(s) for n, s in sites.items()}, seconds=seconds)


def federation_folder(recipe: Recipe, runs_dir: Path | str, resume: bool) -> Path:
    """The run folder of a federation of ``recipe`` (``resume``: its newest unfinished one), with the recipe
    in it and the federation's own folder (FOLDER) made."""
    folder = work_folder(Path(runs_dir) / recipe.name, resume=resume,
                         resumable=lambda d: (d / FOLDER).is_dir() and not (d / "package").is_dir())  # fmt: skip
    write_text_atomic(folder / "recipe.yaml", recipe.to_yaml())
    (folder / FOLDER).mkdir(exist_ok=True)
    return folder


class CentralTest:
    """Each round's global weights measured on the central test rows by the process that holds them (the
    one that runs the federation; never the ServerApp, which holds no rows), a line per round in
    ``central.jsonl`` beside the rounds."""

    def __init__(self, recipe: Recipe, output: Path, rows: pd.DataFrame) -> None:
        self.recipe, self.output, self.rows = recipe, output, rows
        self._encoded: tuple[str, Preprocessor, Tensors] | None = None
        cut_to_round(output / CENTRAL, kept_round(output / CHECKPOINT))  # (a resume measures the rounds after)

    def __call__(self, round_: int) -> dict[str, float]:
        """The figures of ``round_``'s weights (none when they are not the ones kept: the server moved on)."""
        text = (self.output / "setup" / "preprocessor.json").read_text(encoding="utf-8")
        if self._encoded is None or self._encoded[0] != text:
            pre = Preprocessor.from_dict(json.loads(text))
            self._encoded = (text, pre, encode_rows(pre, self.rows))
        kept, weights, _ = read_checkpoint(self.output / CHECKPOINT)
        if kept != round_:
            return {}
        figures = measure(self.recipe, self._encoded[1], weights, self._encoded[2])
        with (self.output / CENTRAL).open("a", encoding="utf-8") as out:
            out.write(json.dumps({"round": round_, **figures}) + "\n")
        return figures


@contextmanager
def rounds_shown(fed: FederatedConfig, on_round: Callable[[dict[str, Any]], None] | None,
                 central: CentralTest) -> Iterator[Callable[[dict[str, Any]], None]]:  # fmt: skip
    """A progress bar over the rounds; yields what each round's record is given to: the round measured on
    the central test rows (``central``, into the record's ``central``), a line on the console (the sites'
    mean held-out figures, the central ones), the bar moved, then ``on_round``."""
    where = "held-out" if fed.validation > 0 else "training-row"  # what the sites measure the global model on
    with progress_task("federated rounds", total=fed.rounds) as advance:
        seen = 0

        def round_done(record: dict[str, Any]) -> None:
            nonlocal seen
            record["central"] = central(record["round"])
            held = record.get("evaluate_mean", {})
            figures = "  ".join(f"{k} {v:.4f}" for k, v in held.items() if k != "num-examples")
            test = "  ".join(f"{k} {v:.4f}" for k, v in record["central"].items() if k in ("accuracy", "rmse"))
            console.print(labelled(f"round {record['round']}/{fed.rounds}  sites {len(record['evaluate'])}  {where} "
                                   f"{figures}" + (f"  | central test {test}" if test else "")),
                          highlight=False, markup=False)  # fmt: skip
            advance(record["round"] - seen, status=f"round {record['round']}")
            seen = record["round"]
            if on_round is not None:
                on_round(record)

        yield round_done


def refuse_central_fits(recipe: Recipe) -> None:
    """Refuse what is fitted on one table of rows, where a federation's sites keep theirs apart: data.clean,
    data.balance, a transformer's ``vocabulary: training`` (its token table cut to the training texts' tokens).

    Raises:
        ConfigError: The recipe asks for one of them.
    """
    if recipe.data.clean is not None or recipe.data.balance is not None:
        raise ConfigError("data.clean and data.balance work on one table; federated sites keep their rows apart "
                          "(SMOTE would interpolate between two sites' rows)",
                          hint="clean and balance each site's rows where they are, then remove these sections")  # fmt: skip
    if getattr(recipe.model, "vocabulary", "all") == "training":
        raise ConfigError("model.vocabulary: training cuts the token table to the tokens of one table of training "
                          "texts; federated sites keep their texts apart",
                          hint="federate with vocabulary: all (the pretrained table, every token)")  # fmt: skip


def _simulate(recipe: Recipe, sites: dict[str, Any], output: Path,
              on_round: Callable[[dict[str, Any]], None] | None) -> None:  # fmt: skip
    from flwr.simulation import run_simulation

    from seekforge.federate._apps import Plan, client_app, server_app

    fed = recipe.federated
    assert fed is not None
    names = list(sites)
    files = write_sites(sites, output / "sites")  # each virtual site reads its own file, once per worker
    recipe_yaml = recipe.to_yaml()

    def site_of(context: Any) -> Site:  # a virtual node's partition is its site
        name, data, work = files[int(context.node_config["partition-id"])]
        return load_site(name, str(data), str(work), recipe_yaml)

    cores = hardware().cores
    parallel = max(1, min(len(names), cores))
    plan = Plan(server_recipe(recipe), fed, len(names), output, on_round)
    with _flower_quiet():
        run_simulation(
            server_app=server_app(plan),
            client_app=client_app(site_of, privacy=fed.privacy is not None, threads=max(1, cores // parallel)),
            num_supernodes=len(names),
            backend_config={
                "client_resources": {"num_cpus": max(1, cores // parallel), "num_gpus": 0.0},
                "init_args": {"num_cpus": cores, "include_dashboard": False},
            },
        )
    if not (output / "setup" / "preprocessor.json").is_file():
        raise DataError("the federation ended before its sites' statistics were pooled; Flower's log says why")


@contextmanager
def _flower_quiet() -> Iterator[None]:
    """Flower and Ray log every message at INFO; seekforge shows the rounds itself."""
    import os

    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    loggers = [logging.getLogger(n) for n in ("flwr", "ray")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:  # run_simulation's deprecation notice among them: see the module's docstring
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():  # Ray's tip that it will stop hiding GPUs from a num_gpus=0 worker
            warnings.filterwarnings("ignore", message="Tip: In future versions of Ray", category=FutureWarning)
            yield  # (it still hides them: a simulated site asks for no GPU and trains on the CPU)
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def package(recipe: Recipe, folder: Path, *, splits: Any, sites: dict[str, int], seconds: float = 0.0) -> Built:
    """The package of a finished federation in ``folder``: its last global weights measured on the
    recipe's test split."""

    fed = recipe.federated
    assert fed is not None
    output = folder / FOLDER
    pre = Preprocessor.from_dict(json.loads((output / "setup" / "preprocessor.json").read_text(encoding="utf-8")))
    rounds = [json.loads(line) for line in (output / ROUNDS).read_text(encoding="utf-8").splitlines() if line]
    tested = output / CENTRAL
    lines = tested.read_text(encoding="utf-8").splitlines() if tested.is_file() else []
    central_by_round = {r["round"]: r for r in map(json.loads, lines)}
    for entry in rounds:
        entry["central"] = {k: v for k, v in central_by_round.get(entry["round"], {}).items() if k != "round"}
    if [entry["round"] for entry in rounds] != list(range(1, fed.rounds + 1)):
        raise DataError(f"{output}: {len(rounds)} of {fed.rounds} rounds were recorded",
                        hint="resume it: seekforge federate RECIPE --resume")  # fmt: skip
    model = global_model(recipe, pre)
    load_floats(model, read_checkpoint(output / CHECKPOINT)[1])
    central = splits.validation if len(splits.validation) else splits.test
    history = [_epoch(entry) for entry in rounds]
    result = TrainResult(history=history, best_epoch=len(rounds), steps=0, stopped_early=False,
                         seconds=seconds, notes=["federated: the last round's global weights are kept"])  # fmt: skip
    io = recipe.model.prepare_io(pre.model_io())
    write_trained(folder / "trained", model, recipe.model, io, result)
    held = encode_rows(pre, central)  # (calibration and reference rows, the validation split: the same rows)
    prepared = Prepared(
        preprocessor=pre, splits={"train": held, "validation": held, "test": encode_rows(pre, splits.test)},
        data_hash=splits.data_hash, reference=build_reference(central, pre), key="federated",
    )  # fmt: skip
    strategy = fed.strategy.model_dump(mode="json")
    lineage = {"data_hash": splits.data_hash, "recipe_hash": recipe.fingerprint(), "parent": None,
               "seed": recipe.seed, "federated": {"rounds": fed.rounds, "sites": sites, "partition": fed.sites.kind,
               "strategy": strategy, "local_epochs": fed.local_epochs, "fraction_fit": fed.fraction_fit,
               "privacy": fed.privacy.model_dump() if fed.privacy else None}}  # fmt: skip
    data = {"rows": {"train": sum(sites.values()), "validation": len(splits.validation), "test": len(splits.test)},
            "sites": sites}  # fmt: skip
    return finish(recipe, prepared, folder, extra={"lineage": lineage, "data": data},
                  sections=[("Federated", _section(rounds, sites, "held-out" if fed.validation > 0 else "training"))])  # fmt: skip


def _epoch(entry: dict[str, Any]) -> dict[str, Any]:
    """A round as the report's training curves read an epoch."""
    train, held = entry.get("train_mean", {}), entry.get("evaluate_mean", {})
    record: dict[str, Any] = {"epoch": entry["round"], "train_loss": train.get("train_loss", math.nan),
                              "val_loss": held.get("loss", math.nan)}  # fmt: skip
    record |= {f"val_{k}": v for k, v in held.items() if k not in ("loss", "num-examples")}
    return record


def _section(rounds: list[dict[str, Any]], sites: dict[str, int], where: str) -> str:
    names = list(sites)
    metric = next((k for k in ("accuracy", "r2", "rmse") if k in rounds[-1]["evaluate_mean"]), "loss")
    series = {name: [e["evaluate"].get(name, {}).get(metric, float("nan")) for e in rounds] for name in names}
    series["all sites (by rows)"] = [e["evaluate_mean"].get(metric, float("nan")) for e in rounds]
    series["central test rows"] = [e["central"].get(metric, float("nan")) for e in rounds]
    table = [(e["round"], *(_figure(e, n, metric) for n in names), _number(e["evaluate_mean"].get(metric)),
              _number(e["central"].get(metric))) for e in rounds]  # fmt: skip
    return (r.table([(n, rows) for n, rows in sites.items()], ["site", "training rows"])
            + r.line_chart(series, title=f"{metric} per site ({where} rows) and on the central test rows",
                           x_label="round")
            + r.table(table, ["round", *names, "all sites", "central test"]))  # fmt: skip


def _figure(entry: dict[str, Any], site: str, metric: str) -> str:
    held = entry["evaluate"].get(site, {}).get(metric)
    trained = entry.get("train", {}).get(site, {}).get("train_loss")
    return f"{_number(held)} (train loss {_number(trained)})" if trained is not None else _number(held)


def _number(value: Any) -> str:
    return "–" if value is None or (isinstance(value, float) and np.isnan(value)) else f"{value:.4f}"
