"""CORS for browser-based clients (`gateway.cors`), answered the way Starlette's CORSMiddleware answers.

A page on an allowed origin may call the gateway from the browser: its preflight (`OPTIONS` with
`Access-Control-Request-Method`) is answered here, before any key is checked (browsers send no credentials with it),
and every answer to it carries `Access-Control-Allow-Origin` and the headers the client may read. Keys travel in
headers, never cookies, so credentials are never allowed. Any header the page asks for is allowed: what reaches
Azure is still the gateway's allow-list (core/outbound.py). Without `gateway.cors`, nothing here applies.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from core.config.model import Cors
from core.errors import GatewayError

ALLOWED_METHODS = "GET, POST, DELETE, OPTIONS"
# What an OpenAI client reads from an answer: its request id, rate limits, retry hints, what the gateway changed,
# what is left of its key's cost limit.
EXPOSED_HEADERS = (
    "x-request-id, retry-after, retry-after-ms, x-ratelimit-limit-requests, x-ratelimit-limit-tokens, "
    "x-ratelimit-remaining-requests, x-ratelimit-remaining-tokens, x-ratelimit-reset-requests, "
    "x-ratelimit-reset-tokens, openai-processing-ms, x-gateway-adjusted, x-gateway-cost-limit, "
    "x-gateway-cost-remaining, x-gateway-cost-reset"
)


def is_preflight(request: Request) -> bool:
    headers = request.headers
    return request.method == "OPTIONS" and "origin" in headers and "access-control-request-method" in headers


def preflight(request: Request, cors: Cors) -> Response:
    """The answer to a preflight: 200 with what the page may do, or 400 for an origin not allowed."""
    origin = request.headers["origin"]
    if not _allowed(origin, cors):
        raise GatewayError(
            400, "This origin may not call the gateway from a browser (gateway.cors).", code="cors_origin_not_allowed"
        )
    headers = {
        "access-control-allow-origin": "*" if cors.any_origin else origin,
        "access-control-allow-methods": ALLOWED_METHODS,
        "access-control-max-age": str(cors.max_age),
        "vary": "Origin",
    }
    requested = request.headers.get("access-control-request-headers")
    if requested:
        headers["access-control-allow-headers"] = requested
    return Response(status_code=200, headers=headers)


def add_headers(request: Request, response: Response, cors: Cors) -> None:
    """Tell the browser that an allowed origin's page may read `response`, and which of its headers."""
    origin = request.headers.get("origin")
    if origin is None or not _allowed(origin, cors):
        return
    response.raw_headers += [
        (b"access-control-allow-origin", b"*" if cors.any_origin else origin.encode("latin-1")),
        (b"access-control-expose-headers", EXPOSED_HEADERS.encode()),
        (b"vary", b"Origin"),
    ]


def _allowed(origin: str, cors: Cors) -> bool:
    return cors.any_origin or origin.lower() in cors.origins
