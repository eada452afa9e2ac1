"""``seekforge studio``: the runs under a folder in a local web app."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from seekforge.cli._common import ApiKeyFile, RegistryWhere, err
from seekforge.core.errors import ConfigError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def studio(
    runs: Annotated[Path, typer.Option("--runs", help="The folder of run folders (runs/<name>/<stamp>).")] = Path(
        "runs"
    ),
    host: Annotated[
        str, typer.Option(help="Address to listen on; beyond this machine it needs --api-key-file.")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on (0: any free one).")] = 8765,
    api_key_file: ApiKeyFile = None,
    server: Annotated[
        list[str] | None,
        typer.Option("--server", help="A running seekforge serve to watch (its base URL); repeatable."),
    ] = None,
    data_root: Annotated[
        Path | None,
        typer.Option("--data-root", help="The folder whose data files the new-recipe page may read (default: here)."),
    ] = None,
    log: Annotated[
        list[Path] | None,
        typer.Option("--log", help="A prediction log a server writes (serve --log): its drift by window; repeatable."),
    ] = None,
    server_key_file: Annotated[
        Path | None, typer.Option("--server-key-file", help="A file holding the key that reads the servers' /metrics.")
    ] = None,
    registry: RegistryWhere = None,
) -> None:
    """Browse, watch and compare runs in a browser: prints the address, opens nothing; Ctrl-C stops it.

    It only reads the run folders: a run training now is never held up, and its page grows as it trains.
    """
    from seekforge.core.api_keys import read_api_keys
    from seekforge.core.deps import require

    if host not in LOOPBACK and api_key_file is None:
        raise ConfigError(
            f"--host {host} lets other machines reach the studio; it then needs --api-key-file",
            hint="write one key per line to a file only you can read, and pass it with --api-key-file",
        )
    keys = read_api_keys(api_key_file) if api_key_file is not None else frozenset()
    uvicorn = require("uvicorn", purpose="seekforge studio")
    from seekforge.studio import create_app

    servers = list(server or [])
    for url in servers:
        if not url.startswith(("http://", "https://")):
            raise ConfigError(
                f"--server {url}: not an http:// or https:// address", hint="e.g. --server http://127.0.0.1:8000"
            )
    server_key = None
    if server_key_file is not None:
        found = read_api_keys(server_key_file, option="--server-key-file")
        if len(found) != 1:
            raise ConfigError(f"--server-key-file {server_key_file} holds {len(found)} keys; the studio reads with one")
        (server_key,) = found
    app = create_app(runs, api_keys=keys, servers=servers, server_key=server_key, logs=list(log or []),
                     data_root=data_root, registry=registry)  # fmt: skip
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
    shown = f"[{host}]" if ":" in host else host

    async def announce() -> None:
        while not server.started:
            await asyncio.sleep(0.05)
        bound = server.servers[0].sockets[0].getsockname()[1] if server.servers else port
        err.print(f"seekforge studio: http://{shown}:{bound}/ (runs under {runs}; Ctrl-C stops it)", highlight=False)

    async def main() -> None:
        await asyncio.gather(server.serve(), announce())

    asyncio.run(main())
