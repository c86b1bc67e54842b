"""The endpoints (Starlette's word for a route's handler): one per public route.

function_app.py (Azure) and the local host mount these same handlers. Each
handler takes a Starlette Request and always returns a Response: a GatewayError
becomes an OpenAI-shaped error, anything unexpected a generic 500 (logged with
its traceback, never sent to the client).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from core import gateway as gateway_module
from core import resources as resource_calls
from core.accesslog import AccessRecord, new_request_id
from core.auth import Caller
from core.config.model import Route
from core.errors import ClientDisconnected, GatewayError, error_body, truncated
from core.gateway import Gateway, State
from core.inbound import forwarded_request_headers, parse_json_object, read_body
from core.proxy import Call, forward
from core.relay import JSON, RelayedStream
from core.uploads import read_upload

logger = logging.getLogger("aoai_gateway")

_MODELS_CREATED = int(time.time())


@dataclass(frozen=True, slots=True)
class RequestContext:
    """What every handler starts from: the gateway, the one configuration snapshot this
    request uses to its end (a reload may land meanwhile), and the authenticated caller."""

    gateway: Gateway
    state: State
    caller: Caller


Handler = Callable[[Request, AccessRecord, RequestContext], Awaitable[Response]]
_NOT_AUTHENTICATED = Caller("anonymous", None, None)


async def health(request: Request) -> Response:
    reason = gateway_module.unready_reason()
    if reason is None:
        return Response(b'{"status":"ok"}', media_type=JSON)
    body = orjson.dumps({"status": "unavailable", "reason": reason})
    return Response(body, 503, {"Retry-After": str(gateway_module.retry_after_seconds())}, media_type=JSON)


async def list_models(request: Request) -> Response:
    return await _dispatch(request, _list_models)


async def get_model(request: Request) -> Response:
    return await _dispatch(request, _get_model)


async def chat_completions(request: Request) -> Response:
    return await _dispatch(request, _deployment_call("chat/completions"), budgeted=True)


async def completions(request: Request) -> Response:
    return await _dispatch(request, _deployment_call("completions"), budgeted=True)


async def embeddings(request: Request) -> Response:
    return await _dispatch(request, _deployment_call("embeddings"), budgeted=True)


async def engine_embeddings(request: Request) -> Response:
    """The legacy `/v1/engines/{model}/embeddings`: the model comes from the path."""
    return await _dispatch(request, _deployment_call("embeddings", model_in_path=True), budgeted=True)


async def image_generations(request: Request) -> Response:
    return await _dispatch(request, _deployment_call("images/generations"), budgeted=True)


async def image_edits(request: Request) -> Response:
    """Multipart with an `image` part; the JSON form (gpt-image models) is accepted too."""
    if request.headers.get("content-type", "").startswith("application/json"):
        return await _dispatch(request, _deployment_call("images/edits"), budgeted=True)
    return await _dispatch(request, _upload_call("images/edits", file_part="image"), budgeted=True)


async def audio_transcriptions(request: Request) -> Response:
    return await _dispatch(request, _upload_call("audio/transcriptions", file_part="file"), budgeted=True)


async def audio_translations(request: Request) -> Response:
    return await _dispatch(request, _upload_call("audio/translations", file_part="file"), budgeted=True)


async def audio_speech(request: Request) -> Response:
    """JSON in, audio bytes streamed back with the upstream's content type."""
    return await _dispatch(request, _deployment_call("audio/speech"), budgeted=True)


async def resources(request: Request) -> Response:
    """Assistants, threads, vector stores, files, batches, responses (core/resources.py)."""
    return await _dispatch(request, _resources, budgeted=True)


async def unknown_route(request: Request) -> Response:
    """Any path or method the gateway does not serve, answered the way OpenAI does."""
    return await _dispatch(request, _unknown_route, authenticate=False)


async def _dispatch(
    request: Request, handler: Handler, *, authenticate: bool = True, budgeted: bool = False
) -> Response:
    """`budgeted`: a call that goes upstream, counted against the caller key's limits."""
    record = AccessRecord(new_request_id(), request.method, request.scope["path"])
    rate_headers: dict[str, str] = {}
    try:
        gateway = gateway_module.current()
        gateway.on_request()
        if gateway.telemetry is not None:
            gateway.telemetry.start(record, request.headers)
        state = gateway.state
        caller = state.auth.authenticate(request.headers) if authenticate else _NOT_AUTHENTICATED
        if authenticate:
            record.caller = caller.name
        if budgeted and caller.key is not None and caller.key.limits is not None:
            rate_headers = await gateway.budgets.admit(caller)
            budgets = gateway.budgets
            record.listeners.append(lambda done: budgets.spend(caller.name, done.tokens))
        response = await handler(request, record, RequestContext(gateway, state, caller))
    except ClientDisconnect:  # gone while sending its body
        error = ClientDisconnected()
        response = Response(error.body(), error.status, media_type=JSON)
        record.error_code = error.code
    except GatewayError as error:
        response = Response(error.body(), error.status, error.headers, media_type=JSON)
        record.error_code = error.code
    except Exception:
        logger.exception(
            "unhandled error in %s %s (request %s)",
            truncated(request.method),
            truncated(record.path),
            record.request_id,
        )
        response = Response(
            error_body("The gateway failed to process the request.", type="api_error", code="internal_error"),
            500,
            media_type=JSON,
        )
    response.headers["x-request-id"] = record.request_id
    response.headers.update(rate_headers)  # the caller's own budget, not the upstream's
    record.status = response.status_code
    if not isinstance(response, RelayedStream):  # a stream logs when it ends
        record.emit()
    return response


async def _resources(request: Request, record: AccessRecord, context: RequestContext) -> Response:
    record.operation = record.path.partition("/v1/")[2].split("/", 1)[0] or None  # "assistants", "responses"...
    return await resource_calls.handle(request, context.gateway, context.state, context.caller, record)


async def _unknown_route(request: Request, record: AccessRecord, context: RequestContext) -> Response:
    raise GatewayError(404, f"Invalid URL ({truncated(request.method)} {truncated(record.path)})", code="unknown_url")


async def _list_models(request: Request, record: AccessRecord, context: RequestContext) -> Response:
    key = context.caller.key
    data = [_model_object(model) for model in context.state.router.models() if key is None or key.allows(model)]
    return Response(orjson.dumps({"object": "list", "data": data}), media_type=JSON)


async def _get_model(request: Request, record: AccessRecord, context: RequestContext) -> Response:
    model = request.path_params["id"]
    record.model = model
    context.state.router.route(model)
    context.caller.check_model(model)
    return Response(orjson.dumps(_model_object(model)), media_type=JSON)


def _model_object(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": _MODELS_CREATED, "owned_by": "azure-openai"}


def _deployment_call(operation: str, *, model_in_path: bool = False) -> Handler:
    async def handle(request: Request, record: AccessRecord, context: RequestContext) -> Response:
        settings = context.state.config.settings
        raw = await read_body(request, settings.max_body_bytes, settings.total_timeout)
        payload = parse_json_object(raw)
        record.operation = operation
        model = request.path_params["model"] if model_in_path else payload.get("model")
        route = _route_for(context, model, record)
        stream = payload.get("stream") is True
        record.stream = stream
        headers = forwarded_request_headers(request, settings.forward_headers)
        call = Call(operation, route, context.caller, raw, payload, stream, headers, record)
        return await forward(request, context.gateway, context.state, call)

    return handle


def _upload_call(operation: str, *, file_part: str) -> Handler:
    """A multipart upload whose `model` form field picks the deployment."""

    async def handle(request: Request, record: AccessRecord, context: RequestContext) -> Response:
        record.operation = operation
        settings = context.state.config.settings
        upload = await read_upload(
            request, settings.max_body_bytes, settings.total_timeout, fields=("model",), file_part=file_part
        )
        route = _route_for(context, upload.fields.get("model"), record)
        headers = forwarded_request_headers(request, settings.forward_headers)
        call = Call(operation, route, context.caller, upload, None, False, headers, record)
        return await forward(request, context.gateway, context.state, call)

    return handle


def _route_for(context: RequestContext, model: object, record: AccessRecord) -> Route:
    if not isinstance(model, str) or not model:
        raise GatewayError(400, "You must provide a model parameter.", param="model", code="missing_model")
    record.model = model
    route = context.state.router.route(model)
    context.caller.check_model(model)
    return route
