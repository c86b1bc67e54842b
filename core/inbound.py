"""Reading the client's request: the body (within the size limit), its JSON, and
the headers that may travel upstream."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from core.errors import GatewayError, body_too_large

# Client request headers that never go upstream: hop-by-hop headers, the
# caller's credentials, and what the transport sets itself.
_DROPPED_REQUEST_HEADERS = frozenset(
    {
        "host", "content-length", "content-type", "connection", "keep-alive", "proxy-authenticate",
        "proxy-authorization", "proxy-connection", "te", "trailer", "trailers", "transfer-encoding", "upgrade",
        "expect", "authorization", "api-key", "cookie", "accept-encoding", "x-functions-key",
        "client-ip", "disguised-host", "max-forwards", "was-default-hostname",
        "x-gateway-group",  # the gateway's own routing hint
    }
)
# Headers the Functions front end and proxies add about the client and the site.
_DROPPED_REQUEST_PREFIXES = ("x-forwarded-", "x-arr-", "x-ms-", "x-original-", "x-waws-", "x-site-", "x-appservice-")


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
