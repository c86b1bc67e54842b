"""Reading the client's request: the body (within the size limit), its JSON, and
the headers that may travel upstream."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

import orjson
from starlette.requests import ClientDisconnect, Request

from core.errors import GatewayError, body_too_large
from core.guard import CallGuard
from core.json_depth import MAX_DEPTH, too_deep

# Client request headers that go upstream, whatever the configuration: an allow-list, so a
# credential in a header we never heard of (X-Api-Key, Ocp-Apim-Subscription-Key, ...) stays here.
_FORWARDED_REQUEST_HEADERS = frozenset(
    {
        "openai-beta",  # opts in to API versions and features (assistants=v2)
        "traceparent",
        "tracestate",  # W3C trace context: ties Azure's diagnostics to the caller's trace
        "accept",  # what the client can read (JSON, SSE, audio formats)
        "user-agent",  # the client's library and version, for Azure's usage diagnostics
    }
)


def is_ascii_digits(value: str) -> bool:
    """Whether `value` is a whole number as HTTP writes one: ASCII digits only. `str.isdigit()` alone also
    accepts `²`, `٣` and the like, which `int()` then refuses (or reads as a number no client meant)."""
    return value.isascii() and value.isdigit()


# The request headers the one pass over them (read_head) looks for, by their name in the ASGI scope, lower-case as the
# server gives it (and as Starlette's Headers looks it up): each with the name it is read by, when every call reads it
# (its key, its body's length and type, its trace), and whether it goes upstream (_FORWARDED_REQUEST_HEADERS).
_READ_HEADERS = ("authorization", "api-key", "content-length", "content-type", "traceparent", "tracestate")
_HEAD_NAMES: dict[bytes, tuple[str, bool, bool]] = {
    name.encode("latin-1"): (name, name in _READ_HEADERS, name in _FORWARDED_REQUEST_HEADERS)
    for name in (*_READ_HEADERS, *_FORWARDED_REQUEST_HEADERS)
}


def read_head(raw_headers: Iterable[tuple[bytes, bytes]]) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """In one pass over the scope's headers (where Starlette's Headers, built for the request, would pass over them
    again for each name asked): the headers every call reads, the first of each, and the built-in few that go
    upstream (_FORWARDED_REQUEST_HEADERS), all of them, in their order."""
    found: dict[str, str] = {}
    forwarded: list[tuple[str, str]] = []
    for raw_name, raw_value in raw_headers:
        known = _HEAD_NAMES.get(raw_name)
        if known is not None:
            name, read, forwards = known
            value = raw_value.decode("latin-1")
            if read and name not in found:
                found[name] = value
            if forwards:
                forwarded.append((name, value))
    return found, forwarded


async def read_body(request: Request, limit: int, guard: CallGuard, declared: str | None) -> bytes:
    """The whole body: 413 beyond `limit` bytes (or a `declared` content-length beyond it); its wait bounded by
    `guard` (the caller's deadline)."""
    if declared is not None and is_ascii_digits(declared) and int(declared) > limit:
        raise body_too_large(limit)
    receive = request.receive
    chunks = []
    size = 0
    while True:
        try:  # (guard.run would cost every call a coroutine more)
            message = await receive()
        except asyncio.CancelledError as cancelled:
            raise guard.cancelled(cancelled) from None
        if message["type"] == "http.disconnect":
            raise ClientDisconnect()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise body_too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def parse_json_object(raw: bytes) -> dict[str, Any]:
    """The client's JSON body, which must be an object nested at most MAX_DEPTH levels deep (the gateway
    re-encodes what it forwards, and a deeper body is no real request): else a 400."""
    if too_deep(raw):
        raise GatewayError(
            400,
            f"The JSON body of your request is nested more than {MAX_DEPTH} levels deep.",
            code="json_too_deep",
        )
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


def forwarded_request_headers(
    raw_headers: Iterable[tuple[bytes, bytes]], configured: tuple[str, ...]
) -> list[tuple[str, str]]:
    """The client's headers that go upstream when gateway.forwardHeaders names more (`configured`: lower-case names,
    or prefixes ending in `*`): the built-in few (all read_head forwards without it) and those, in their order."""
    forwarded = []
    for raw_name, raw_value in raw_headers:
        name = raw_name.decode("latin-1")
        known = _HEAD_NAMES.get(raw_name)
        if (known is not None and known[2]) or _is_configured(name, configured):
            forwarded.append((name, raw_value.decode("latin-1")))
    return forwarded


def _is_configured(name: str, configured: tuple[str, ...]) -> bool:
    return any(name == pattern or (pattern[-1] == "*" and name.startswith(pattern[:-1])) for pattern in configured)
