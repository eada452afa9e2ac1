"""``seekforge federate server RECIPE``: the federation's server for sites on their own machines. It starts
a SuperLink that listens for them over TLS and admits only the nodes whose public keys it registers (one
per site the recipe's ``federated.sites.remote`` names, from ``--keys``), runs the rounds as Flower's
deployment runtime does, and packages the last round's weights.

The server holds no site's rows. It measures the package on the rows it does hold, the recipe's
``data.test`` (central held-out rows, labelled), which also give the package its calibration rows and its
drift reference; the preprocessing is pooled from the sites' statistics; the sites' own held-out figures
are in the report, round by round. ``data.source`` is not read here: it is where each site's rows are on
its own machine (``federate site`` reads them there unless given ``--data``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from seekforge.build import Built
from seekforge.core.deps import require
from seekforge.core.errors import ConfigError
from seekforge.core.progress import console, labelled
from seekforge.data import Splits, check_table, frame_fingerprint
from seekforge.federate._deploy import run_superlink
from seekforge.federate._run import (
    FOLDER,
    CentralTest,
    federation_folder,
    package,
    refuse_central_fits,
    rounds_shown,
)
from seekforge.federate._site import site_rows
from seekforge.recipe import Recipe


def serve_federation(
    recipe: Recipe,
    *,
    keys: Path,
    host: str = "0.0.0.0",
    port: int = 9092,
    names: Sequence[str] = (),
    connect_s: float = 600.0,
    runs_dir: Path | str = "runs",
    resume: bool = False,
    on_round: Callable[[dict[str, Any]], None] | None = None,
) -> Built:
    """Serve the federation of the recipe's remote sites on ``host``:``port`` until its last round, then
    write its package; ``keys`` holds each site's public key (``SITE.pub``); ``names``: the host names or
    addresses the sites reach this machine by (its TLS certificate names them); ``connect_s``: how long
    the sites may take to connect; ``resume`` continues the newest unfinished federation of the recipe.

    Raises:
        ConfigError: The recipe names no remote sites or no ``data.test``, or a site's public key is missing.
        DataError: The central rows do not fit the recipe (named), a site did not connect in time, or the
            federation failed.
        MissingDependencyError: Flower is not installed.
    """
    fed = recipe.federated
    if fed is None or fed.sites.remote is None:
        raise ConfigError(f"recipe {recipe.name}: federate server needs federated.sites.remote, the names of the "
                          "sites that join from their own machines",
                          hint="federated: {sites: {remote: [north, south]}, rounds: 10}")  # fmt: skip
    if recipe.data.test is None:
        raise ConfigError("federate server measures the package on rows it holds: data.test is not set",
                          hint="set data.test to a labelled table of held-out rows (no site's rows); "
                               "data.source is where each site keeps its own")  # fmt: skip
    refuse_central_fits(recipe)
    public = {site: keys / f"{site}.pub" for site in fed.sites.remote}
    missing = [str(path) for path in public.values() if not path.is_file()]
    if missing:
        raise ConfigError(f"--keys {keys}: no public key for {len(missing)} site(s): {', '.join(missing)}",
                          hint="each site makes its pair with seekforge federate keys --site NAME and sends NAME.pub "
                               "here; the .key stays at the site")  # fmt: skip
    require("flwr", purpose="federated training", extra="federated")
    central = central_rows(recipe)
    folder = federation_folder(recipe, runs_dir, resume)
    output = folder / FOLDER

    def waiting(address: str, ca: Path, named: list[str]) -> None:
        console.print(labelled(f"waiting up to {connect_s:.0f} s for {len(public)} sites at {address} (its "
                               f"certificate names {', '.join(named)}); each runs: seekforge federate site RECIPE "
                               f"--site NAME --superlink HOST:{port} --ca ca.pem --key NAME.key   (ca.pem: {ca})"),
                      highlight=False, markup=False)  # fmt: skip

    started = time.perf_counter()
    with rounds_shown(fed, on_round, CentralTest(recipe, output, central)) as round_done:
        run_superlink(recipe, output, public, host=host, port=port, names=names, connect_s=connect_s,
                      on_round=round_done, waiting=waiting)  # fmt: skip
    seconds = time.perf_counter() - started
    sites = json.loads((output / "setup" / "sites.json").read_text(encoding="utf-8"))
    none = central.iloc[:0]
    splits = Splits(train=none, validation=none, test=central, data_hash=frame_fingerprint(central))
    return package(recipe, folder, splits=splits, sites={name: s["rows"] for name, s in sites.items()},
                   seconds=seconds)  # fmt: skip


def central_rows(recipe: Recipe) -> Any:
    """The server's own held-out rows (``data.test``), checked against the recipe's features, with their
    derived inputs.

    Raises:
        DataError: The file cannot be read, or a row does not fit the features (named).
    """
    assert recipe.data.test is not None
    return check_table(site_rows(recipe, Path(recipe.data.test)), recipe.features)
