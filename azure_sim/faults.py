"""The canned answers of ``x-sim-fail`` (429, content filter, 5xx, HTML from a proxy, huge or broken JSON, ...)."""

from __future__ import annotations

import math
from typing import Any

import orjson
from aiohttp import web

from .behaviour import DEEP_JSON_LEVELS, Behaviour
from .wire import (
    DOWNLOAD_CHUNK,
    ERR_CONTENT_FILTER,
    ERR_SERVER,
    HTML_502,
    JSON_TYPE,
    TEXT_TYPE,
    azure_headers,
    error_answer,
    json_answer,
)

RETRY_AFTER_SECONDS = 7


async def canned_failure(request: web.Request, mode: str, azure_name: str, behaviour: Behaviour) -> web.StreamResponse:
    """The canned answers for ``x-sim-fail`` (CANNED_FAIL_MODES)."""
    if mode == "429":
        version = request.query.get("api-version", "unknown")
        message = (
            f"Requests to the {azure_name} Operation under Azure OpenAI API version {version} have "
            "exceeded token rate limit of your current OpenAI S0 pricing tier. "
            f"Please retry after {RETRY_AFTER_SECONDS} seconds. Please go here: https://aka.ms/oai/quotaincrease "
            "if you would like to further increase the default rate limit."
        )
        extra = {"Retry-After": str(RETRY_AFTER_SECONDS), "x-ratelimit-remaining-requests": "0"}
        if behaviour.retry_after_ms is not None:
            extra["retry-after-ms"] = str(int(behaviour.retry_after_ms))
            extra["Retry-After"] = str(math.ceil(behaviour.retry_after_ms / 1000))
        if behaviour.retry_after is not None:
            extra["Retry-After"] = behaviour.retry_after
        return error_answer(request, 429, {"code": "429", "message": message}, extra)
    if mode == "content_filter":
        return error_answer(request, 400, ERR_CONTENT_FILTER)
    if mode == "503":
        return error_answer(request, 503, ERR_SERVER)
    if mode == "500":
        return error_answer(request, 500, ERR_SERVER)
    if mode == "html":
        return web.Response(body=HTML_502, status=502, headers=azure_headers(request, "text/html"))
    if mode == "599":  # a status no HTTP specification defines (some proxies' "network connect timeout")
        return error_answer(request, 599, ERR_SERVER)
    if mode == "302":  # a redirect that names no Location
        return web.Response(body=b"Found", status=302, headers=azure_headers(request, TEXT_TYPE))
    if mode == "invalid_json":
        return web.Response(body=b'{"object": "list", "data": [{"id": ', headers=azure_headers(request, JSON_TYPE))
    if mode == "bad_list":
        return json_answer(request, {"object": "list", "data": [1, "two", None], "has_more": False})
    if mode == "bad_choices":
        return json_answer(request, {"id": "cmpl-bad", "object": "text_completion", "choices": ["Echo", None]})
    if mode == "deep_json":
        return web.Response(body=_deep_answer(request), headers=azure_headers(request, JSON_TYPE))
    if mode in ("huge", "huge_chunked", "huge_error"):
        return await _send_huge(request, mode, behaviour.huge_bytes)
    raise AssertionError(f"unhandled fail mode {mode!r}")


def _deep_answer(request: web.Request) -> bytes:
    """A 200 that is at once a list (of one assistant) and an object, whose metadata nests DEEP_JSON_LEVELS levels:
    valid JSON that orjson reads but cannot write again (so it is written here as text). It names the deployment in
    its path (a resource route: gpt-4o-dep) as its model, which a gateway maps back to a public id."""
    model = request.match_info.get("deployment", "gpt-4o-dep")
    nested = b"[" * (DEEP_JSON_LEVELS - 4) + b"]" * (DEEP_JSON_LEVELS - 4)
    item = b'{"id": "asst_deep", "object": "assistant", "model": ' + orjson.dumps(model) + b', "metadata": {"deep": '
    item += nested + b"}}"
    return (
        b'{"object": "list", "id": "asst_deep", "model": ' + orjson.dumps(model) + b', "data": [' + item + b"], "
        b'"first_id": "asst_deep", "last_id": "asst_deep", "has_more": false}'
    )


async def _send_huge(request: web.Request, mode: str, size: int) -> web.StreamResponse:
    """A valid JSON answer (``huge_error``: a 500 error) of about ``size`` bytes, written in pieces so that a client
    that stops reading leaves it unfinished (the record is then not ``completed``)."""
    if mode == "huge_error":
        status, head, tail = 500, b'{"error": {"code": "InternalServerError", "message": "', b'"}}'
    else:
        status, head, tail = 200, b'{"id": "chatcmpl-huge", "object": "chat.completion", "padding": "', b'"}'
    padding = max(size - len(head) - len(tail), 0)
    response = web.StreamResponse(status=status, headers=azure_headers(request, JSON_TYPE))
    if mode != "huge_chunked":
        response.content_length = len(head) + padding + len(tail)
    await response.prepare(request)
    await response.write(head)
    block = b"x" * DOWNLOAD_CHUNK
    for start in range(0, padding, DOWNLOAD_CHUNK):
        await response.write(block[: min(DOWNLOAD_CHUNK, padding - start)])
    await response.write(tail)
    await response.write_eof()
    return response


_MISREPORTED = "\u0000sim-usage\u0000"  # a string no answer holds, replaced by the misreported count's text


def misreport_usage(response: web.Response, count: str) -> None:
    """``x-sim-usage``: every count of a 2xx JSON answer's top-level ``usage`` (its details' too) written as ``count``,
    a JSON text as it is (``9223372036854775808``, ``-1``, ``1.5``, ``true``: what no real usage holds)."""
    if not 200 <= response.status < 300 or not isinstance(response.body, bytes):
        return
    if not (response.content_type or "").startswith(JSON_TYPE):
        return
    answer = orjson.loads(response.body)
    if not isinstance(answer, dict) or not isinstance(answer.get("usage"), dict):
        return
    answer["usage"] = _counts_replaced(answer["usage"])
    marker = orjson.dumps(_MISREPORTED)
    response.body = orjson.dumps(answer).replace(marker, count.encode())


def _counts_replaced(value: Any) -> Any:
    """`value` with each integer in it, nested objects' included, the marker."""
    if isinstance(value, dict):
        return {name: _counts_replaced(item) for name, item in value.items()}
    return _MISREPORTED if isinstance(value, int) and not isinstance(value, bool) else value
