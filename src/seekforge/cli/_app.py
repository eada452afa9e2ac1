"""The ``seekforge`` Typer app: every command, registered from its group's module, is a thin call into a
documented Python function; ``main`` turns user errors into one message and exit code 2."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

try:
    from typer.exceptions import Abort, Exit, TyperException
except ImportError:  # typer before 0.22 raises click's (the federated environment's Flower pins typer below 0.21)
    from click.exceptions import Abort, Exit
    from click.exceptions import ClickException as TyperException

from seekforge import __version__
from seekforge.cli._common import JsonFlag, err, out, print_json
from seekforge.cli._compress import compress
from seekforge.cli._data import data_app
from seekforge.cli._env import env_command
from seekforge.cli._explain import explain
from seekforge.cli._export import bench, convert, export, optimize
from seekforge.cli._federate import federate_cmd
from seekforge.cli._finetune import finetune, generate
from seekforge.cli._import import import_model
from seekforge.cli._index import index_app
from seekforge.cli._monitor import monitor
from seekforge.cli._predict import evaluate, predict
from seekforge.cli._registry import registry_app
from seekforge.cli._schema import schema
from seekforge.cli._serve import serve
from seekforge.cli._studio import studio
from seekforge.cli._train import init, pipeline_cmd, retrain, run_cmd, tune, validate
from seekforge.core.errors import SeekforgeError
from seekforge.core.limits import Limits

app = typer.Typer(
    name="seekforge",
    help="Raw data to a deployed, monitored model: data, training, search, compression, export, serving.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=True,
)
datasets_app = typer.Typer(help="Built-in real data sets (shipped by installed packages, no downloads).")
app.add_typer(datasets_app, name="datasets")
app.add_typer(data_app, name="data")
app.add_typer(registry_app, name="registry")
app.add_typer(index_app, name="index")
app.command("env")(env_command)

_state = {"debug": bool(os.environ.get("SEEKFORGE_DEBUG"))}


def _version(value: bool) -> None:
    if value:
        out.print(f"seekforge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
    max_model_parameters: Annotated[
        int | None,
        typer.Option(
            min=1, help=f"Most parameters a package's model may have (default {Limits().model_parameters:,})."
        ),
    ] = None,
    max_activation_mib: Annotated[
        int | None,
        typer.Option(
            min=1,
            help=f"Most MiB one layer's output may take for one row of a package's model (default {Limits().activation_bytes >> 20:,}).",
        ),
    ] = None,
    max_image_pixels: Annotated[
        int | None,
        typer.Option(
            min=1, help=f"Most pixels an image may decode to, in every stage (default {Limits().image_pixels:,})."
        ),
    ] = None,
) -> None:
    """Limits protect against hostile or damaged packages and files: raise them for one you trust."""
    if debug:
        _state["debug"] = True
    from seekforge.core.limits import set_limits

    changes = {"model_parameters": max_model_parameters, "image_pixels": max_image_pixels}
    changes["activation_bytes"] = max_activation_mib * 2**20 if max_activation_mib is not None else None
    set_limits(**{k: v for k, v in changes.items() if v is not None})


app.command()(init)
app.command()(validate)
app.command("run", help="Run the whole recipe: data -> train -> evaluate -> package -> report.")(run_cmd)
app.command("pipeline", help="Validate -> train -> gates -> register -> promote (the recipe's gates: section).")(
    pipeline_cmd
)
app.command(
    "train",
    help="Train the recipe's model and write its package (--nproc N trains with DDP under torchrun; --nnodes, "
    "--node-rank and --rdzv-endpoint over several machines); the same as run until a recipe declares later stages.",
)(run_cmd)
for command in (
    tune,
    finetune,
    generate,
    retrain,
    evaluate,
    predict,
    explain,
    export,
    convert,
    bench,
    optimize,
    compress,
    serve,
    monitor,
    schema,
    studio,
):
    app.command()(command)
app.command("import")(import_model)
app.command("federate")(federate_cmd)


@app.command("completion")
def completion(
    shell: Annotated[str, typer.Argument(help="bash, zsh, fish or powershell.", show_default=False)],
) -> None:
    """Print the tab-completion script for a shell (save it where the shell reads completions)."""
    from typer.completion import get_completion_script

    shells = ("bash", "zsh", "fish", "powershell")
    if shell not in shells:
        raise typer.BadParameter(f"unknown shell '{shell}'; choose one of: {', '.join(shells)}")
    sys.stdout.write(get_completion_script(prog_name="seekforge", complete_var="_SEEKFORGE_COMPLETE", shell=shell))


@datasets_app.command("list")
def datasets_list(as_json: JsonFlag = False) -> None:
    """List the built-in data sets."""
    from seekforge.datasets import DATASETS

    if as_json:
        sets = [DATASETS.get(name) for name in DATASETS.names()]
        print_json([{"name": ds.name, "sources": [f"builtin:{ds.name}" + ("" if s == "train" else f"/{s}")
                     for s in ds.splits], "task": ds.task, "target": ds.target, "description": ds.description,
                     "origin": ds.origin} for ds in sets])  # fmt: skip
        return
    table = Table("source", "task", "target", "description")
    table.columns[0].no_wrap = True
    for name in DATASETS.names():
        ds = DATASETS.get(name)
        splits = f"builtin:{name}" + (f"\nbuiltin:{name}/test" if "test" in ds.splits else "")
        table.add_row(splits, ds.task, ds.target, f"{ds.description} ({ds.origin})")
    out.print(table)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: user errors print one message and exit 2; ``--debug`` shows tracebacks."""
    args = sys.argv[1:] if argv is None else argv
    if "--debug" in args:
        _state["debug"] = True
    try:
        code = app(args=args, prog_name="seekforge", standalone_mode=False)
        if isinstance(code, int) and code:
            sys.exit(code)  # typer returns Ctrl-C's 130 instead of raising it
    except SeekforgeError as exc:
        if _state["debug"]:
            raise
        err.print(f"[bold red]error:[/] {escape(exc.message)}", highlight=False, soft_wrap=True)
        if exc.hint:
            err.print(f"  [bold]hint:[/] {escape(exc.hint)}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except Exit as exc:
        sys.exit(exc.exit_code)
    except Abort:
        err.print("aborted")
        sys.exit(130)
    except TyperException as exc:  # usage errors: unknown command or option, bad parameter
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err.print(f"error: {exc}", markup=False)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except ModuleNotFoundError as exc:  # a light install (e.g. seekforge[runtime]) running a training command
        from seekforge.core.deps import install_command, is_optional

        if _state["debug"] or not is_optional(exc.name or ""):
            raise
        name = escape(str(exc.name))
        err.print(f"[bold red]error:[/] this command needs '{name}', which is not installed", highlight=False)
        err.print(f"  [bold]hint:[/] run: {escape(install_command(str(exc.name)))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    sys.exit(0)


if __name__ == "__main__":
    main()
