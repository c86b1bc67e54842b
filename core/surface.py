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
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from core import gateway as gateway_module
from core import resources as resource_calls
from core.accesslog import AccessRecord, new_request_id
from core.auth import Caller
from core.config.model import Route
from core.errors import ClientDisconnected, GatewayError, error_body
from core.gateway import State
from core.inbound import forwarded_request_headers, parse_json_object, read_body
from core.proxy import Call, forward
from core.relay import JSON, RelayedStream
from core.uploads import read_upload

logger = logging.getLogger("aoai_gateway")

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


async def image_generations(request: Request) -> Response:
    return await _serve(request, _deployment_call("images/generations"))


async def image_edits(request: Request) -> Response:
    """Multipart with an `image` part; the JSON form (gpt-image models) is accepted too."""
    if request.headers.get("content-type", "").startswith("application/json"):
        return await _serve(request, _deployment_call("images/edits"))
    return await _serve(request, _upload_call("images/edits", file_part="image"))


async def audio_transcriptions(request: Request) -> Response:
    return await _serve(request, _upload_call("audio/transcriptions", file_part="file"))


async def audio_translations(request: Request) -> Response:
    return await _serve(request, _upload_call("audio/translations", file_part="file"))


async def audio_speech(request: Request) -> Response:
    """JSON in, audio bytes streamed back with the upstream's content type."""
    return await _serve(request, _deployment_call("audio/speech"))


async def resources(request: Request) -> Response:
    """Assistants, threads, vector stores, files, batches, responses (core/resources.py)."""
    return await _serve(request, _resources)


async def unknown_route(request: Request) -> Response:
    """Any path or method the gateway does not serve, answered the way OpenAI does."""
    return await _serve(request, _unknown_route)


async def _serve(request: Request, handler: Handler) -> Response:
    record = AccessRecord(new_request_id(), request.method, request.scope["path"])
    try:
        gateway_module.current().on_request()
        response = await handler(request, record)
    except ClientDisconnect:  # gone while sending its body
        error = ClientDisconnected()
        response = Response(error.body(), error.status, media_type=JSON)
        record.error_code = error.code
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


async def _resources(request: Request, record: AccessRecord) -> Response:
    gateway = gateway_module.current()
    caller = gateway.state.auth.authenticate(request.headers)
    record.caller = caller.name
    return await resource_calls.handle(request, gateway, caller, record)


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
        route = _route_for(state, caller, model, record)
        stream = payload.get("stream") is True
        record.stream = stream
        call = Call(operation, route, caller, raw, payload, stream, forwarded_request_headers(request), record)
        return await forward(request, gateway, call)

    return handle


def _upload_call(operation: str, *, file_part: str) -> Handler:
    """A multipart upload whose `model` form field picks the deployment."""

    async def handle(request: Request, record: AccessRecord) -> Response:
        gateway = gateway_module.current()
        state = gateway.state
        caller = state.auth.authenticate(request.headers)
        record.caller = caller.name
        upload = await read_upload(
            request, state.config.settings.max_body_bytes, fields=("model",), file_part=file_part
        )
        route = _route_for(state, caller, upload.fields.get("model"), record)
        call = Call(operation, route, caller, upload, None, False, forwarded_request_headers(request), record)
        return await forward(request, gateway, call)

    return handle


def _route_for(state: State, caller: Caller, model: object, record: AccessRecord) -> Route:
    if not isinstance(model, str) or not model:
        raise GatewayError(400, "You must provide a model parameter.", param="model", code="missing_model")
    record.model = model
    route = state.router.route(model)
    caller.check_model(model)
    return route
