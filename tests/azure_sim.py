"""A local HTTP server that speaks Azure OpenAI's wire format.

Why it exists: the gateway's tests, ``make run`` and the benchmark all need an upstream that behaves like
Azure OpenAI (dated ``api-version`` routes, ``api-key`` auth, Azure's error bodies, Azure's SSE quirks such as the
filter-only first event) without touching the network. It records every request it receives so tests can assert
exactly what the gateway sent upstream, and it can be told to misbehave (429, content filter, 5xx, HTML from a
proxy, a dropped stream, slow headers, slow chunks) per request via ``x-sim-*`` headers or globally via
``AzureSimulator.behaviour``.

It must stay cheap (the benchmark measures the gateway, not this): aiohttp.web, orjson, no access log, no
per-request work beyond what the answer needs.

Layout: constants and payload builders, then one handler per operation, then the route table (``OPERATIONS`` x
``SCOPES``), then the shared request pipeline (record, api-version, auth, deployment, knobs, faults), then the
threaded test harness and the CLI. New operations (images, audio, files, ...) add a handler and a table row.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import itertools
import os
import re
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import orjson
from aiohttp import web

try:  # uvloop (requirements-dev.txt) roughly halves the event loop's share of each request; asyncio otherwise
    import uvloop

    _new_event_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
except ImportError:  # pragma: no cover - e.g. Windows
    _new_event_loop = asyncio.new_event_loop

__all__ = ["FAIL_MODES", "AzureSimulator", "Behaviour", "RecordedRequest", "main"]

# --------------------------------------------------------------------------------------------- constants

CHAT_MODEL = "gpt-4o-2024-08-06"
COMPLETIONS_MODEL = "gpt-35-turbo-instruct"
EMBEDDINGS_MODEL = "text-embedding-ada-002"
SYSTEM_FINGERPRINT = "fp_sim0000000"
EMBEDDING_DIMENSIONS = 8
API_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
FAIL_MODES = frozenset({"429", "content_filter", "500", "html", "abort"})
RETRY_AFTER_SECONDS = 7

JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream; charset=utf-8"

_SAFE = {"filtered": False, "severity": "safe"}
_NOT_DETECTED = {"filtered": False, "detected": False}
# What Azure attaches to a prompt, to a non-streamed choice and to a streamed content chunk respectively.
PROMPT_FILTER = {"hate": _SAFE, "jailbreak": _NOT_DETECTED, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}
CHOICE_FILTER = {
    "hate": _SAFE,
    "protected_material_code": _NOT_DETECTED,
    "protected_material_text": _NOT_DETECTED,
    "self_harm": _SAFE,
    "sexual": _SAFE,
    "violence": _SAFE,
}
CHUNK_FILTER = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}
PROMPT_FILTER_RESULTS = [{"prompt_index": 0, "content_filter_results": PROMPT_FILTER}]

DONE_EVENT = b"data: [DONE]\n\n"

ERR_NOT_FOUND = {"code": "404", "message": "Resource not found"}
ERR_API_VERSION = {"code": "BadRequest", "message": "API version not supported"}
ERR_AUTH = {
    "code": "401",
    "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
    "key for an active subscription and use a correct regional API endpoint for your resource.",
}
ERR_DEPLOYMENT = {
    "code": "DeploymentNotFound",
    "message": "The API deployment for this resource does not exist. If you created the deployment within the last "
    "5 minutes, please wait a moment and try again.",
}
ERR_INVALID_JSON = {
    "message": "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
    "type": "invalid_request_error",
    "param": None,
    "code": None,
}
ERR_SERVER = {
    "message": "The server had an error while processing your request. Sorry about that!",
    "type": "server_error",
    "param": None,
    "code": "InternalServerError",
}
# The real payload Azure sends when the prompt is blocked (use-blocklists.md): note `innererror`,
# `content_filter_result` (singular) and `type: null`, all unlike the published schema.
ERR_CONTENT_FILTER = {
    "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
    "Please modify your prompt and retry. To learn more about our content filtering policies please read our "
    "documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
    "type": None,
    "param": "prompt",
    "code": "content_filter",
    "status": 400,
    "innererror": {
        "code": "ResponsibleAIPolicyViolation",
        "content_filter_result": {
            "hate": _SAFE,
            "self_harm": _SAFE,
            "sexual": {"filtered": True, "severity": "high"},
            "violence": _SAFE,
        },
    },
}
HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>"
    b"\r\n<hr><center>Microsoft-Azure-Application-Gateway/v2</center>\r\n</body>\r\n</html>\r\n"
)

_RUN_ID = os.urandom(4).hex()
_ids = itertools.count(1)


def _next_id(prefix: str) -> str:
    """A unique, cheap id (no uuid4 per request): prefix + per-process salt + counter."""
    return f"{prefix}{_RUN_ID}{next(_ids):012d}"


# --------------------------------------------------------------------------------------------- public types


@dataclass(slots=True)
class Behaviour:
    """Defaults applied to every request unless it overrides them with ``x-sim-*`` headers.

    Tests mutate it directly (``sim.behaviour.chunk_delay = 0.2``); ``AzureSimulator.reset()`` restores it in place,
    so references held by tests stay valid.
    """

    chunk_delay: float = 0.0  # seconds between SSE events                    (x-sim-chunk-delay-ms)
    delay: float = 0.0  # seconds before response headers                     (x-sim-delay-ms)
    fail: str | None = None  # one of FAIL_MODES                              (x-sim-fail)
    annotations: bool = False  # add an async-filter annotation event         (x-sim-annotations: 1)
    chunks: int = 5  # content pieces per stream                              (x-sim-chunks)

    def reset(self) -> None:
        for f in fields(self):
            setattr(self, f.name, f.default)

    def for_request(self, headers: Mapping[str, str]) -> Behaviour:
        """The effective behaviour for one request: these defaults overridden by its ``x-sim-*`` headers.

        Raises ValueError on a malformed header or an unknown fail mode, so a typo in a test fails loudly.
        """
        get = headers.get
        chunk_delay = _ms_header(get("x-sim-chunk-delay-ms"), self.chunk_delay)
        delay = _ms_header(get("x-sim-delay-ms"), self.delay)
        fail = get("x-sim-fail", self.fail) or None
        if fail is not None and fail not in FAIL_MODES:
            raise ValueError(f"x-sim-fail must be one of {sorted(FAIL_MODES)}, got {fail!r}")
        raw_annotations = get("x-sim-annotations")
        annotations = self.annotations if raw_annotations is None else raw_annotations.lower() in ("1", "true", "yes")
        raw_chunks = get("x-sim-chunks")
        chunks = self.chunks if raw_chunks is None else int(raw_chunks)
        if chunks < 1:
            raise ValueError("x-sim-chunks must be >= 1")
        return Behaviour(chunk_delay, delay, fail, annotations, chunks)


def _ms_header(raw: str | None, default_seconds: float) -> float:
    if raw is None:
        return default_seconds
    value = float(raw) / 1000.0
    if value < 0:
        raise ValueError("x-sim delays must be >= 0")
    return value


@dataclass(slots=True)
class RecordedRequest:
    """One request as the simulator received it, plus how its response ended.

    ``disconnected``: the client went away before the simulator finished its response (mid-stream, or during an
    ``x-sim-delay-ms`` wait); this is how tests prove the gateway cancels upstream work. ``completed``: the whole
    response was written. ``aborted``: the simulator itself dropped the connection (``x-sim-fail: abort``).
    """

    method: str
    path: str
    query: dict[str, str]
    raw_query: str
    headers: dict[str, str]  # lower-cased names; a repeated header keeps its last value
    header_list: list[tuple[str, str]]  # every header line as received (lower-cased names), repeats included
    body: bytes
    json: Any  # parsed body, or None when empty / not JSON
    received_at: float = 0.0  # time.monotonic()
    disconnected: bool = False
    completed: bool = False
    aborted: bool = False


# --------------------------------------------------------------------------------------------- routing model

Handler = Callable[["Call"], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Scope:
    """A family of routes: how they are prefixed, whether api-version is mandatory, where the model comes from."""

    name: str
    prefixes: tuple[str, ...]
    api_version_required: bool
    deployment_in_path: bool  # True: model is fixed per operation (Azure); False: echo body["model"] (serverless)


AZURE = Scope("azure", ("/openai/deployments/{deployment}/",), api_version_required=True, deployment_in_path=True)
SERVERLESS = Scope("serverless", ("/v1/", "/"), api_version_required=False, deployment_in_path=False)
SCOPES: tuple[Scope, ...] = (AZURE, SERVERLESS)


@dataclass(frozen=True, slots=True)
class Operation:
    """One upstream operation: its path suffix, Azure's operation id (used in 429 messages), its model, handler."""

    path: str
    azure_name: str
    model: str
    handler: Handler
    streams: bool = False  # honours "stream": true (matters for x-sim-fail: abort)


@dataclass(slots=True)
class Call:
    """A request that passed the shared checks, as an operation handler sees it."""

    request: web.Request
    record: RecordedRequest
    body: dict[str, Any]
    model: str
    behaviour: Behaviour  # effective for this request


# --------------------------------------------------------------------------------------------- small helpers


def _words(text: str) -> int:
    """Deterministic stand-in for a tokenizer."""
    return len(text.split())


def _content_text(content: Any) -> str:
    """Text of a message's content, which may be a string, None or a list of typed parts (text parts joined)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        )
    return ""


def _last_user_text(messages: Sequence[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _content_text(message.get("content"))
    return ""


def _split(text: str, pieces: int) -> list[str]:
    """Exactly ``pieces`` consecutive slices of ``text`` (some empty if the text is shorter), joining back to it."""
    n = len(text)
    return [text[i * n // pieces : (i + 1) * n // pieces] for i in range(pieces)]


def _usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "completion_tokens": completion_tokens,
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _chat_usage(prompt_tokens: int, completion_tokens: int) -> dict[str, Any]:
    """Azure's chat usage, keys sorted as Azure sends them."""
    return {
        "completion_tokens": completion_tokens,
        "completion_tokens_details": {
            "accepted_prediction_tokens": 0,
            "audio_tokens": 0,
            "reasoning_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
        "prompt_tokens": prompt_tokens,
        "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": 0},
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _sse(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


# Azure's first stream event: prompt filter results only, with empty id/object/model. Constant, so built once.
FILTER_ONLY_EVENT = _sse(
    {"choices": [], "created": 0, "id": "", "model": "", "object": "", "prompt_filter_results": PROMPT_FILTER_RESULTS}
)


def _headers(request: web.Request, content_type: str) -> dict[str, str]:
    """Headers Azure puts on every answer; a gateway may pass them through or strip them."""
    request_id = _next_id("")
    headers = {
        "Content-Type": content_type,
        "apim-request-id": request_id,
        "x-request-id": request_id,
        "x-ms-region": "Sim Central",
        "x-ratelimit-remaining-requests": "99",
        "x-ratelimit-remaining-tokens": "99000",
    }
    client_request_id = request.headers.get("x-ms-client-request-id")
    if client_request_id is not None:
        headers["x-ms-client-request-id"] = client_request_id
    return headers


def _json(request: web.Request, obj: Any, status: int = 200, extra: Mapping[str, str] | None = None) -> web.Response:
    headers = _headers(request, JSON_TYPE)
    if extra:
        headers.update(extra)
    return web.Response(body=orjson.dumps(obj), status=status, headers=headers)


def _error(
    request: web.Request, status: int, error: Mapping[str, Any], extra: Mapping[str, str] | None = None
) -> web.Response:
    return _json(request, {"error": error}, status, extra)


def _bad_request(request: web.Request, message: str, param: str | None = None) -> web.Response:
    """A validation error in the OpenAI-compatible shape Azure uses for body problems."""
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    return _error(request, 400, error)


def _wants_stream(body: Mapping[str, Any]) -> bool:
    return body.get("stream") is True


def _include_usage(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


# --------------------------------------------------------------------------------------------- streaming


@dataclass(slots=True)
class SseScript:
    """A stream in three parts, so ``x-sim-fail: abort`` can cut it after two ``content`` events."""

    head: list[bytes]
    content: list[bytes]
    tail: list[bytes]


async def _send_sse(call: Call, script: SseScript) -> web.StreamResponse:
    """Write each event separately (one transport write each) with the chunk delay between events."""
    aborting = call.behaviour.fail == "abort"
    events = script.head + (script.content[:2] if aborting else script.content + script.tail)
    response = web.StreamResponse(headers=_headers(call.request, SSE_TYPE))
    await response.prepare(call.request)
    delay = call.behaviour.chunk_delay
    for i, event in enumerate(events):
        if i and delay > 0:
            await asyncio.sleep(delay)
        await response.write(event)
    if aborting:
        _drop_connection(call.request, call.record)
    else:
        await response.write_eof()
    return response


def _drop_connection(request: web.Request, record: RecordedRequest) -> web.Response:
    """Close the socket without finishing the response (what a crashing upstream looks like to a client).

    Returns a placeholder that aiohttp will fail to write, which it handles silently.
    """
    record.aborted = True
    if request.transport is not None:
        request.transport.close()
    return web.Response()


def _stream_script(
    call: Call,
    *,
    object_name: str,
    response_id: str,
    answer: str,
    usage: dict[str, Any],
    content_choice: Callable[[str], dict[str, Any]],
    opening_choice: dict[str, Any] | None,
    finish_choice: dict[str, Any],
    fingerprint: bool,
) -> SseScript:
    """Azure's stream: filter-only event, [opening chunk], content chunks, [annotation], finish, [usage], [DONE]."""
    base: dict[str, Any] = {"created": int(time.time()), "id": response_id, "model": call.model, "object": object_name}
    if fingerprint:
        base["system_fingerprint"] = SYSTEM_FINGERPRINT
    include_usage = _include_usage(call.body)
    if include_usage:
        base["usage"] = None  # like OpenAI: every chunk but the last carries usage: null

    def chunk(choice: dict[str, Any]) -> bytes:
        return _sse({"choices": [choice], **base})

    head = [FILTER_ONLY_EVENT]
    if opening_choice is not None:
        head.append(chunk(opening_choice))
    content = [chunk(content_choice(piece)) for piece in _split(answer, call.behaviour.chunks)]
    tail = []
    if call.behaviour.annotations:
        tail.append(_annotation_event(len(answer)))
    tail.append(chunk(finish_choice))
    if include_usage:
        tail.append(_sse({"choices": [], **base, "usage": usage}))
    tail.append(DONE_EVENT)
    return SseScript(head, content, tail)


def _annotation_event(answer_length: int) -> bytes:
    """An async-filter annotation-only event: empty id/object, filter results and offsets, no delta."""
    choice = {
        "content_filter_offsets": {"check_offset": answer_length, "start_offset": 0, "end_offset": answer_length},
        "content_filter_results": CHUNK_FILTER,
        "finish_reason": None,
        "index": 0,
    }
    return _sse({"choices": [choice], "created": 0, "id": "", "model": "", "object": ""})


# --------------------------------------------------------------------------------------------- operations


async def chat_completions(call: Call) -> web.StreamResponse:
    """Chat completions: answer ``"Echo: " + last user text``, as Azure JSON or an Azure-flavoured SSE stream."""
    messages = call.body.get("messages")
    if not isinstance(messages, list) or not messages:
        return _bad_request(call.request, "'messages' is a required property", "messages")
    answer = "Echo: " + _last_user_text(messages)
    prompt_tokens = sum(_words(_content_text(m.get("content"))) for m in messages if isinstance(m, dict))
    usage = _chat_usage(prompt_tokens, _words(answer))
    response_id = _next_id("chatcmpl-")
    if _wants_stream(call.body):
        script = _stream_script(
            call,
            object_name="chat.completion.chunk",
            response_id=response_id,
            answer=answer,
            usage=usage,
            content_choice=_chat_content_choice,
            opening_choice={
                "content_filter_results": {},
                "delta": {"content": "", "refusal": None, "role": "assistant"},
                "finish_reason": None,
                "index": 0,
                "logprobs": None,
            },
            finish_choice={
                "content_filter_results": {},
                "delta": {},
                "finish_reason": "stop",
                "index": 0,
                "logprobs": None,
            },
            fingerprint=True,
        )
        return await _send_sse(call, script)
    return _json(
        call.request,
        {
            "choices": [
                {
                    "content_filter_results": CHOICE_FILTER,
                    "finish_reason": "stop",
                    "index": 0,
                    "logprobs": None,
                    "message": {"content": answer, "refusal": None, "role": "assistant"},
                }
            ],
            "created": int(time.time()),
            "id": response_id,
            "model": call.model,
            "object": "chat.completion",
            "prompt_filter_results": PROMPT_FILTER_RESULTS,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "usage": usage,
        },
    )


def _chat_content_choice(piece: str) -> dict[str, Any]:
    return {
        "content_filter_results": CHUNK_FILTER,
        "delta": {"content": piece},
        "finish_reason": None,
        "index": 0,
        "logprobs": None,
    }


async def completions(call: Call) -> web.StreamResponse:
    """Legacy completions: answer ``"Echo: " + prompt`` (the last prompt when a list is sent)."""
    prompts = _prompts(call.body.get("prompt", ""))
    if prompts is None:
        return _bad_request(call.request, "'prompt' must be a string, a list of strings or token arrays", "prompt")
    answer = "Echo: " + prompts[-1][0]
    usage = _usage(sum(tokens for _, tokens in prompts), _words(answer))
    response_id = _next_id("cmpl-")
    if _wants_stream(call.body):
        script = _stream_script(
            call,
            object_name="text_completion",
            response_id=response_id,
            answer=answer,
            usage=usage,
            content_choice=_text_choice,
            opening_choice=None,
            finish_choice={
                "content_filter_results": {},
                "finish_reason": "stop",
                "index": 0,
                "logprobs": None,
                "text": "",
            },
            fingerprint=False,
        )
        return await _send_sse(call, script)
    return _json(
        call.request,
        {
            "choices": [
                {
                    "content_filter_results": CHOICE_FILTER,
                    "finish_reason": "stop",
                    "index": 0,
                    "logprobs": None,
                    "text": answer,
                }
            ],
            "created": int(time.time()),
            "id": response_id,
            "model": call.model,
            "object": "text_completion",
            "prompt_filter_results": PROMPT_FILTER_RESULTS,
            "usage": usage,
        },
    )


def _text_choice(piece: str) -> dict[str, Any]:
    return {"content_filter_results": CHUNK_FILTER, "finish_reason": None, "index": 0, "logprobs": None, "text": piece}


def _prompts(prompt: Any) -> list[tuple[str, int]] | None:
    """Normalise a completions prompt to [(text, tokens)]; None if malformed."""
    items = _inputs(prompt)
    if items is None:
        return None
    return [(item, _words(item)) if isinstance(item, str) else (" ".join(map(str, item)), len(item)) for item in items]


def _inputs(value: Any) -> list[str | list[int]] | None:
    """A string, a token array, or a non-empty list of either, as a list of items; None if malformed."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(v, int) for v in value):
        return [value]
    if all(isinstance(v, str) or (isinstance(v, list) and all(isinstance(t, int) for t in v)) for v in value):
        return value
    return None


async def embeddings(call: Call) -> web.StreamResponse:
    """Embeddings: deterministic vectors derived from each input's bytes (float list or base64 float32)."""
    items = _inputs(call.body.get("input"))
    if items is None:
        return _bad_request(call.request, "'input' must be a string, a list of strings or token arrays", "input")
    dimensions = call.body.get("dimensions")
    if not isinstance(dimensions, int) or dimensions < 1:
        dimensions = EMBEDDING_DIMENSIONS
    as_base64 = call.body.get("encoding_format") == "base64"  # the openai SDK asks for base64 by default
    data = []
    tokens = 0
    for index, item in enumerate(items):
        if isinstance(item, str):
            tokens += _words(item)
            vector = _vector(item.encode(), dimensions)
        else:
            tokens += len(item)
            vector = _vector(orjson.dumps(item), dimensions)
        embedding: Any = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode() if as_base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return _json(
        call.request,
        {
            "object": "list",
            "data": data,
            "model": call.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        },
    )


def _vector(seed: bytes, dimensions: int) -> list[float]:
    """``dimensions`` floats in [-1, 1) that depend only on ``seed``."""
    raw = struct.unpack(f"<{dimensions}I", hashlib.shake_128(seed).digest(4 * dimensions))
    return [round(v / 2147483648.0 - 1.0, 6) for v in raw]


# The route table: every operation is served under every scope. Later issues add rows here.
OPERATIONS: tuple[Operation, ...] = (
    Operation("chat/completions", "ChatCompletions_Create", CHAT_MODEL, chat_completions, streams=True),
    Operation("completions", "Completions_Create", COMPLETIONS_MODEL, completions, streams=True),
    Operation("embeddings", "Embeddings_Create", EMBEDDINGS_MODEL, embeddings),
)


# --------------------------------------------------------------------------------------------- shared pipeline


def _check_api_version(request: web.Request, scope: Scope) -> web.Response | None:
    """Azure's answers: missing -> 404, malformed or repeated -> 400. Serverless: optional, but at most once."""
    values = request.query.getall("api-version", ())
    if len(values) > 1:
        return _error(request, 400, ERR_API_VERSION)
    if not values:
        return _error(request, 404, ERR_NOT_FOUND) if scope.api_version_required else None
    if scope.api_version_required and not API_VERSION_RE.match(values[0]):
        return _error(request, 400, ERR_API_VERSION)
    return None


def _request_key(request: web.Request) -> str | None:
    key = request.headers.get("api-key")
    if key:
        return key
    authorization = request.headers.get("Authorization", "")
    if authorization[:7].lower() == "bearer " and authorization[7:].strip():
        return authorization[7:].strip()
    return None


def _failure(request: web.Request, mode: str, operation: Operation) -> web.Response:
    """The canned error responses for ``x-sim-fail`` (every mode except ``abort``)."""
    if mode == "429":
        version = request.query.get("api-version", "unknown")
        message = (
            f"Requests to the {operation.azure_name} Operation under Azure OpenAI API version {version} have "
            "exceeded token rate limit of your current OpenAI S0 pricing tier. "
            f"Please retry after {RETRY_AFTER_SECONDS} seconds. Please go here: https://aka.ms/oai/quotaincrease "
            "if you would like to further increase the default rate limit."
        )
        extra = {"Retry-After": str(RETRY_AFTER_SECONDS), "x-ratelimit-remaining-requests": "0"}
        return _error(request, 429, {"code": "429", "message": message}, extra)
    if mode == "content_filter":
        return _error(request, 400, ERR_CONTENT_FILTER)
    if mode == "500":
        return _error(request, 500, ERR_SERVER)
    if mode == "html":
        return web.Response(body=HTML_502, status=502, headers=_headers(request, "text/html"))
    raise AssertionError(f"unhandled fail mode {mode!r}")


# --------------------------------------------------------------------------------------------- the simulator


class AzureSimulator:
    """An Azure OpenAI look-alike on 127.0.0.1.

    In tests: ``with AzureSimulator(api_keys={"k"}) as sim: ...`` runs it in a background thread with its own event
    loop. The CLI (``python -m tests.azure_sim``) serves the same app in the foreground.
    """

    def __init__(
        self,
        *,
        api_keys: set[str] | None = None,
        deployments: set[str] | None = None,
        record_requests: bool = True,
    ) -> None:
        self.api_keys = api_keys  # None: any key, but one must be present
        self.deployments = deployments  # None: any deployment name
        self.record_requests = record_requests  # the CLI turns this off so a long benchmark does not grow memory
        self.behaviour = Behaviour()
        self.requests: list[RecordedRequest] = []
        self.url = ""
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ----------------------------------------------------------------------- test-facing API

    def reset(self) -> None:
        """Forget recorded requests and restore default behaviour (in place)."""
        with self._lock:
            self.requests.clear()
        self.behaviour.reset()

    def start(self) -> AzureSimulator:
        """Serve on an ephemeral 127.0.0.1 port from a daemon thread; returns once the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError("simulator already started")
        sock = socket.create_server(("127.0.0.1", 0), backlog=1024)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        loop = _new_event_loop()
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            asyncio.set_event_loop(loop)
            try:
                runner = loop.run_until_complete(_start_runner(self.make_app(), sock))
            except BaseException as exc:  # surfaced to start()'s caller
                errors.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            try:
                loop.run_forever()
            finally:
                loop.run_until_complete(runner.cleanup())
                loop.close()

        self._loop = loop
        self._thread = threading.Thread(target=run, name="azure-sim", daemon=True)
        self._thread.start()
        ready.wait()
        if errors:
            self._thread = None
            raise errors[0]
        return self

    def stop(self) -> None:
        """Stop serving (in-flight handlers get a short grace period) and join the thread."""
        if self._thread is None or self._loop is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> AzureSimulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # ----------------------------------------------------------------------- server side

    def make_app(self) -> web.Application:
        """The aiohttp app: every operation under every scope, then an Azure-style 404 for anything else."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for scope in SCOPES:
            for operation in OPERATIONS:
                handler = self._endpoint(operation, scope)
                for prefix in scope.prefixes:
                    app.router.add_route("POST", prefix + operation.path, handler)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    async def _record(self, request: web.Request) -> RecordedRequest:
        body = await request.read()
        parsed: Any = None
        if body:
            try:
                parsed = orjson.loads(body)
            except orjson.JSONDecodeError:
                parsed = None
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            raw_query=request.query_string,
            headers={k.lower(): v for k, v in request.headers.items()},
            header_list=[(k.lower(), v) for k, v in request.headers.items()],
            body=body,
            json=parsed,
            received_at=time.monotonic(),
        )
        if self.record_requests:
            with self._lock:
                self.requests.append(record)
        return record

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        """Unknown paths answer like Azure and are recorded, so a test can see the gateway hit a wrong URL."""
        record = await self._record(request)
        record.completed = True
        return _error(request, 404, ERR_NOT_FOUND)

    def _endpoint(self, operation: Operation, scope: Scope) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Wrap an operation with recording and disconnect tracking."""

        async def handle(request: web.Request) -> web.StreamResponse:
            record = await self._record(request)
            try:
                response = await self._serve(request, record, operation, scope)
                if record.aborted:
                    return response
                if not response.prepared:  # write it here so `completed` means "the client has it all"
                    await response.prepare(request)
                    await response.write_eof()
                record.completed = True
                return response
            except asyncio.CancelledError:  # aiohttp cancels the handler when the client disconnects
                record.disconnected = not record.aborted
                raise
            except ConnectionError:  # a write hit a closed socket
                record.disconnected = not record.aborted
                return web.Response()

        handle.__name__ = f"{scope.name}_{operation.handler.__name__}"
        return handle

    async def _serve(
        self, request: web.Request, record: RecordedRequest, operation: Operation, scope: Scope
    ) -> web.StreamResponse:
        """The shared checks in Azure's order, then the configured delay and fault, then the operation."""
        rejected = _check_api_version(request, scope)
        if rejected is not None:
            return rejected
        key = _request_key(request)
        if key is None or (self.api_keys is not None and key not in self.api_keys):
            return _error(request, 401, ERR_AUTH)
        if scope.deployment_in_path and self.deployments is not None:
            if request.match_info["deployment"] not in self.deployments:
                return _error(request, 404, ERR_DEPLOYMENT)
        try:
            behaviour = self.behaviour.for_request(request.headers)
        except ValueError as exc:
            return _error(request, 400, {"code": "SimulatorBadHeader", "message": str(exc)})
        if behaviour.delay > 0:
            await asyncio.sleep(behaviour.delay)
        if behaviour.fail is not None and behaviour.fail != "abort":
            return _failure(request, behaviour.fail, operation)
        body = record.json
        if not isinstance(body, dict):
            return _error(request, 400, ERR_INVALID_JSON)
        if behaviour.fail == "abort" and not (operation.streams and _wants_stream(body)):
            return _drop_connection(request, record)
        model = operation.model
        if not scope.deployment_in_path and isinstance(body.get("model"), str):
            model = body["model"]
        return await operation.handler(Call(request, record, body, model, behaviour))


async def _start_runner(app: web.Application, sock: socket.socket) -> web.AppRunner:
    """Start ``app`` on an already bound socket: no access log (CPU), handlers cancelled on client disconnect."""
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True, shutdown_timeout=0.25)
    await runner.setup()
    await web.SockSite(runner, sock, backlog=1024).start()
    return runner


# --------------------------------------------------------------------------------------------- CLI


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m tests.azure_sim", description="Azure OpenAI wire-format simulator on 127.0.0.1."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--key", action="append", help="accepted api key (repeatable; default: any key)")
    parser.add_argument("--deployment", action="append", help="known deployment (repeatable; default: any)")
    parser.add_argument("--chunk-delay-ms", type=float, default=0.0, help="default delay between SSE events")
    return parser.parse_args(argv)


async def _serve_forever(sim: AzureSimulator, host: str, port: int) -> None:
    sock = socket.create_server((host, port), backlog=1024)
    runner = await _start_runner(sim.make_app(), sock)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stopping.set)
    print(f"azure-sim listening on http://{host}:{sock.getsockname()[1]}", flush=True)
    try:
        await stopping.wait()
    finally:
        await runner.cleanup()


def main(argv: Sequence[str] | None = None) -> int:
    """Run in the foreground until SIGINT/SIGTERM (used by ``make run`` and the benchmark)."""
    args = _parse_args(argv)
    sim = AzureSimulator(
        api_keys=set(args.key) if args.key else None,
        deployments=set(args.deployment) if args.deployment else None,
        record_requests=False,
    )
    sim.behaviour.chunk_delay = args.chunk_delay_ms / 1000.0
    with asyncio.Runner(loop_factory=_new_event_loop) as runner:
        runner.run(_serve_forever(sim, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
