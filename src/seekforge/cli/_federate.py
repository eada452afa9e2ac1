"""``seekforge federate``: the recipe's model trained across sites that keep their rows (Flower)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from seekforge.cli._common import JsonFlag, Resume, RunsDir, SetOption, out, print_json, print_metrics
from seekforge.core.errors import ConfigError

#: the verbs ``federate`` takes before a recipe: a site's node, the server of remote sites, a site's keys
VERBS = ("site", "server", "keys")
#: the options (of those without a default) that each verb takes (None: federate RECIPE)
OPTIONS = {None: {"--deployment", "--resume"}, "site": {"--site", "--superlink", "--data", "--ca", "--key"},
           "server": {"--keys", "--name", "--resume"}, "keys": {"--site"}}  # fmt: skip


def federate_cmd(
    recipe: Annotated[
        Path, typer.Argument(help="Recipe YAML file with a federated: section (or: site | server RECIPE, or: keys).")
    ],
    verb_recipe: Annotated[
        Path | None, typer.Argument(help="With site or server: the recipe.", show_default=False)
    ] = None,
    set_: SetOption = None,
    runs_dir: RunsDir = Path("runs"),
    resume: Resume = False,
    deployment: Annotated[
        bool, typer.Option("--deployment", help="A SuperLink and one SuperNode per site as processes on this machine.")
    ] = False,
    site: Annotated[str | None, typer.Option("--site", help="site, keys: this site's name.")] = None,
    superlink: Annotated[str | None, typer.Option("--superlink", help="site: the SuperLink's host:port.")] = None,
    data: Annotated[
        Path | None, typer.Option("--data", help="site: this site's own rows (default: the recipe's data.source).")
    ] = None,
    port: Annotated[int, typer.Option("--port", help="site: the local port of this SuperNode's runtime.")] = 9094,
    retries: Annotated[int, typer.Option("--retries", min=0, help="site: tries to reach the SuperLink.")] = 10,
    wait: Annotated[
        float | None,
        typer.Option(
            "--wait",
            min=1,
            help="site: seconds to keep trying the SuperLink (120); server: for the sites to connect (600).",
        ),
    ] = None,
    ca: Annotated[
        Path | None,
        typer.Option("--ca", help="site: the federation's CA certificate (PEM): TLS; without it, unencrypted."),
    ] = None,
    key: Annotated[Path | None, typer.Option("--key", help="site: this site's private key (SITE.key).")] = None,
    keys: Annotated[
        Path | None, typer.Option("--keys", help="server: the folder of the sites' public keys (SITE.pub).")
    ] = None,
    listen: Annotated[str, typer.Option("--listen", help="server: the SuperLink's HOST:PORT.")] = "0.0.0.0:9092",
    name: Annotated[
        list[str] | None,
        typer.Option(
            "--name", help="server: a host name or address the sites reach it by (repeatable; in its TLS certificate)."
        ),
    ] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="keys: where the key pair goes.")] = Path("."),
    as_json: JsonFlag = False,
) -> None:
    """Train the recipe federated on Flower: its training rows split into sites as federated.sites says,
    each site training on its own rows, the strategy combining their weights round by round; then the
    package, as seekforge run writes one (its lineage names the rounds, sites and strategy). By default on
    Flower's simulation runtime; --deployment runs a SuperLink and a SuperNode per site as processes.

    Sites on their own machines (federated.sites.remote): each makes its key pair (seekforge federate keys
    --site NAME) and sends NAME.pub to the server; the server runs seekforge federate server RECIPE --keys
    DIR, which admits only those keys and measures the package on data.test; each site runs seekforge
    federate site RECIPE --site NAME --superlink HOST:PORT --ca ca.pem --key NAME.key, its rows read by its
    own node only (an unreachable SuperLink retried, then exit 2).

    Needs the federated extra, in its own environment (Flower pins protobuf below the serve extra's):
    pip install --constraint constraints-federated.txt ".[federated]".
    """
    from seekforge.recipe import load_recipe

    verb = str(recipe) if str(recipe) in VERBS and not recipe.is_file() else None
    given = {"--deployment": deployment, "--resume": resume, "--site": site is not None, "--superlink": superlink is not None,
             "--data": data is not None, "--ca": ca is not None, "--key": key is not None, "--keys": keys is not None,
             "--name": bool(name)}  # fmt: skip
    stray = [option for option, on in given.items() if on and option not in OPTIONS[verb]]
    if stray:
        raise ConfigError(f"{', '.join(stray)}: not an option of federate {verb or 'RECIPE'}",
                          hint=f"federate {verb or 'RECIPE'} takes {', '.join(sorted(OPTIONS[verb]))}")  # fmt: skip
    if verb == "keys":
        _keys(site, output, verb_recipe, as_json)
        return
    if verb is None and verb_recipe is not None:
        raise ConfigError(f"federate takes one recipe; {verb_recipe} is a second argument",
                          hint="seekforge federate RECIPE, or seekforge federate site|server RECIPE ...")  # fmt: skip
    if verb is not None and verb_recipe is None:
        raise ConfigError(f"federate {verb} needs the recipe", hint=f"seekforge federate {verb} recipe.yaml ...")
    spec = load_recipe(verb_recipe if verb_recipe is not None else recipe, overrides=set_ or [])
    if verb == "site":
        if site is None or superlink is None:
            raise ConfigError("federate site needs --site and --superlink",
                              hint="seekforge federate site recipe.yaml --site NAME --superlink HOST:PORT --ca ca.pem "
                                   "--key NAME.key")  # fmt: skip
        from seekforge.federate import join_site

        join_site(spec, site, superlink, data if data is not None else Path(spec.data.source), port=port,
                  retries=retries, wait_s=wait or 120.0, ca=ca, key=key)  # fmt: skip
        return
    if verb == "server":
        if keys is None:
            raise ConfigError("federate server needs --keys: the folder of the sites' public keys (SITE.pub)",
                              hint="each site makes its pair with seekforge federate keys --site NAME")  # fmt: skip
        from seekforge.federate import serve_federation

        host, _, number = listen.rpartition(":")
        if not host or not number.isdigit() or ":" in host or host.startswith("["):
            raise ConfigError(f"--listen {listen!r} is not HOST:PORT with an IPv4 address or a host name",
                              hint="--listen 0.0.0.0:9092")  # fmt: skip
        built = serve_federation(spec, keys=keys, host=host, port=int(number), names=name or [],
                                 connect_s=wait or 600.0, runs_dir=runs_dir, resume=resume)  # fmt: skip
    else:
        from seekforge.federate import federate

        built = federate(spec, runs_dir=runs_dir, resume=resume, deployment=deployment)
    if as_json:
        print_json({"run_dir": built.run_dir, "package": built.package, "report": built.package / "report.html",
                    "metrics": built.metrics, "rounds": len(built.history)})  # fmt: skip
        return
    print_metrics(
        built.metrics, title=f"test metrics ({built.metrics.get('rows', '?')} rows), after {len(built.history)} rounds"
    )
    out.print(f"package: {built.package}", markup=False)
    out.print(f"report:  {built.package / 'report.html'}", markup=False)


def _keys(site: str | None, output: Path, extra: Any, as_json: bool) -> None:
    """``federate keys --site NAME``: the site's key pair."""
    from seekforge.federate import site_keys
    from seekforge.federate.config import check_site_name

    if site is None or extra is not None:
        raise ConfigError("federate keys takes --site NAME (and -o FOLDER), no recipe",
                          hint="seekforge federate keys --site north -o keys/")  # fmt: skip
    private, public = site_keys(check_site_name(site), output)
    if as_json:
        print_json({"private": private, "public": public})
        return
    out.print(f"private key: {private}  (stays at this site: federate site --key)", markup=False)
    out.print(f"public key:  {public}  (send it to the server: federate server --keys FOLDER)", markup=False)
