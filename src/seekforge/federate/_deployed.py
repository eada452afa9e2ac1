"""The ServerApp and ClientApps a Flower deployment loads: the app folder seekforge writes for a run names
them (``seekforge.federate._deployed:server`` and ``:client`` or ``:private_client``).

The server reads its plan from the run config: the recipe without its data source, the node registered
for each site, how long they may take to connect, and where its records go. Each SuperNode is one site: its node config names the site and its own rows
(``site``, ``data``), which never leave it. Flower imports this module in the processes it starts.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from seekforge.core.io import write_text_atomic
from seekforge.federate._apps import Plan, client_app, federation
from seekforge.federate._deploy import FAILED, FINISHED
from seekforge.federate._site import Site, load_site
from seekforge.recipe import Recipe

try:
    from flwr.app import Context
    from flwr.serverapp import Grid, ServerApp
except ImportError as exc:  # pragma: no cover - only Flower's own processes import this module
    raise ImportError(f"seekforge.federate needs Flower: {exc}") from exc


def _recipe(run_config: Any) -> Recipe:
    return Recipe.model_validate(yaml.safe_load(str(run_config["recipe"])))


server = ServerApp()


@server.main()
def _main(grid: Grid, context: Context) -> None:
    recipe = _recipe(context.run_config)
    assert recipe.federated is not None
    output = Path(str(context.run_config["output"]))
    nodes = {int(n): site for n, site in json.loads(str(context.run_config["nodes"])).items()}
    plan = Plan(
        recipe, recipe.federated, len(nodes), output, nodes=nodes, connect_s=float(context.run_config["connect-s"])
    )
    try:
        federation(grid, plan)
    except Exception as exc:  # said to the orchestrator waiting for the rounds, then Flower's own handling
        write_text_atomic(output / FAILED, json.dumps({"error": f"{type(exc).__name__}: {exc}"}))
        raise
    write_text_atomic(output / FINISHED, json.dumps({"rounds": recipe.federated.rounds}))


def _site_of(context: Context) -> Site:
    """This node's site: its name and its own rows from its node config, read once per process."""
    node = context.node_config
    return load_site(str(node["site"]), str(node["data"]), str(node.get("work", Path(str(node["data"])).parent / "work")),
                     str(context.run_config["recipe"]))  # fmt: skip


client = client_app(_site_of, privacy=False)
private_client = client_app(_site_of, privacy=True)
