"""The training rows as sites, by Flower Datasets' partitioners: a column naming each row's site
(``NaturalIdPartitioner``), IID shards of the shuffled rows (``IidPartitioner``), or label skew drawn
from a Dirichlet distribution (``DirichletPartitioner``). In a simulation the sites are carved from one
table; in a deployment each site reads its own rows."""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any

import numpy as np
import pandas as pd

from seekforge.core.deps import require
from seekforge.core.errors import ConfigError, DataError
from seekforge.federate.config import SitesConfig

#: the column the partitioners see each row's position in
_ROW = "__row__"
#: the fewest training rows a site may hold
MIN_ROWS = 10


def partition(frame: pd.DataFrame, sites: SitesConfig, *, label: str, seed: int,
              classes: bool = True) -> dict[str, pd.DataFrame]:  # fmt: skip
    """Each site's rows of ``frame`` (in its order), by site name (the column's values, else ``site-N``);
    ``classes``: the label is a class (else a regression target: no label skew, no class warnings).

    Warns about a site without rows of some class (training goes on).

    Raises:
        ConfigError: The site column is missing or names one site; label skew of a regression target.
        DataError: A Dirichlet draw cannot give every site its minimum rows; a site of fewer than
            MIN_ROWS rows (its sums and counts would all but show them).
    """
    if sites.dirichlet is not None and not classes:
        raise ConfigError("federated.sites.dirichlet skews the sites' classes; a regression target has none",
                          hint="use sites: {iid: N} or {by: COLUMN}")  # fmt: skip
    datasets = require("datasets", purpose="federated partitions", extra="federated")
    partitioners = require("flwr_datasets.partitioner", purpose="federated partitions", extra="federated")
    table: dict[str, Any] = {_ROW: np.arange(len(frame)), "label": frame[label].map(str).to_numpy()}
    if sites.by is not None:
        if sites.by not in frame.columns:
            raise ConfigError(f"federated.sites.by: there is no column {sites.by!r}",
                              hint=f"the columns: {', '.join(map(str, frame.columns))}")  # fmt: skip
        names = frame[sites.by].map(lambda v: "" if pd.isna(v) else str(v))
        if (names == "").any():
            raise DataError(f"federated.sites.by: {int((names == '').sum())} training row(s) name no site in "
                            f"{sites.by!r}", hint="give every row its site")  # fmt: skip
        if names.nunique() < 2:
            raise ConfigError(f"federated.sites.by: every training row's {sites.by!r} is {names.iloc[0]!r}: one site "
                              "is central training", hint="federate over a column naming two or more sites")  # fmt: skip
        table["site"] = names.to_numpy()
        partitioner = partitioners.NaturalIdPartitioner(partition_by="site")
    elif sites.iid is not None:
        partitioner = partitioners.IidPartitioner(num_partitions=sites.iid)
    else:
        assert sites.dirichlet is not None
        spec = sites.dirichlet
        partitioner = partitioners.DirichletPartitioner(
            num_partitions=spec.clients, partition_by="label", alpha=spec.alpha, min_partition_size=spec.min_rows,
            self_balancing=False, shuffle=True, seed=seed,
        )  # fmt: skip
    dataset = datasets.Dataset.from_dict(table)
    partitioner.dataset = dataset.shuffle(seed=seed) if sites.iid is not None else dataset
    out: dict[str, pd.DataFrame] = {}
    try:
        with contextlib.redirect_stderr(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # (its tqdm bars; a Dirichlet draw's retries)
            count = len(set(table["site"])) if sites.by is not None else partitioner.num_partitions
            for number in range(count):
                rows = np.sort(np.asarray(partitioner.load_partition(number)[_ROW], dtype=np.int64))
                name = str(partitioner.partition_id_to_natural_id[number]) if sites.by is not None else f"site-{number}"
                out[name] = frame.iloc[rows]
    except ValueError as exc:  # the Dirichlet draw gave up on its minimum size
        raise DataError(f"federated.sites.dirichlet: {exc}", hint="lower min_rows or clients, or raise alpha") from None
    if sites.by is not None:
        out = dict(sorted(out.items()))
    small = {name: len(rows) for name, rows in out.items() if len(rows) < MIN_ROWS}
    if small:
        raise DataError(f"federated site(s) {', '.join(f'{n} ({c} rows)' for n, c in small.items())} hold fewer than "
                        f"{MIN_ROWS} training rows: their sums and counts would all but show the rows themselves",
                        hint="merge small sites, or use fewer sites")  # fmt: skip
    if classes:
        _warn_missing_classes(out, frame[label], label)
    return out


def _warn_missing_classes(sites: dict[str, pd.DataFrame], labels: pd.Series, label: str) -> None:
    every = set(labels.map(str))
    for name, rows in sites.items():
        missing = sorted(every - set(rows[label].map(str)))
        if missing:
            warnings.warn(f"federated site {name} has no training rows of class(es) {', '.join(missing)} "
                          f"of '{label}'; it trains on the others", RuntimeWarning, stacklevel=3)  # fmt: skip
