"""``seekforge registry``: register packages, promote and roll back aliases, list and show versions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from seekforge.cli._common import JsonFlag, RegistryWhere, err, out, print_json

registry_app = typer.Typer(help="The model registry: versions, aliases (champion), promotion and rollback.")

Alias = Annotated[str, typer.Option("--alias", help="The alias to move.")]


def _open(where: str | None) -> Any:
    from seekforge.registry import Registry, location

    return Registry(location(where))


def registered(package: Path, where: str | None) -> Path:
    """``package``, or the folder a ``registry:NAME@ALIAS`` reference points at (checksum checked)."""
    if not str(package).startswith("registry:"):
        return package
    found = _open(where).resolve(str(package))
    err.print(f"{package} -> {found}", markup=False)
    return found


@registry_app.command("register")
def register(
    package: Annotated[Path, typer.Argument(help="Model package folder.")],
    name: Annotated[
        str | None, typer.Option("--name", help="Register under this name \\[default: the package's].")
    ] = None,
    where: RegistryWhere = None,
    as_json: JsonFlag = False,
) -> None:
    """Register a package as the next version of its model (the same package again: its version)."""
    registry = _open(where)
    version = registry.register(package, name=name)
    found = registry.get(name or _name(package), version)
    if as_json:
        print_json(found.to_dict())
        return
    gates = (
        ", ".join(f"{k} {'passed' if v.get('passed', True) else 'FAILED'}" for k, v in found.gates.items()) or "none"
    )
    out.print(f"{found.name} version {version}: {found.package} (gates: {gates})", markup=False)


def _name(package: Path) -> str:
    from seekforge.core.package import read_manifest

    return str(read_manifest(package, verify=False)["name"])


@registry_app.command("list")
def list_models(where: RegistryWhere = None, as_json: JsonFlag = False) -> None:
    """Every model: its latest version and its aliases."""
    registry = _open(where)
    models = {name: registry.versions_of(name) for name in registry.names()}
    if as_json:
        print_json(
            {
                n: {"latest": v[-1].version, "aliases": {a: x.version for x in v for a in x.aliases}}
                for n, v in models.items()
            }
        )
        return
    table = Table("model", "versions", "latest", "aliases", title="registry")
    for name, versions in models.items():
        aliases = ", ".join(f"{a}={v.version}" for v in versions for a in v.aliases)
        table.add_row(escape(name), str(len(versions)), str(versions[-1].version), escape(aliases) or "-")
    out.print(table)


@registry_app.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Model name.")],
    where: RegistryWhere = None,
    as_json: JsonFlag = False,
) -> None:
    """A model's versions: metrics, gates, aliases, who registered them when; and its history."""
    registry = _open(where)
    versions = registry.versions_of(name)
    if as_json:
        print_json({"versions": [v.to_dict() for v in versions], "history": registry.history(name)})
        return
    table = Table("version", "aliases", "gates", "metrics", "registered", "package", title=escape(name))
    for v in versions:
        metrics = ", ".join(f"{k} {val:.4g}" for k, val in v.metrics.items() if isinstance(val, float))
        table.add_row(str(v.version), escape(", ".join(v.aliases)) or "-", "passed" if v.passed else "FAILED",
                      escape(metrics), f"{v.created_at} {escape(v.created_by)}", escape(v.package))  # fmt: skip
    out.print(table)
    for event in registry.history(name)[-10:]:
        forced = " (forced past a failed gate)" if event["detail"].get("forced") else ""
        where_to = f" {event['alias']} ->" if event["alias"] else ""
        out.print(
            f"{event['at']} {escape(event['by'])}: {event['action']}{where_to} version {event['version']}{forced}"
        )


@registry_app.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[int, typer.Argument(help="Version to promote.", min=1)],
    alias: Alias = "champion",
    force: Annotated[bool, typer.Option("--force", help="Promote a version that failed a gate (recorded).")] = False,
    note: Annotated[str, typer.Option("--note", help="Why, for the history.")] = "",
    where: RegistryWhere = None,
    as_json: JsonFlag = False,
) -> None:
    """Point an alias (champion) at a version; a version that failed a gate needs --force."""
    registry = _open(where)
    registry.promote(name, version, alias=alias, force=force, note=note)
    if as_json:
        print_json({"name": name, "alias": alias, "version": version})
        return
    err.print(f"{name}: {alias} -> version {version}", markup=False)


@registry_app.command("rollback")
def rollback(
    name: Annotated[str, typer.Argument(help="Model name.")],
    alias: Alias = "champion",
    where: RegistryWhere = None,
    as_json: JsonFlag = False,
) -> None:
    """Point an alias back at the version it held before its current one was promoted."""
    version = _open(where).rollback(name, alias=alias)
    if as_json:
        print_json({"name": name, "alias": alias, "version": version})
        return
    err.print(f"{name}: {alias} -> version {version} (rolled back)", markup=False)


@registry_app.command("resolve")
def resolve(
    reference: Annotated[str, typer.Argument(help="NAME@ALIAS, NAME@VERSION or NAME (its latest).")],
    where: RegistryWhere = None,
    as_json: JsonFlag = False,
) -> None:
    """The package folder a reference points at, checked against its registered checksum."""
    path = _open(where).resolve(reference)
    if as_json:
        print_json({"reference": reference, "package": path})
        return
    out.print(str(path), markup=False, soft_wrap=True)
