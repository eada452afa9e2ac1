"""Where a study lives and how it draws: Optuna's journal file or RDB storage, the study's name, its
pruner and its seeded sampler."""

from __future__ import annotations

import json
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from seekforge.core.deps import require
from seekforge.core.errors import ConfigError
from seekforge.recipe import Recipe, load_recipe
from seekforge.tune.config import Ends, apply, draw, metric_of


def study_name(recipe: Recipe) -> str:
    """The study's name in its storage: the recipe's name and a hash of what is searched and how, so
    studies of other recipes or spaces in one database never merge."""
    import hashlib

    assert recipe.tune is not None
    space = {k: v for k, v in recipe.to_dict().items() if k != "tune"}
    # checks_per_epoch only when set: studies made before it existed keep their names (and resume)
    unnamed = {"trials", "workers", "timeout", "storage"} | (
        {"checks_per_epoch"} if recipe.tune.checks_per_epoch == 1 else set()
    )
    space["tune"] = recipe.tune.model_dump(mode="json", exclude=unnamed)
    digest = hashlib.sha256(json.dumps(space, sort_keys=True).encode()).hexdigest()[:12]
    return f"{recipe.name}-{digest}"


def open_study(recipe: Recipe, study_dir: Path, storage: str | None = None, *, worker: int = 0) -> Any:
    """The study in ``storage`` (an RDB URL) or in the study folder's journal; created when new.

    The sampler's seed comes from the recipe's seed, the worker's number and the trials the study already
    holds: a new study draws the same trials every time, while a second worker, or a resumed study, draws
    new ones rather than repeating the first worker's sequence."""
    optuna = require("optuna", purpose="Hyperparameter search")
    tune = recipe.tune
    assert tune is not None
    if storage is None and tune.storage is None:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend, JournalFileOpenLock

        path = str(study_dir / "study.journal")
        backend = JournalStorage(JournalFileBackend(path, lock_obj=JournalFileOpenLock(path)))
    else:
        backend = _rdb_storage(optuna, _rdb_url(storage or tune.storage or ""))
    direction = metric_of(recipe)[1]
    directions = [direction, *["minimize"] * len(tune.objectives)]
    pruner = _pruner(optuna, tune.pruner, _most_epochs(recipe) * tune.checks_per_epoch)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        storage=backend, study_name=study_name(recipe), pruner=pruner, directions=directions, load_if_exists=True
    )
    names = [metric_of(recipe)[0], *tune.objectives]
    if study.metric_names is None:  # optuna-dashboard and study.trials_dataframe() show these names
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names(names)
    held = len(study.get_trials(deepcopy=False))
    seed = int(np.random.SeedSequence([recipe.seed, worker, held]).generate_state(1)[0])
    study.sampler = _sampler(optuna, tune.sampler, seed, multi=len(directions) > 1)
    return study


def _most_epochs(recipe: Recipe) -> int:
    """The most epochs a trial of the study can train (``train.epochs`` may itself be searched)."""
    tune = recipe.tune
    assert tune is not None
    base = recipe.trial_base()
    models = range(len(tune.models)) if tune.models else [None]
    return max(
        load_recipe(apply(base, draw(Ends(high, m), tune))).train.epochs for m in models for high in (False, True)
    )


def _rdb_storage(optuna: Any, url: str, attempts: int = 5) -> Any:
    """Optuna's RDB storage. Hosts starting at once race to create its tables and types; the loser tries
    again (a database that cannot be reached fails after the last attempt)."""
    from sqlalchemy.exc import SQLAlchemyError

    for attempt in range(attempts):
        try:
            return optuna.storages.RDBStorage(url)
        except SQLAlchemyError as exc:
            if attempt == attempts - 1:
                raise ConfigError(f"--storage: cannot open the study database ({str(exc).splitlines()[0]})") from None
            time.sleep(0.2 + attempt * 0.3)
    raise AssertionError("unreachable")


def _rdb_url(url: str) -> str:
    """``postgresql://`` through psycopg 3 when psycopg2 (SQLAlchemy's default driver) is not installed."""
    import importlib.util

    if url.startswith("postgresql://") and importlib.util.find_spec("psycopg2") is None:
        if importlib.util.find_spec("psycopg") is None:
            raise ConfigError(
                "a PostgreSQL storage needs a driver, and neither psycopg nor psycopg2 is installed",
                hint='run: pip install "psycopg[binary]"',
            )
        return "postgresql+psycopg://" + url.removeprefix("postgresql://")
    return url


def _pruner(optuna: Any, name: str, most_checks: int) -> Any:
    """The pruner ``name``; validation checks (epochs, unless ``tune.checks_per_epoch`` is more than 1)
    are its resource, from one up to ``most_checks``."""
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=most_checks)
    if name == "successive_halving":  # Hyperband's most aggressive bracket alone (ASHA)
        return optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3)
    if name == "median":
        return optuna.pruners.MedianPruner(n_startup_trials=5, n_warmup_steps=1)
    return optuna.pruners.NopPruner()


def _sampler(optuna: Any, name: str, seed: int, *, multi: bool) -> Any:
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "gp":
        return optuna.samplers.GPSampler(seed=seed)
    import warnings

    with warnings.catch_warnings():  # multivariate TPE's grouping of conditional parameters is "experimental"
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=not multi, group=not multi)
