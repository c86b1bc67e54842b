"""Every resource-scoped route's handler: the path matched, the body read and checked, then the call
listed across groups, sent through a pool, or forwarded to the group that serves it."""

from __future__ import annotations

from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import Response

from core.api import Endpoint
from core.errors import GatewayError
from core.exchange import Exchange
from core.inbound import parse_json_object
from core.resources import forwarding, isolation, listing, paths, targeting
from core.resources.call import ResourceCall


async def serve(exchange: Exchange, endpoint: Endpoint) -> Response:
    request, record = exchange.request, exchange.record
    prefix = f"/{endpoint.mount}/"
    record.operation = record.path.partition(prefix)[2].split("/", 1)[0] or None  # "assistants", "responses"...
    path = paths.parse(request.method, _raw_path(request), request.scope["path"], endpoint.mount)
    call = ResourceCall(exchange, path)
    if not call.candidates:
        if path.family == "responses":
            raise GatewayError(
                404,
                "No group on this gateway can serve the Responses API (serverless groups do not).",
                code="not_configured",
            )
        raise GatewayError(
            404,
            "The assistants, files and batches APIs are not enabled on this gateway: "
            "set `assistants: true` on the azureOpenAI endpoint and on at least one group.",
            code="not_configured",
        )
    caller = call.caller
    isolation.check_resources_allowed(caller)
    for cursor in ("after", "before"):  # list cursors are ids the locator looks up
        value = request.query_params.get(cursor)
        if value and not paths.is_valid_id(value):
            raise paths.invalid_id(cursor)
    if any(resource.auth == "entra" for resource in call.candidates):
        call.bearer = await exchange.gateway.tokens.token()
    if call.method == "POST" and path.shape == "files":
        call.body = await exchange.upload(fields=("purpose",), file_part="file")
    elif call.method == "POST":
        raw = await exchange.body()
        call.payload = parse_json_object(raw) if raw.strip() else {}
        call.body = raw
        targeting.check_body(call, call.payload)
        record.stream = call.payload.get("stream") is True
        exchange.reserves(path.shape, raw, call.payload)
    if call.method == "GET" and path.shape in listing.LISTED:
        return await listing.aggregate(call)
    pool = targeting.pool_for(call)
    if pool is not None:
        return await forwarding.forward_pooled(call, *pool)
    resource = await targeting.target(call)
    record.group = resource.group
    if isolation.is_restricted(caller):
        payload = call.payload or {}
        await isolation.check_run_model(caller, path, payload, resource, call)
        if call.method == "POST" and path.shape == "batches":
            await isolation.check_batch_input(caller, payload, resource, call)
    return await forwarding.forward(call, resource)


def _raw_path(request: Request) -> bytes:
    """The path as sent, still percent-encoded. ASGI servers may omit it: then the decoded
    path, encoded again, whose segments are checked the same way."""
    raw: bytes | None = request.scope.get("raw_path")
    return raw if raw is not None else quote(request.scope["path"]).encode()
