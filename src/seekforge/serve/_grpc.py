"""The gRPC face of a :class:`ModelService` (grpc.aio), with the standard health service beside it.

Status codes mirror the HTTP ones: UNAUTHENTICATED (401), INVALID_ARGUMENT (400/422, every bad field
in the details), RESOURCE_EXHAUSTED (413 and 503 busy, with a ``retry-after-ms`` trailer when busy),
UNAVAILABLE (draining), DEADLINE_EXCEEDED (504), INTERNAL (500). The client's own gRPC deadline is the
request's deadline. The API key goes in the ``x-api-key`` (or ``authorization: Bearer``) metadata.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from seekforge.core.deps import require
from seekforge.serve._batcher import ShuttingDown
from seekforge.serve._service import BadRequest, ModelService, Unauthorized, failure_of

__all__ = ["SERVICE_NAME", "add_services", "stubs"]

SERVICE_NAME = "seekforge.serve.v1.Predictor"


def stubs() -> tuple[Any, Any]:
    """The generated message and service modules (``predict_pb2``, ``predict_pb2_grpc``)."""
    require("grpc", purpose="the gRPC server")
    require("google.protobuf", purpose="the gRPC server")
    from seekforge.serve.proto import predict_pb2, predict_pb2_grpc

    return predict_pb2, predict_pb2_grpc


@dataclass(frozen=True)
class _Refusal:
    """The status a failed request ends its call with."""

    code: Any
    detail: str
    retry_after: float | None


#: Messages of one stream in flight at once: a client that sends them faster than they are answered
#: gets them batched together, up to this many, then waits.
STREAM_WINDOW = 64


async def _pipelined(
    requests: AsyncIterator[Any], answer: Callable[[Any], Awaitable[Any]], window: int = STREAM_WINDOW
) -> AsyncIterator[Any]:
    """Answers to a stream's messages, in the order they came, with up to ``window`` of them answered
    at once: each message is started as it arrives rather than after the previous one's answer, so the
    batcher can put a stream's messages in one batch. A failed read of the stream ends it with its error,
    after the answers before it."""
    order: asyncio.Queue[asyncio.Future[Any] | None] = asyncio.Queue()
    room = asyncio.Semaphore(window)

    async def read() -> None:
        try:
            async for request in requests:
                await room.acquire()
                order.put_nowait(asyncio.ensure_future(answer(request)))
        finally:
            order.put_nowait(None)

    reader = asyncio.ensure_future(read())
    try:
        while (started := await order.get()) is not None:
            response = await started
            room.release()
            yield response
        await reader  # a failed read ends the stream with its error
    finally:
        reader.cancel()
        while not order.empty():
            left = order.get_nowait()
            if left is not None and not left.cancel() and not left.cancelled():
                left.exception()  # answered already: its error, if any, is the stream's no longer


#: A status's details travel in the trailers, which clients cap (8 KiB by default): at most this many
#: problems, and this many characters, go back; the count says how many there were
DETAIL_PROBLEMS = 20
DETAIL_CHARS = 4000


def _detail(exc: BaseException, detail: Any) -> str:
    """A refusal's details for a gRPC status: the message, then the first :data:`DETAIL_PROBLEMS` problems
    as JSON and how many were left out, within :data:`DETAIL_CHARS` characters."""
    if isinstance(detail, str):
        text = detail
    else:
        shown = detail[:DETAIL_PROBLEMS]
        left = len(detail) - len(shown)
        text = f"{exc}\n{json.dumps(shown)}" + (f"\n... and {left} more problems" if left else "")
    return text if len(text) <= DETAIL_CHARS else text[: DETAIL_CHARS - 3] + "..."


def _metadata(context: Any) -> dict[str, str]:
    return dict(context.invocation_metadata() or ())


def add_services(server: Any, service: ModelService) -> Any:
    """Register the predictor and health services of ``service`` on a ``grpc.aio`` server; returns the
    health servicer (the caller marks it NOT_SERVING when draining)."""
    grpc = require("grpc", purpose="the gRPC server")
    require("grpc_health", purpose="the gRPC health service")
    from google.protobuf import json_format
    from grpc_health.v1 import health, health_pb2_grpc

    pb2, pb2_grpc = stubs()

    def to_response(outputs: list[dict[str, Any]], request_id: str, version: str) -> Any:
        predictions = []
        for row in outputs:
            prediction = pb2.Prediction(proba=row.get("proba", {}), exit_layer=row.get("exit_layer"))
            json_format.ParseDict(row["prediction"], prediction.prediction)
            predictions.append(prediction)
        return pb2.PredictResponse(predictions=predictions, request_id=request_id, model_version=version)

    async def answer(request: Any, context: Any) -> Any:
        """One request's response, or the refusal its error turns into (the call's own task ends the call
        with it, see :func:`refuse`)."""
        ticket = service.timed("grpc")
        code = "INTERNAL"
        request_id = "-"
        try:
            request_id = service.request_id_of(request.request_id)
            service.check_key(_metadata(context))
            if service.draining:
                raise ShuttingDown("the server is shutting down and takes no new requests")
            try:
                records = [json_format.MessageToDict(r) for r in request.records]
            except ValueError as exc:  # NaN or infinite numbers, which JSON cannot hold
                raise BadRequest(f"a record holds a value that is not a JSON value: {exc}") from None
            rows = await service.validate_records(records)
            remaining = context.time_remaining()
            timeout_ms = remaining * 1000.0 if remaining is not None else None
            outputs, version = await service.predict(rows, timeout_ms=timeout_ms, request_id=request_id, ticket=ticket)
            response = to_response(outputs, request_id, version)
        except asyncio.CancelledError:  # the stream it came in ended first
            code = "CANCELLED"
            raise
        except Exception as exc:
            failure = failure_of(exc, request_id)
            code = failure.grpc
            service.metrics.errors.labels("grpc", failure.reason).inc()
            return _Refusal(getattr(grpc.StatusCode, failure.grpc), _detail(exc, failure.detail), failure.retry_after)
        else:
            code = "OK"
            return response
        finally:
            ticket.done(code)

    def refuse(refusal: _Refusal, context: Any) -> None:
        """Give the call the refusal's status (and retry hint): a stream ends with it when its handler
        returns; a unary call aborts with it."""
        if refusal.retry_after is not None:
            context.set_trailing_metadata((("retry-after-ms", str(int(refusal.retry_after * 1000))),))
        context.set_code(refusal.code)
        context.set_details(refusal.detail)

    class Servicer(pb2_grpc.PredictorServicer):  # type: ignore[misc,name-defined]
        async def Predict(self, request: Any, context: Any) -> Any:
            outcome = await answer(request, context)
            if isinstance(outcome, _Refusal):
                refuse(outcome, context)
                await context.abort(outcome.code, outcome.detail)
            return outcome

        async def PredictStream(self, requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
            # closed before the handler returns: reading stops and unanswered messages are cancelled first
            async with contextlib.aclosing(_pipelined(requests, lambda request: answer(request, context))) as outcomes:
                async for outcome in outcomes:
                    if isinstance(outcome, _Refusal):
                        refuse(outcome, context)
                        return
                    yield outcome

        async def GetModel(self, request: Any, context: Any) -> Any:
            try:
                service.check_key(_metadata(context))
            except Unauthorized as exc:
                await context.abort(grpc.StatusCode.UNAUTHENTICATED, exc.message)
            return pb2.ModelInfo(json=json.dumps(service.model_info()))

    pb2_grpc.add_PredictorServicer_to_server(Servicer(), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    return health_servicer
