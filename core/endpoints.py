"""The endpoints (Starlette's word for a route's handler): every row of core/api.py's table is served
by `serve`, which both hosts call.

Each call goes through an Exchange (core/exchange.py) and always gets a response: a GatewayError becomes
an OpenAI-shaped error, anything unexpected a generic 500 (logged with its traceback, never sent to the
client).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from core import cors as cors_module
from core import deployments
from core import gateway as gateway_module
from core.api import Endpoint, Kind
from core.config.model import Cors
from core.errors import ClientDisconnected, GatewayError, truncated
from core.exchange import Exchange
from core.relay import JSON
from core.resources import handler as resources

logger = logging.getLogger("aoai_gateway")

_MODELS_CREATED = int(time.time())
_INTERNAL_ERROR = GatewayError(
    500, "The gateway failed to process the request.", type="api_error", code="internal_error"
)


async def serve(request: Request, endpoint: Endpoint) -> Response:
    """The response to `request` on `endpoint`'s route."""
    if endpoint.kind == "health":
        return _health()
    exchange = Exchange(request)
    cors: Cors | None = None
    preflight = False
    try:
        cors = exchange.bind().cors
        if cors is not None and cors_module.is_preflight(request):
            preflight = True
            response = cors_module.preflight(request, cors)  # before any key: browsers send none with it
        else:
            await exchange.admit(endpoint)
            response = await _HANDLERS[endpoint.kind](exchange, endpoint)
    except ClientDisconnect:  # gone while sending its body
        response = exchange.error(ClientDisconnected())
    except GatewayError as error:
        response = exchange.error(error)
    except Exception:
        logger.exception(
            "unhandled error in %s %s (request %s)",
            truncated(request.method),
            truncated(exchange.record.path),
            exchange.record.request_id,
        )
        response = exchange.error(_INTERNAL_ERROR)
    response = exchange.respond(response)
    if cors is not None and not preflight:  # a preflight's answer carries its own
        cors_module.add_headers(request, response, cors)
    return response


def _health() -> Response:
    reason = gateway_module.unready_reason()
    if reason is None:
        return Response(b'{"status":"ok"}', media_type=JSON)
    body = orjson.dumps({"status": "unavailable", "reason": reason})
    return Response(body, 503, {"Retry-After": str(gateway_module.retry_after_seconds())}, media_type=JSON)


async def _list_models(exchange: Exchange, endpoint: Endpoint) -> Response:
    key = exchange.caller.key
    data = [_model_object(model) for model in exchange.state.router.models() if key is None or key.allows(model)]
    return exchange.response(orjson.dumps({"object": "list", "data": data}), json=True)


async def _get_model(exchange: Exchange, endpoint: Endpoint) -> Response:
    model = exchange.request.path_params["id"]
    exchange.record.model = model
    exchange.state.router.route(model)
    exchange.caller.check_model(model)
    return exchange.response(orjson.dumps(_model_object(model)), json=True)


def _model_object(model: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": _MODELS_CREATED, "owned_by": "azure-openai"}


async def _unknown_route(exchange: Exchange, endpoint: Endpoint) -> Response:
    """Any path or method the gateway does not serve, answered the way OpenAI does."""
    record = exchange.record
    raise GatewayError(404, f"Invalid URL ({truncated(record.method)} {truncated(record.path)})", code="unknown_url")


_HANDLERS: dict[Kind, Callable[[Exchange, Endpoint], Awaitable[Response]]] = {
    "deployment": deployments.serve,
    "resource": resources.serve,
    "models": _list_models,
    "model": _get_model,
    "unknown": _unknown_route,
}
