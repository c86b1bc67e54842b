"""The HTTP surface: one handler per public route.

function_app.py (Azure) and the local host mount these same handlers. Each
handler takes a Starlette Request and always returns a Response: a GatewayError
becomes an OpenAI-shaped error, anything unexpected a generic 500 (logged with
its traceback, never sent to the client).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from core import gateway as gateway_module
from core.accesslog import AccessRecord, new_request_id
from core.errors import GatewayError, body_too_large, error_body
from core.proxy import JSON, Call, RelayedStream, forward

logger = logging.getLogger("aoai_gateway")

# Client request headers that never go upstream: hop-by-hop headers, the
# caller's credentials, and what the transport sets itself.
_DROPPED_REQUEST_HEADERS = frozenset(
    {
        "host", "content-length", "content-type", "connection", "keep-alive", "proxy-authenticate",
        "proxy-authorization", "proxy-connection", "te", "trailer", "trailers", "transfer-encoding", "upgrade",
        "expect", "authorization", "api-key", "cookie", "accept-encoding", "x-functions-key",
        "client-ip", "disguised-host", "max-forwards", "was-default-hostname",
    }
)
# Headers the Functions front end and proxies add about the client and the site.
_DROPPED_REQUEST_PREFIXES = ("x-forwarded-", "x-arr-", "x-ms-", "x-original-", "x-waws-", "x-site-", "x-appservice-")
_MODELS_CREATED = int(time.time())

Handler = Callable[[Request, AccessRecord], Awaitable[Response]]


async def health(request: Request) -> Response:
    return Response(b'{"status":"ok"}', media_type=JSON)


async def list_models(request: Request) -> Response:
    return await _serve(request, _list_models)


async def get_model(request: Request) -> Response:
    return await _serve(request, _get_model)


async def chat_completions(request: Request) -> Response:
    return await _serve(request, _deployment_call("chat/completions"))


async def completions(request: Request) -> Response:
    return await _serve(request, _deployment_call("completions"))


async def embeddings(request: Request) -> Response:
    return await _serve(request, _deployment_call("embeddings"))


async def engine_embeddings(request: Request) -> Response:
    """The legacy `/v1/engines/{model}/embeddings`: the model comes from the path."""
    return await _serve(request, _deployment_call("embeddings", model_in_path=True))


async def unknown_route(request: Request) -> Response:
    """Any path or method the gateway does not serve, answered the way OpenAI does."""
    return await _serve(request, _unknown_route)


async def _serve(request: Request, handler: Handler) -> Response:
    record = AccessRecord(new_request_id(), request.method, request.scope["path"])
    try:
        response = await handler(request, record)
    except GatewayError as error:
        response = Response(error.body(), error.status, error.headers, media_type=JSON)
        record.error_code = error.code
    except Exception:
        logger.exception("unhandled error in %s %s (request %s)", request.method, record.path, record.request_id)
        response = Response(
            error_body("The gateway failed to process the request.", type="api_error", code="internal_error"),
            500,
            media_type=JSON,
        )
    response.headers["x-request-id"] = record.request_id
    record.status = response.status_code
    if not isinstance(response, RelayedStream):  # a stream logs when it ends
        record.emit()
    return response


async def _unknown_route(request: Request, record: AccessRecord) -> Response:
    raise GatewayError(404, f"Invalid URL ({request.method} {record.path})", code="unknown_url")


async def _list_models(request: Request, record: AccessRecord) -> Response:
    state = gateway_module.current().state
    caller = state.auth.authenticate(request.headers)
    record.caller = caller.name
    data = [_model_object(model) for model in state.router.models() if caller.key is None or caller.key.allows(model)]
    return Response(orjson.dumps({"object": "list", "data": data}), media_type=JSON)


async def _get_model(request: Request, record: AccessRecord) -> Response:
    state = gateway_module.current().state
    caller = state.auth.authenticate(request.headers)
    record.caller = caller.name
    model = request.path_params["id"]
    record.model = model
    state.router.route(model)
    caller.check_model(model)
    return Response(orjson.dumps(_model_object(model)), media_type=JSON)


def _model_object(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": _MODELS_CREATED, "owned_by": "azure-openai"}


def _deployment_call(operation: str, *, model_in_path: bool = False) -> Handler:
    async def handle(request: Request, record: AccessRecord) -> Response:
        gateway = gateway_module.current()
        state = gateway.state
        caller = state.auth.authenticate(request.headers)
        record.caller = caller.name
        raw = await read_body(request, state.config.settings.max_body_bytes)
        payload = parse_json_object(raw)
        model = request.path_params["model"] if model_in_path else payload.get("model")
        if not isinstance(model, str) or not model:
            raise GatewayError(400, "You must provide a model parameter.", param="model", code="missing_model")
        record.model = model
        route = state.router.route(model)
        caller.check_model(model)
        stream = payload.get("stream") is True
        record.stream = stream
        call = Call(operation, route, caller, raw, payload, stream, forwarded_request_headers(request), record)
        return await forward(request, gateway, call)

    return handle


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise body_too_large(limit)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise GatewayError(
            400,
            "We could not parse the JSON body of your request. The body must be a JSON object.",
            code="invalid_json",
        ) from None
    if not isinstance(payload, dict):
        raise GatewayError(400, "The request body must be a JSON object.", code="invalid_json")
    return payload


def forwarded_request_headers(request: Request) -> list[tuple[str, str]]:
    forwarded = []
    for raw_name, raw_value in request.headers.raw:
        name = raw_name.decode("latin-1").lower()
        if name in _DROPPED_REQUEST_HEADERS or name.startswith(_DROPPED_REQUEST_PREFIXES):
            continue
        forwarded.append((name, raw_value.decode("latin-1")))
    return forwarded
