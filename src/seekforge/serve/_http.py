"""The HTTP face of a :class:`ModelService` (FastAPI).

``POST /v1/predict`` takes ``{"records": [{feature: value, ...}, ...]}`` and answers
``{"predictions": [{"prediction": ..., "proba": {class: p}}], "model_version": ..., "request_id": ...}``.
Errors are JSON with a ``detail``: 400 unreadable JSON (or not UTF-8), 401 missing or wrong API key, 408
a body slower than the read timeout, 413 a body over the size limit, 422 every bad field listed (or more
records than the limit), 431 request headers over the limit, 503 busy or draining (with
``Retry-After``), 504 deadline passed.
``POST /v1/search`` finds passages in an attached vector index (``--index``). ``GET /v1/model`` describes the package; ``/healthz``, ``/readyz`` and ``/metrics`` are for the platform.
"""

import asyncio
import json
import math
import re
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, create_model
from pydantic.json_schema import models_json_schema

from seekforge.core.deps import require
from seekforge.serve._batcher import ShuttingDown
from seekforge.serve._explain import Explainer
from seekforge.serve._service import (
    BadRequest,
    ModelService,
    NotServed,
    Ticket,
    TooLarge,
    Unauthorized,
    failure_of,
)
from seekforge.serve.config import ServeConfig

__all__ = ["create_app"]


_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _error(status: int, detail: Any, headers: dict[str, str] | None = None) -> Any:
    from fastapi.responses import JSONResponse

    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


async def _body(request: Any, limit: int) -> bytes:
    """The request body, refused past ``limit`` bytes before it is all read (a body that arrives too slowly
    is the server protocol's to refuse, with 408)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the request body is {declared} bytes; the limit is {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"the request body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")


def _parse(body: bytes) -> Any:
    """The JSON body, refused when it is not JSON, too deep, or holds text that is not Unicode (a lone
    surrogate escape such as ``\\ud800``, which no UTF-8 answer could repeat back)."""
    try:
        text = body.decode("utf-8")
        payload = json.loads(text)
    except UnicodeDecodeError as exc:
        raise BadRequest(f"the body is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    except (ValueError, RecursionError) as exc:  # JSON errors, over-long integers, deep nesting
        raise BadRequest(f"the body is not valid JSON: {exc}") from None
    if _SURROGATE.search(text):  # only an escape can make a surrogate: UTF-8 input cannot
        try:
            json.dumps(payload, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = exc.object[exc.start : exc.end].encode("unicode_escape").decode()
            raise BadRequest(f"the body holds {bad}, a lone surrogate escape, which is not Unicode text") from None
    return payload


def _timeout_ms(request: Any) -> float | None:
    value = request.headers.get("x-timeout-ms")
    if value is None:
        return None
    try:
        timeout = float(value)
    except ValueError:
        timeout = math.nan
    if not math.isfinite(timeout) or timeout <= 0:
        raise BadRequest(f"header x-timeout-ms must be a positive number of milliseconds, got {value!r}")
    return timeout


#: the errors a request can get, by status code
RESPONSES: dict[str, dict[str, Any]] = {
    "400": {"description": "The body is not JSON of the expected shape"},
    "401": {"description": "Missing or wrong API key"},
    "408": {"description": "The body took longer than the read timeout to arrive"},
    "413": {"description": "A body over the size limit"},
    "431": {"description": "The request line and headers are over the server's limit"},
    "422": {
        "description": "Invalid fields, each one listed with its record, field, message and value; or more records "
        "than the limit"
    },
    "503": {"description": "Busy (retry after Retry-After seconds) or shutting down"},
    "504": {"description": "The deadline passed before the records ran"},
}


class Prediction(BaseModel):
    """One record's answer."""

    prediction: Any = Field(description="a class label, or a number for a regressor")
    proba: dict[str, float] = Field(default_factory=dict, description="each class's probability (classifiers)")
    exit_layer: int | None = Field(
        default=None, description="the encoder layer the record left the model at (models with early exit only)"
    )


class PredictAnswer(BaseModel):
    """The answer to ``POST /v1/predict``: one prediction per record, in order."""

    predictions: list[Prediction]
    model_version: str
    request_id: str


class ErrorAnswer(BaseModel):
    """An error: its message, or for 422 the list of bad fields."""

    detail: Any


def _schemas(service: ModelService) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(component schemas, the request body's schema, the answer's, an error's), from pydantic models:
    the request is the package's record model in a list of 1 to ``max_request_rows`` records."""
    record = service.schema.model
    request = create_model(
        "PredictRequest",
        __config__=ConfigDict(extra="forbid"),
        records=(Annotated[list[record], Field(min_length=1, max_length=service.config.max_request_rows)], ...),  # type: ignore[valid-type]
    )
    template = "#/components/schemas/{model}"
    _, found = models_json_schema(
        [(request, "validation"), (PredictAnswer, "serialization"), (ErrorAnswer, "serialization")],
        ref_template=template,
    )
    components = found.get("$defs", {})
    body = components.pop("PredictRequest")  # inline, as the request body
    return (
        components,
        body,
        {"$ref": template.format(model="PredictAnswer")},
        {"$ref": template.format(model="ErrorAnswer")},
    )


def _search_request(body: bytes, config: ServeConfig) -> tuple[list[str], int]:
    """The queries and k of a ``POST /v1/search`` body.

    Raises:
        BadRequest: Not ``{"queries": [text, ...], "k": n}`` within the limits.
    """
    payload = _parse(body)
    shape = '{"queries": ["text", ...], "k": 5}'
    if not isinstance(payload, dict) or not isinstance(payload.get("queries"), list):
        raise BadRequest(f"the body must be a JSON object {shape}")
    extra = sorted(set(payload) - {"queries", "k"})
    if extra:
        raise BadRequest(f"unknown key{'s' * (len(extra) > 1)} in the body: {', '.join(extra)}")
    queries, k = payload["queries"], payload.get("k", 5)
    if not queries or len(queries) > config.max_request_rows or not all(isinstance(q, str) for q in queries):
        raise BadRequest(f"queries must be 1 to {config.max_request_rows} texts, got {str(queries)[:80]}")
    if type(k) is not int or not 1 <= k <= config.search_max_k:
        raise BadRequest(f"k must be a whole number from 1 to {config.search_max_k}, got {k!r}")
    return queries, k


def create_app(service: ModelService) -> Any:
    """The FastAPI application serving ``service`` (whose ``start`` the caller awaits)."""
    require("fastapi", purpose="the HTTP server")
    from fastapi import FastAPI, Request
    from fastapi.responses import JSONResponse, PlainTextResponse, Response
    from starlette.requests import ClientDisconnect
    from starlette.routing import Route

    name = service.manifest["name"]
    app: Any = FastAPI(
        title=f"seekforge: {name}",
        version=service.version,
        description=f"Predictions from the {service.manifest['task']} model '{name}' ({service.backend}).",
    )
    components, request_schema, answer, error = _schemas(service)
    predict_operation = {
        "post": {
            "summary": "Predict",
            "operationId": "predict",
            "description": "Predictions for each record, in order. Headers: x-api-key (when keys are set), "
            "x-request-id, x-timeout-ms.",
            "requestBody": {"required": True, "content": {"application/json": {"schema": request_schema}}},
            "responses": {
                "200": {
                    "description": "One prediction per record",
                    "content": {"application/json": {"schema": answer}},
                },
                **{
                    code: {**value, "content": {"application/json": {"schema": error}}}
                    for code, value in RESPONSES.items()
                },
            },
        }
    }

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            from fastapi.openapi.utils import get_openapi

            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            schema.setdefault("components", {}).setdefault("schemas", {}).update(components)
            schema["paths"] = {"/v1/predict": predict_operation, **schema.get("paths", {})}
            if service.config.api_keys:  # both routes that need a key say so, with how to send it
                schema["components"]["securitySchemes"] = {
                    "apiKey": {"type": "apiKey", "in": "header", "name": "x-api-key"},
                    "bearer": {"type": "http", "scheme": "bearer"},
                }
                for path in ("/v1/predict", "/v1/model"):
                    for operation in schema["paths"].get(path, {}).values():
                        operation["security"] = [{"apiKey": []}, {"bearer": []}]
            app.openapi_schema = schema
        return app.openapi_schema  # type: ignore[no-any-return]

    app.openapi = openapi

    # The busiest route is a plain Starlette route: FastAPI's dependency solving would only parse query
    # strings and cookies it never reads. Its OpenAPI entry is written out above.
    async def predict(request: Request) -> Any:
        ticket = service.timed("http")
        code = "500"
        try:
            response = await _predict(request, ticket)
            code = str(response.status_code)
            return response
        finally:
            ticket.done(code)

    app.router.routes.insert(0, Route("/v1/predict", predict, methods=["POST"]))  # matched first: the busiest

    async def _predict(request: Any, ticket: Ticket) -> Any:
        request_id = "-"
        try:
            request_id = service.request_id_of(request.headers.get("x-request-id"))
            service.check_key(request.headers)
            if service.draining:
                raise ShuttingDown("the server is shutting down and takes no new requests")
            body = await _body(request, service.config.max_request_bytes)
            payload = _parse(body)
            if not isinstance(payload, dict) or not isinstance(payload.get("records"), list):
                raise BadRequest('the body must be a JSON object {"records": [{feature: value, ...}, ...]}')
            extra = sorted(set(payload) - {"records"})
            if extra:
                raise BadRequest(f"unknown key{'s' * (len(extra) > 1)} in the body: {', '.join(extra)}")
            timeout_ms = _timeout_ms(request)
            rows = await service.validate_records(payload["records"])
            outputs, version = await service.predict(rows, timeout_ms=timeout_ms, request_id=request_id, ticket=ticket)
            body = _ENCODER.encode({"predictions": outputs, "model_version": version, "request_id": request_id})
        except ClientDisconnect:
            return Response(status_code=499)  # nobody reads it; counted apart from the server's errors
        except Exception as exc:
            return failed(exc, request_id)
        return Response(body.encode(), media_type="application/json", headers={"x-request-id": request_id})

    def failed(exc: BaseException, request_id: str) -> Any:
        failure = failure_of(exc, request_id)
        service.metrics.errors.labels("http", failure.reason).inc()
        headers = {"x-request-id": request_id}
        if failure.http == 401:
            headers["WWW-Authenticate"] = "Bearer"
        if failure.retry_after is not None:
            headers["Retry-After"] = str(max(1, math.ceil(failure.retry_after)))
        if failure.reason == "draining":
            headers.update({"Retry-After": "1", "Connection": "close"})
        return _error(failure.http, failure.detail, headers)

    explainers: dict[str, Explainer] = {}

    def explainer_of_primary() -> Explainer:
        """The primary model's explainer (a swap brings a new one; the old one's model is let go)."""
        if service.version not in explainers:
            explainers.clear()
            explainers[service.version] = Explainer(service.path, service.manifest, service.config)
        return explainers[service.version]

    answers = {k: RESPONSES[k] for k in ("400", "401", "413", "422", "503", "504")}
    answers["404"] = {"description": "Explanations are off on this server (explain=true turns them on)"}

    @app.post("/v1/explain", responses=answers, include_in_schema=service.config.explain)  # documented when served
    async def explain(request: Request) -> Any:
        """Attributions of a few records ({"records": [...], "method": "auto"}): off unless the server was
        started with explain=true; at most explain_max_rows records, one explanation at a time."""
        request_id = "-"
        try:
            request_id = service.request_id_of(request.headers.get("x-request-id"))
            service.check_key(request.headers)
            payload = _parse(await _body(request, service.config.max_request_bytes))
            if not isinstance(payload, dict) or not isinstance(payload.get("records"), list):
                raise BadRequest('the body must be a JSON object {"records": [...], "method": "auto"}')
            extra = sorted(set(payload) - {"records", "method"})
            if extra:
                raise BadRequest(f"unknown key{'s' * (len(extra) > 1)} in the body: {', '.join(extra)}")
            explainer, version = explainer_of_primary(), service.version
            explainer.check(len(payload["records"]), str(payload.get("method", "auto")))  # before any decoding
            rows = await service.validate_records(payload["records"])
            answer = await explainer.explain(rows, str(payload.get("method", "auto")))
        except ClientDisconnect:
            return Response(status_code=499)
        except Exception as exc:
            return failed(exc, request_id)
        body = {**answer, "model_version": version, "request_id": request_id}
        return JSONResponse(body, headers={"x-request-id": request_id})

    searcher, searched = None, service.version
    if service.config.index is not None:  # a bad index, or one of another package, fails before serving
        from seekforge.index import Searcher

        searcher = Searcher(service.config.index, package=service.path)
    answers = {k: RESPONSES[k] for k in ("400", "401", "413", "503")}
    answers["404"] = {"description": "No index is attached (--index), or the model swapped since it was built"}

    @app.post("/v1/search", responses=answers, include_in_schema=searcher is not None)
    async def search(request: Request) -> Any:
        """The passages nearest each query ({"queries": ["..."], "k": 5}), embedded by the served model's
        encoder, best first: {"hits": [[{"id", "text", "score"}, ...], ...]} (score: cosine similarity)."""
        request_id = "-"
        try:
            request_id = service.request_id_of(request.headers.get("x-request-id"))
            service.check_key(request.headers)
            if searcher is None:
                raise NotServed("no index is attached to this server: start it with --index FOLDER")
            if service.version != searched:
                raise NotServed(f"the index was embedded by {searched}, and the server now serves {service.version}: "
                                "build an index with the new package and restart with it")  # fmt: skip
            queries, k = _search_request(await _body(request, service.config.max_request_bytes), service.config)
            hits = await asyncio.to_thread(searcher.search, queries, k)
        except ClientDisconnect:
            return Response(status_code=499)
        except Exception as exc:
            return failed(exc, request_id)
        body = {
            "hits": [[h.to_dict() for h in row] for row in hits],
            "model_version": searched,
            "request_id": request_id,
        }
        return JSONResponse(body, headers={"x-request-id": request_id})

    @app.get("/v1/model", responses={401: RESPONSES["401"]})
    async def model(request: Request) -> Any:
        try:
            service.check_key(request.headers)
        except Unauthorized as exc:
            return _error(401, exc.message, {"WWW-Authenticate": "Bearer"})
        return service.model_info()

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/readyz", responses={503: {"description": "Starting or shutting down"}})
    async def readyz() -> Any:
        if service.ready:
            return {"status": "ready"}
        return JSONResponse({"status": "draining" if service.draining else "starting"}, status_code=503)

    @app.get("/metrics", response_class=PlainTextResponse)
    async def metrics() -> Any:
        service.refresh_gauges()
        content, media_type = service.metrics.render()
        return Response(content, media_type=media_type)

    return app
