"""``seekforge federate``: the recipe's model trained across sites that keep their rows (Flower)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from seekforge.cli._common import JsonFlag, Resume, RunsDir, SetOption, out, print_json, print_metrics
from seekforge.core.errors import ConfigError


def federate_cmd(
    recipe: Annotated[Path, typer.Argument(help="Recipe YAML file with a federated: section (or: site RECIPE).")],
    site_recipe: Annotated[
        Path | None, typer.Argument(help="With site: the recipe this site trains.", show_default=False)
    ] = None,
    set_: SetOption = None,
    runs_dir: RunsDir = Path("runs"),
    resume: Resume = False,
    deployment: Annotated[
        bool, typer.Option("--deployment", help="A SuperLink and one SuperNode per site as processes on this machine.")
    ] = False,
    site: Annotated[str | None, typer.Option("--site", help="site: this site's name.")] = None,
    superlink: Annotated[str | None, typer.Option("--superlink", help="site: the SuperLink's host:port.")] = None,
    data: Annotated[Path | None, typer.Option("--data", help="site: this site's own rows (a table file).")] = None,
    port: Annotated[int, typer.Option("--port", help="site: the local port of this SuperNode's runtime.")] = 9094,
    retries: Annotated[int, typer.Option("--retries", min=0, help="site: tries to reach the SuperLink.")] = 10,
    wait: Annotated[float, typer.Option("--wait", min=1, help="site: seconds to keep trying the SuperLink.")] = 120,
    ca: Annotated[
        Path | None,
        typer.Option("--ca", help="site: the federation's CA certificate (PEM): TLS; without it, unencrypted."),
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Train the recipe federated on Flower: its training rows split into sites as federated.sites says,
    each site training on its own rows, the strategy combining their weights round by round; then the
    package, as seekforge run writes one (its lineage names the rounds, sites and strategy). By default on
    Flower's simulation runtime; --deployment runs a SuperLink and a SuperNode per site as processes.

    seekforge federate site RECIPE --site NAME --superlink HOST:PORT --data ROWS joins a SuperLink from a
    site's own machine, its rows read by this node only (retrying an unreachable SuperLink, then exit 2).

    Needs the federated extra, in its own environment (Flower pins protobuf below the serve extra's):
    pip install --constraint constraints-federated.txt ".[federated]".
    """
    from seekforge.recipe import load_recipe

    if str(recipe) == "site" and not recipe.is_file():
        if site_recipe is None or site is None or superlink is None or data is None:
            raise ConfigError("federate site needs the recipe, --site, --superlink and --data",
                              hint="seekforge federate site recipe.yaml --site NAME --superlink HOST:PORT --data rows.csv")  # fmt: skip
        from seekforge.federate import join_site

        join_site(load_recipe(site_recipe, overrides=set_ or []), site, superlink, data, port=port, retries=retries,
                  wait_s=wait, ca=ca)  # fmt: skip
        return
    if site_recipe is not None:
        raise ConfigError(f"federate takes one recipe; {site_recipe} is a second argument",
                          hint="seekforge federate RECIPE, or seekforge federate site RECIPE --site NAME ...")  # fmt: skip
    from seekforge.federate import federate

    built = federate(load_recipe(recipe, overrides=set_ or []), runs_dir=runs_dir, resume=resume, deployment=deployment)
    if as_json:
        print_json({"run_dir": built.run_dir, "package": built.package, "report": built.package / "report.html",
                    "metrics": built.metrics, "rounds": len(built.history)})  # fmt: skip
        return
    print_metrics(
        built.metrics, title=f"test metrics ({built.metrics.get('rows', '?')} rows), after {len(built.history)} rounds"
    )
    out.print(f"package: {built.package}", markup=False)
    out.print(f"report:  {built.package / 'report.html'}", markup=False)
