"""The gate in front of a SuperLink that remote sites reach: it answers on the federation's public address
over TLS and forwards the Fleet API (``/v1/fleet/...``, what a SuperNode calls) to the SuperLink on
127.0.0.1, and nothing else.

Flower 1.42 serves its Control API (submit or stop a run, register a node's key) and its Runtime API on the
same port as the Fleet API, and its open-source Control API asks for no account: whoever reaches that port
could submit an app that every site's node then runs beside its rows. The SuperLink therefore listens on
127.0.0.1 only (where the server's own ``flwr`` commands and ServerApp reach it) and the sites reach this
gate. Requests and replies pass unchanged (a node's signed headers with them); any other path is 404.

Run as ``python -m seekforge.federate._gate --listen HOST:PORT --upstream 127.0.0.1:PORT --cert C --key K
--ca CA`` (started and stopped by PID with the SuperLink).
"""

from __future__ import annotations

import argparse
import ssl
from typing import Any

#: the headers that belong to one connection, not to the request or reply passed on
_HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer", "trailers",
        "transfer-encoding", "upgrade", "host", "content-length"}  # fmt: skip
#: the only API the gate passes on
FLEET = "/v1/fleet/"


def gate_app(upstream: str, ca: str) -> Any:
    """The gate's ASGI app: POSTs under FLEET forwarded to ``https://upstream`` (its certificate checked
    against ``ca``), the reply streamed back."""
    import httpx
    from starlette.applications import Starlette
    from starlette.background import BackgroundTask
    from starlette.requests import Request
    from starlette.responses import Response, StreamingResponse
    from starlette.routing import Route

    client = httpx.AsyncClient(base_url=f"https://{upstream}", verify=ssl.create_default_context(cafile=ca),
                               timeout=None)  # fmt: skip

    async def forward(request: Request) -> Response:
        headers = [(k, v) for k, v in request.headers.raw if k.decode("latin-1").lower() not in _HOP]
        sent = client.build_request("POST", request.url.path, content=await request.body(), headers=headers)
        reply = await client.send(sent, stream=True)
        kept = {k: v for k, v in reply.headers.items() if k.lower() not in _HOP}
        return StreamingResponse(reply.aiter_raw(), status_code=reply.status_code, headers=kept,
                                 background=BackgroundTask(reply.aclose))  # fmt: skip

    return Starlette(routes=[Route(FLEET + "{path:path}", forward, methods=["POST"])])


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m seekforge.federate._gate", description=__doc__)
    for flag in ("--listen", "--upstream", "--cert", "--key", "--ca"):
        parser.add_argument(flag, required=True)
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    uvicorn.run(gate_app(args.upstream, args.ca), host=host, port=int(port), ssl_certfile=args.cert,
                ssl_keyfile=args.key, log_level="warning")  # fmt: skip


if __name__ == "__main__":
    main()
