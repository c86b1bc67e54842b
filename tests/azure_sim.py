"""A local HTTP server that speaks Azure OpenAI's wire format.

Why it exists: the gateway's tests, ``make run`` and the benchmark all need an upstream that behaves like
Azure OpenAI (dated ``api-version`` routes, ``api-key`` auth, Azure's error bodies, Azure's SSE quirks such as the
filter-only first event) without touching the network. It records every request it receives so tests can assert
exactly what the gateway sent upstream, and it can be told to misbehave (429, content filter, 5xx, HTML from a
proxy, a dropped stream, slow headers, slow chunks) per request via ``x-sim-*`` headers or globally via
``AzureSimulator.behaviour``.

Misbehaviours of a broken upstream, for the gateway's fault tests (see ``Behaviour`` and ``FAIL_MODES``):
``x-sim-drip-ms`` writes the answer body one byte at a time; ``x-sim-encoding`` compresses it (gzip, deflate) or
labels it with an encoding nobody can decode, whatever the request's accept-encoding; fail modes cut a byte answer
short (``truncate_chunked``, ``truncate_length``), keep a stream open after its ``[DONE]`` (``hang_after_done``),
answer ``x-sim-huge-bytes`` of JSON (``huge``, ``huge_chunked``, ``huge_error``), a non-standard status (``599``),
a redirect without Location (``302``), or a 200 JSON answer that is not JSON (``invalid_json``) or a list page
whose ``data`` is not a list of objects (``bad_list``).

It must stay cheap (the benchmark measures the gateway, not this): aiohttp.web, orjson, no access log, no
per-request work beyond what the answer needs.

Besides the deployment-scoped operations (chat, completions, embeddings, images, audio) it keeps stateful
resource-scoped objects in memory (assistants, threads, messages, runs and steps, vector stores, files, batches,
responses), served under the dated scheme ``/openai/{path}?api-version=`` and the Azure v1 scheme
``/openai/v1/{path}``. Each simulator instance is one region: its objects are its own (``AzureSimulator.store``) and
ids are random, so two instances never share one.

Layout: constants and payload builders, then one handler per operation, then the route table (``OPERATIONS`` x
``SCOPES``), then the resource store, its handlers and their table (``RESOURCES`` x ``RESOURCE_SCOPES``, each row
with an api-version ``Family``), then the shared request pipeline (read body, record, api-version, auth, deployment,
knobs, faults), then the threaded test harness and the CLI. New operations add a handler and a table row.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import itertools
import math
import os
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import orjson
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_response import ContentCoding

try:  # uvloop (requirements-dev.txt) roughly halves the event loop's share of each request; asyncio otherwise
    import uvloop

    _new_event_loop: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
except ImportError:  # pragma: no cover - e.g. Windows
    _new_event_loop = asyncio.new_event_loop

__all__ = ["FAIL_MODES", "AzureSimulator", "Behaviour", "RecordedRequest", "Store", "Upload", "main"]

# --------------------------------------------------------------------------------------------- constants

CHAT_MODEL = "gpt-4o-2024-08-06"
COMPLETIONS_MODEL = "gpt-35-turbo-instruct"
EMBEDDINGS_MODEL = "text-embedding-ada-002"
SYSTEM_FINGERPRINT = "fp_sim0000000"
EMBEDDING_DIMENSIONS = 8
IMAGES_MODEL = "dall-e-3"
TRANSCRIPTION_MODEL = "whisper"
SPEECH_MODEL = "tts"
API_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
V1_API_VERSIONS = frozenset({"v1", "preview"})
# Canned answers, sent instead of the operation's own (see _failure).
CANNED_FAIL_MODES = frozenset(
    {"429", "content_filter", "500", "503", "html", "599", "302", "huge", "huge_chunked", "huge_error", "invalid_json", "bad_list"}
)
# Faults in the middle of an answer the operation writes itself (see _send_sse and _send_chunks):
#   abort: drop the connection part-way (streams and byte answers; other answers before any byte)
#   truncate_chunked / truncate_length: cut a byte answer (speech, file content) half-way, sent chunked / with its
#     full content-length
#   hang_after_done: write a whole SSE stream, [DONE] included, then hold the connection open, unfinished
WRITER_FAIL_MODES = frozenset({"abort", "truncate_chunked", "truncate_length", "hang_after_done"})
FAIL_MODES = CANNED_FAIL_MODES | WRITER_FAIL_MODES
RETRY_AFTER_SECONDS = 7
AUDIO_BYTES = 65536  # default size of an audio/speech answer                          (x-sim-audio-bytes)
DOWNLOAD_CHUNK = 64 * 1024  # files/{id}/content is written in pieces of this size
HUGE_BYTES = 32 * 1024 * 1024  # size of a huge answer: more than a localhost socket buffers (x-sim-huge-bytes)
DECODABLE_ENCODINGS = {"gzip": ContentCoding.gzip, "deflate": ContentCoding.deflate}

JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
OCTET_TYPE = "application/octet-stream"
SPEECH_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
TRANSCRIPTION_FORMATS = frozenset({"json", "text", "verbose_json", "srt", "vtt"})

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
NAMED_DONE_EVENT = b"event: done\ndata: [DONE]\n\n"  # how an Assistants run stream ends

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
    audio_bytes: int = AUDIO_BYTES  # size of an audio/speech answer           (x-sim-audio-bytes)
    drip: float = 0.0  # write the body a byte at a time, this long apart     (x-sim-drip-ms)
    encoding: str | None = None  # gzip, deflate, or a label nobody decodes   (x-sim-encoding)
    huge_bytes: int = HUGE_BYTES  # size of a huge / huge_error answer        (x-sim-huge-bytes)
    retry_after_ms: float | None = None  # a 429's retry-after-ms (and Retry-After rounded up) (x-sim-retry-after-ms)
    fail_rate: float = 1.0  # the share of requests that fail as `fail` says  (x-sim-fail-rate)

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
        raw_audio_bytes = get("x-sim-audio-bytes")
        audio_bytes = self.audio_bytes if raw_audio_bytes is None else int(raw_audio_bytes)
        if audio_bytes < 0:
            raise ValueError("x-sim-audio-bytes must be >= 0")
        drip = _ms_header(get("x-sim-drip-ms"), self.drip)
        encoding = get("x-sim-encoding", self.encoding) or None
        raw_huge_bytes = get("x-sim-huge-bytes")
        huge_bytes = self.huge_bytes if raw_huge_bytes is None else int(raw_huge_bytes)
        if huge_bytes < 0:
            raise ValueError("x-sim-huge-bytes must be >= 0")
        raw_retry_after_ms = get("x-sim-retry-after-ms")
        retry_after_ms = self.retry_after_ms if raw_retry_after_ms is None else float(raw_retry_after_ms)
        fail_rate = float(get("x-sim-fail-rate", self.fail_rate))
        if fail is not None and fail_rate < 1.0 and random.random() >= fail_rate:
            fail = None
        return Behaviour(
            chunk_delay, delay, fail, annotations, chunks, audio_bytes, drip, encoding, huge_bytes, retry_after_ms,
            fail_rate,
        )


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
    operation: str = ""  # Azure's operation id of the matched route ("Runs_Create"); "" for an unknown path
    # multipart bodies (``body`` stays empty and ``json`` None): the non-file fields, and the first file part as
    # read (streamed, never held twice): its size, sha256 (hex) and file name
    form: dict[str, str] = field(default_factory=dict)
    upload_bytes: int = 0
    upload_sha256: str = ""
    upload_filename: str = ""


# --------------------------------------------------------------------------------------------- routing model

Handler = Callable[["Call"], Awaitable[web.StreamResponse]]

# How a route's body is read: a JSON object (required), a JSON object or nothing, or multipart/form-data.
JSON_BODY = "json"
OPTIONAL_JSON_BODY = "optional-json"
MULTIPART_BODY = "multipart"


@dataclass(frozen=True, slots=True)
class Scope:
    """A family of routes: how they are prefixed, which api-version they take, where the model comes from."""

    name: str
    prefixes: tuple[str, ...]
    api_version_required: bool  # True: a dated api-version is mandatory (Azure's legacy scheme)
    deployment_in_path: bool  # True: model is fixed per operation (Azure); False: echo body["model"] (serverless)
    api_versions: frozenset[str] | None = None  # when set, the only values an (optional) api-version may take
    model_is_deployment: bool = False  # body["model"] is required and names a deployment (Azure v1)


AZURE = Scope("azure", ("/openai/deployments/{deployment}/",), api_version_required=True, deployment_in_path=True)
SERVERLESS = Scope("serverless", ("/v1/", "/"), api_version_required=False, deployment_in_path=False)
AZURE_V1 = Scope(
    "azure-v1",
    ("/openai/v1/",),
    api_version_required=False,
    deployment_in_path=False,
    api_versions=V1_API_VERSIONS,
    model_is_deployment=True,
)
AZURE_RESOURCE = Scope("azure-resource", ("/openai/",), api_version_required=True, deployment_in_path=False)
SCOPES: tuple[Scope, ...] = (AZURE, SERVERLESS, AZURE_V1)  # where deployment-scoped OPERATIONS are served
RESOURCE_SCOPES: tuple[Scope, ...] = (AZURE_RESOURCE, AZURE_V1)  # where RESOURCES are served


@dataclass(frozen=True, slots=True)
class Family:
    """Which dated api-versions a resource family accepts (the v1 scheme accepts every family)."""

    name: str
    min_preview: str | None = None  # None: any valid dated version; else a `-preview` version dated >= this


ASSISTANTS_API = Family("assistants", "2024-02-15")  # assistants, threads, vector stores
RESPONSES_API = Family("responses", "2025-03-01")
ANY_API_VERSION = Family("files/batches")


@dataclass(frozen=True, slots=True)
class Operation:
    """One upstream operation: its path suffix, Azure's operation id (used in 429 messages), its model, handler."""

    path: str
    azure_name: str
    model: str
    handler: Handler
    streams: bool = False  # honours "stream": true (matters for x-sim-fail: abort)
    body: str = JSON_BODY
    scopes: tuple[Scope, ...] = SCOPES
    always_streams: bool = False  # writes its answer in pieces and handles x-sim-fail: abort itself
    keep_upload: bool = False  # keep the file parts' bytes (not just their size and hash)


@dataclass(frozen=True, slots=True)
class Resource:
    """One resource-scoped route: method, path under the scope prefix (aiohttp pattern), operation id, handler."""

    method: str
    path: str
    azure_name: str
    family: Family
    handler: Handler
    body: str = OPTIONAL_JSON_BODY
    streams: bool = False
    always_streams: bool = False
    keep_upload: bool = False


Route = Operation | Resource


@dataclass(slots=True)
class Upload:
    """A file part of a multipart body: read in chunks, hashed as it arrives; bytes kept only if the route asks."""

    field: str
    filename: str
    content_type: str
    size: int
    sha256: str
    data: bytearray | None = None


@dataclass(slots=True)
class Call:
    """A request that passed the shared checks, as an operation handler sees it."""

    request: web.Request
    record: RecordedRequest
    body: dict[str, Any]  # the JSON object, or the non-file fields of a multipart body
    model: str
    behaviour: Behaviour  # effective for this request
    sim: AzureSimulator | None = None
    uploads: dict[str, Upload] = field(default_factory=dict)  # multipart file parts by field name

    @property
    def store(self) -> Store:
        assert self.sim is not None
        return self.sim.store


class Reject(Exception):
    """Raised by a handler to answer ``{"error": error}`` with ``status`` (the pipeline turns it into a response)."""

    def __init__(self, status: int, error: Mapping[str, Any]) -> None:
        super().__init__(error.get("message"))
        self.status = status
        self.error = error


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


def _invalid(message: str, param: str | None = None) -> Reject:
    return Reject(400, {"message": message, "type": "invalid_request_error", "param": param, "code": None})


def _missing(param: str) -> Reject:
    return _invalid(f"Missing required parameter: '{param}'.", param)


def _no_such(kind: str, object_id: str) -> Reject:
    """OpenAI's (and Azure's) answer for an id this region does not hold."""
    message = f"No {kind} found with id '{object_id}'."
    return Reject(404, {"message": message, "type": "invalid_request_error", "param": None, "code": None})


def _event(name: str, obj: Any) -> bytes:
    """A named SSE event (Assistants and Responses streams), serialised at once so later changes do not leak in."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"


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
    fail = call.behaviour.fail
    aborting = fail == "abort"
    events = script.head + (script.content[:2] if aborting else script.content + script.tail)
    response = web.StreamResponse(headers=_headers(call.request, SSE_TYPE))
    _encode(response, call.behaviour)
    await response.prepare(call.request)
    delay = call.behaviour.chunk_delay
    for i, event in enumerate(events):
        if i and delay > 0:
            await asyncio.sleep(delay)
        await _write(response, event, call.behaviour)
    if aborting:
        _drop_connection(call.request, call.record)
    elif fail == "hang_after_done":
        await asyncio.sleep(3600)  # until the client goes away (aiohttp then cancels this handler)
    else:
        await response.write_eof()
    return response


_CUTTING_MODES = frozenset({"abort", "truncate_chunked", "truncate_length"})


async def _send_chunks(
    call: Call, pieces: Iterable[bytes], content_type: str, length: int | None = None
) -> web.StreamResponse:
    """Write a binary answer piece by piece with the chunk delay between pieces; ``abort`` and the ``truncate_*``
    modes drop it part-way (``truncate_length`` announcing the whole length, ``truncate_chunked`` none)."""
    fail = call.behaviour.fail
    if fail == "truncate_length" and length is None:
        pieces = list(pieces)
        length = sum(map(len, pieces))
    elif fail == "truncate_chunked":
        length = None
    response = web.StreamResponse(headers=_headers(call.request, content_type))
    if length is not None:
        response.content_length = length
    _encode(response, call.behaviour)
    await response.prepare(call.request)
    delay = call.behaviour.chunk_delay
    cutting = fail in _CUTTING_MODES
    for i, piece in enumerate(pieces):
        if cutting:  # half of the first piece, so the answer is always cut short
            await _write(response, piece[: len(piece) // 2], call.behaviour)
            break
        if i and delay > 0:
            await asyncio.sleep(delay)
        await _write(response, piece, call.behaviour)
    if cutting:
        _drop_connection(call.request, call.record)
    else:
        await response.write_eof()
    return response


async def _write(response: web.StreamResponse, data: bytes, behaviour: Behaviour) -> None:
    """One write, or with ``x-sim-drip-ms`` one byte at a time, each that long after the previous one."""
    if behaviour.drip <= 0:
        await response.write(data)
        return
    for i in range(len(data)):
        await asyncio.sleep(behaviour.drip)
        await response.write(data[i : i + 1])


async def _drip(request: web.Request, response: web.Response, behaviour: Behaviour) -> web.StreamResponse:
    """A whole answer (built by a handler, not yet sent) written a byte at a time."""
    body = response.body
    assert isinstance(body, bytes)
    dripping = web.StreamResponse(status=response.status, headers=response.headers)
    dripping.content_length = len(body)
    await dripping.prepare(request)
    await _write(dripping, body, behaviour)
    await dripping.write_eof()
    return dripping


def _encode(response: web.StreamResponse, behaviour: Behaviour | None) -> None:
    """Compress the answer as ``x-sim-encoding`` says, whatever the request's accept-encoding (an upstream that
    ignores ``identity``); another value only labels the plain bytes with an encoding nobody can decode."""
    if behaviour is None or behaviour.encoding is None:
        return
    coding = DECODABLE_ENCODINGS.get(behaviour.encoding)
    if coding is not None:
        response.enable_compression(force=coding)
    else:
        response.headers["Content-Encoding"] = behaviour.encoding


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


# Azure attaches these to every generated image (dalleContentFilterResults / dalleFilterResults).
IMAGE_CONTENT_FILTER = {"hate": _SAFE, "self_harm": _SAFE, "sexual": _SAFE, "violence": _SAFE}
IMAGE_PROMPT_FILTER = {**IMAGE_CONTENT_FILTER, "jailbreak": _NOT_DETECTED, "profanity": _NOT_DETECTED}
_image_numbers = itertools.count(1)


def _png(seed: bytes) -> bytes:
    """A valid 1x1 RGB PNG whose colour depends only on ``seed``."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + hashlib.sha256(seed).digest()[:3])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _images_answer(prompt: str, n: Any, response_format: Any) -> dict[str, Any]:
    if isinstance(n, str) and n.isdigit():  # a multipart field
        n = int(n)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10:
        raise _invalid("'n' must be an integer between 1 and 10", "n")
    if response_format not in ("url", "b64_json"):
        raise _invalid("'response_format' must be one of 'url', 'b64_json'", "response_format")
    data = []
    for index in range(n):
        image: dict[str, Any] = {}
        if response_format == "url":
            image["url"] = f"https://sim.invalid/img/{next(_image_numbers)}.png"
        else:
            image["b64_json"] = base64.b64encode(_png(f"{index}:{prompt}".encode())).decode()
        image["revised_prompt"] = prompt
        image["content_filter_results"] = IMAGE_CONTENT_FILTER
        image["prompt_filter_results"] = IMAGE_PROMPT_FILTER
        data.append(image)
    return {"created": int(time.time()), "data": data}


async def image_generations(call: Call) -> web.StreamResponse:
    """Images: one URL (``https://sim.invalid/img/N.png``) or a tiny base64 PNG per requested image."""
    prompt = call.body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise _missing("prompt")
    answer = _images_answer(prompt, call.body.get("n", 1), call.body.get("response_format") or "url")
    return _json(call.request, answer)


async def image_edits(call: Call) -> web.StreamResponse:
    """Image edits: multipart with an ``image`` file part (``image[]`` too) and a ``prompt`` field."""
    if not any(name == "image" or name.startswith("image[") for name in call.uploads):
        raise _missing("image")
    prompt = call.body.get("prompt")
    if not prompt:
        raise _missing("prompt")
    answer = _images_answer(prompt, call.body.get("n", "1"), call.body.get("response_format") or "url")
    return _json(call.request, answer)


def _audio_text(call: Call, verb: str) -> web.StreamResponse:
    """Transcriptions and translations: the text names the upload, rendered in the requested response_format."""
    upload = call.uploads.get("file")
    if upload is None:
        raise _missing("file")
    response_format = call.body.get("response_format") or "json"
    if response_format not in TRANSCRIPTION_FORMATS:
        raise _invalid(f"'response_format' must be one of {sorted(TRANSCRIPTION_FORMATS)}", "response_format")
    text = f"{verb} {upload.size} bytes of {upload.filename}"
    if response_format == "json":
        return _json(call.request, {"text": text})
    duration = round(max(upload.size, 1) / 32000, 2)  # as if 16 kHz, 16-bit mono
    if response_format == "verbose_json":
        segment = {
            "id": 0,
            "seek": 0,
            "start": 0.0,
            "end": duration,
            "text": text,
            "tokens": [],
            "temperature": 0.0,
            "avg_logprob": 0.0,
            "compression_ratio": 1.0,
            "no_speech_prob": 0.0,
        }
        task = "transcribe" if verb == "Transcribed" else "translate"
        answer = {"task": task, "language": "english", "duration": duration, "text": text, "segments": [segment]}
        return _json(call.request, answer)
    if response_format == "srt":
        body = f"1\n00:00:00,000 --> 00:00:01,000\n{text}\n\n"
    elif response_format == "vtt":
        body = f"WEBVTT\n\n00:00:00.000 --> 00:00:01.000\n{text}\n\n"
    else:
        body = text
    return web.Response(body=body.encode(), headers=_headers(call.request, TEXT_TYPE))


async def audio_transcriptions(call: Call) -> web.StreamResponse:
    return _audio_text(call, "Transcribed")


async def audio_translations(call: Call) -> web.StreamResponse:
    return _audio_text(call, "Translated")


def _speech_header(response_format: str, size: int) -> bytes:
    if response_format == "mp3":
        return b"ID3\x04\x00\x00\x00\x00\x00\x00"
    if response_format == "wav":  # 24 kHz, 16-bit mono PCM, like OpenAI's
        fmt = struct.pack("<IHHIIHH", 16, 1, 1, 24000, 48000, 2, 16)
        sizes = struct.pack("<I", max(size - 8, 0)), struct.pack("<I", max(size - 44, 0))
        return b"RIFF" + sizes[0] + b"WAVEfmt " + fmt + b"data" + sizes[1]
    return b""


def _speech_slice(header: bytes, block: bytes, start: int, end: int) -> bytes:
    """Bytes ``start:end`` of ``header + block + block + ...`` without building the whole thing."""
    parts = []
    if start < len(header):
        parts.append(header[start : min(end, len(header))])
        start = len(header)
    if start < end:
        offset = (start - len(header)) % len(block)
        count = end - start
        parts.append((block * ((offset + count) // len(block) + 1))[offset : offset + count])
    return b"".join(parts)


async def audio_speech(call: Call) -> web.StreamResponse:
    """Text to speech: ``x-sim-audio-bytes`` deterministic bytes (from input and voice), written in several chunks."""
    text = call.body.get("input")
    if not isinstance(text, str) or not text:
        raise _missing("input")
    voice = call.body.get("voice")
    if not isinstance(voice, str) or not voice:
        raise _missing("voice")
    response_format = call.body.get("response_format") or "mp3"
    if response_format not in SPEECH_TYPES:
        raise _invalid(f"'response_format' must be one of {sorted(SPEECH_TYPES)}", "response_format")
    size = call.behaviour.audio_bytes
    header = _speech_header(response_format, size)[:size]
    block = hashlib.shake_128(f"{voice}:{text}".encode()).digest(4096)
    pieces = call.behaviour.chunks
    bounds = [i * size // pieces for i in range(pieces + 1)]
    chunks = (_speech_slice(header, block, bounds[i], bounds[i + 1]) for i in range(pieces))
    return await _send_chunks(call, chunks, SPEECH_TYPES[response_format])


# The route table: each operation is served under each of its scopes (all of SCOPES unless the row says otherwise).
DEPLOYMENT_ONLY = (AZURE,)
OPERATIONS: tuple[Operation, ...] = (
    Operation("chat/completions", "ChatCompletions_Create", CHAT_MODEL, chat_completions, streams=True),
    Operation("completions", "Completions_Create", COMPLETIONS_MODEL, completions, streams=True),
    Operation("embeddings", "Embeddings_Create", EMBEDDINGS_MODEL, embeddings),
    Operation("images/generations", "ImageGenerations_Create", IMAGES_MODEL, image_generations, scopes=DEPLOYMENT_ONLY),
    Operation(
        "images/edits", "ImageEdits_Create", IMAGES_MODEL, image_edits, body=MULTIPART_BODY, scopes=DEPLOYMENT_ONLY
    ),
    Operation(
        "audio/transcriptions",
        "Transcriptions_Create",
        TRANSCRIPTION_MODEL,
        audio_transcriptions,
        body=MULTIPART_BODY,
        scopes=DEPLOYMENT_ONLY,
    ),
    Operation(
        "audio/translations",
        "Translations_Create",
        TRANSCRIPTION_MODEL,
        audio_translations,
        body=MULTIPART_BODY,
        scopes=DEPLOYMENT_ONLY,
    ),
    Operation(
        "audio/speech", "Speech_Create", SPEECH_MODEL, audio_speech, scopes=DEPLOYMENT_ONLY, always_streams=True
    ),
)


# --------------------------------------------------------------------------------------------- resources (stateful)

ACTIVE_RUN_STATES = frozenset({"queued", "in_progress", "requires_action", "cancelling"})
CHUNKING_STRATEGY = {"type": "static", "static": {"max_chunk_size_tokens": 800, "chunk_overlap_tokens": 400}}


def _now() -> int:
    return int(time.time())


def _object_id(prefix: str) -> str:
    """Random (not a counter): ids stay unique across simulator instances and processes, as across Azure regions."""
    return prefix + os.urandom(12).hex()


class Store:
    """One region's objects. Handlers run on the simulator's event loop and take ``lock`` while they read or change
    the store; a test thread that inspects it directly should take it too."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.assistants: dict[str, dict[str, Any]] = {}
        self.threads: dict[str, dict[str, Any]] = {}
        self.messages: dict[str, dict[str, dict[str, Any]]] = {}  # thread id -> message id -> message
        self.runs: dict[str, dict[str, dict[str, Any]]] = {}  # thread id -> run id -> run
        self.steps: dict[str, dict[str, dict[str, Any]]] = {}  # run id -> step id -> step
        self.vector_stores: dict[str, dict[str, Any]] = {}
        self.vector_store_files: dict[str, dict[str, dict[str, Any]]] = {}  # store id -> file id -> file
        self.file_batches: dict[str, dict[str, dict[str, Any]]] = {}  # store id -> batch id -> batch
        self.files: dict[str, dict[str, Any]] = {}
        self.file_contents: dict[str, bytearray] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.responses: dict[str, dict[str, Any]] = {}
        self.response_inputs: dict[str, list[dict[str, Any]]] = {}  # response id -> its input items

    def clear(self) -> None:
        with self.lock:
            for value in vars(self).values():
                if isinstance(value, dict):
                    value.clear()


def _lookup(table: Mapping[str, dict[str, Any]], kind: str, object_id: str) -> dict[str, Any]:
    found = table.get(object_id)
    if found is None:
        raise _no_such(kind, object_id)
    return found


def _ascending(objects: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """By created_at; the sort is stable, so ties keep creation order (the dicts' insertion order)."""
    return sorted(objects, key=lambda o: o["created_at"])


def _page(request: web.Request, ascending: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """OpenAI's cursor list: ``limit`` (1-100, default 20), ``order`` (default desc), ``after`` / ``before`` ids."""
    query = request.query
    raw_limit = query.get("limit", "20")
    limit = int(raw_limit) if raw_limit.isdigit() else 0
    if not 1 <= limit <= 100:
        raise _invalid("Invalid 'limit': integer below minimum value or above maximum value (1-100).", "limit")
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise _invalid("Invalid 'order': must be one of 'asc', 'desc'.", "order")
    items = list(ascending) if order == "asc" else list(reversed(ascending))
    after, before = query.get("after"), query.get("before")
    if after:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1 :] if after in ids else []
    if before:
        ids = [item["id"] for item in items]
        items = items[: ids.index(before)] if before in ids else []
        page = items[-limit:]  # the page just before the cursor
    else:
        page = items[:limit]
    return {
        "object": "list",
        "data": page,
        "first_id": page[0]["id"] if page else None,
        "last_id": page[-1]["id"] if page else None,
        "has_more": len(items) > limit,
    }


def _metadata(body: Mapping[str, Any], default: Any = None) -> dict[str, Any]:
    metadata = body.get("metadata")
    if metadata is None:
        return {} if default is None else default
    if not isinstance(metadata, dict):
        raise _invalid("Invalid type for 'metadata': expected an object.", "metadata")
    return metadata


def _string(body: Mapping[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise _missing(name)
    return value


def _string_list(body: Mapping[str, Any], name: str, required: bool = False) -> list[str]:
    value = body.get(name)
    if value is None and not required:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or (required and not value):
        raise _invalid(f"Invalid '{name}': expected a non-empty array of strings.", name)
    return value


def _check_deployment(call: Call, model: str) -> None:
    """A body ``model`` names a deployment: unknown ones fail the way Azure fails them (400 DeploymentNotFound)."""
    deployments = call.sim.deployments if call.sim is not None else None
    if deployments is not None and model not in deployments:
        raise Reject(400, ERR_DEPLOYMENT)


def _deleted(object_id: str, object_name: str) -> dict[str, Any]:
    return {"id": object_id, "object": object_name, "deleted": True}


# ----------------------------------------------------------------------- assistants

ASSISTANT_FIELDS = (
    "name",
    "description",
    "instructions",
    "tools",
    "tool_resources",
    "metadata",
    "temperature",
    "top_p",
    "response_format",
)


def _apply_fields(target: dict[str, Any], body: Mapping[str, Any], names: Iterable[str]) -> None:
    """Copy the fields the body sets (null leaves a field alone), checking the few that have a shape."""
    for name in names:
        value = body.get(name)
        if value is None:
            continue
        if name == "tools" and not (isinstance(value, list) and all(isinstance(t, dict) for t in value)):
            raise _invalid("Invalid 'tools': expected an array of objects.", "tools")
        if name in ("metadata", "tool_resources") and not isinstance(value, dict):
            raise _invalid(f"Invalid type for '{name}': expected an object.", name)
        target[name] = value


async def create_assistant(call: Call) -> web.StreamResponse:
    model = _string(call.body, "model")  # stored and echoed exactly as sent: a deployment name on Azure
    _check_deployment(call, model)
    assistant: dict[str, Any] = {
        "id": _object_id("asst_"),
        "object": "assistant",
        "created_at": _now(),
        "name": None,
        "description": None,
        "model": model,
        "instructions": None,
        "tools": [],
        "tool_resources": {},
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "response_format": "auto",
    }
    _apply_fields(assistant, call.body, ASSISTANT_FIELDS)
    with call.store.lock:
        call.store.assistants[assistant["id"]] = assistant
    return _json(call.request, assistant)


async def list_assistants(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return _json(call.request, _page(call.request, _ascending(call.store.assistants.values())))


async def get_assistant(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return _json(call.request, _lookup(call.store.assistants, "assistant", call.request.match_info["assistant_id"]))


async def modify_assistant(call: Call) -> web.StreamResponse:
    with call.store.lock:
        assistant = _lookup(call.store.assistants, "assistant", call.request.match_info["assistant_id"])
        changed = dict(assistant)
        if call.body.get("model") is not None:
            changed["model"] = _string(call.body, "model")
            _check_deployment(call, changed["model"])
        _apply_fields(changed, call.body, ASSISTANT_FIELDS)
        assistant.update(changed)
        return _json(call.request, assistant)


async def delete_assistant(call: Call) -> web.StreamResponse:
    assistant_id = call.request.match_info["assistant_id"]
    with call.store.lock:
        _lookup(call.store.assistants, "assistant", assistant_id)
        del call.store.assistants[assistant_id]
    return _json(call.request, _deleted(assistant_id, "assistant.deleted"))


# ----------------------------------------------------------------------- threads and messages


def _message_content(content: Any) -> list[dict[str, Any]]:
    """A message's content as stored: text parts become ``{"type": "text", "text": {"value", "annotations"}}``."""
    if isinstance(content, str):
        return [{"type": "text", "text": {"value": content, "annotations": []}}]
    if isinstance(content, list) and content:
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                parts.append({"type": "text", "text": {"value": part["text"], "annotations": []}})
            elif isinstance(part, dict) and part.get("type") in ("image_file", "image_url"):
                parts.append(part)
            else:
                raise _invalid("Invalid 'content': expected text, image_file or image_url parts.", "content")
        return parts
    raise _missing("content")


def _message_text(message: Mapping[str, Any]) -> str:
    return " ".join(part["text"]["value"] for part in message["content"] if part.get("type") == "text")


def _new_message(
    thread_id: str, spec: Any, *, assistant_id: str | None = None, run_id: str | None = None
) -> dict[str, Any]:
    """A message object from a create body (validated; not stored yet)."""
    if not isinstance(spec, dict):
        raise _invalid("Invalid message: expected an object.", "messages")
    role = spec.get("role")
    if role not in ("user", "assistant"):
        raise _invalid("Invalid 'role': must be one of 'user', 'assistant'.", "role")
    attachments = spec.get("attachments") or []
    if not isinstance(attachments, list):
        raise _invalid("Invalid 'attachments': expected an array.", "attachments")
    now = _now()
    return {
        "id": _object_id("msg_"),
        "object": "thread.message",
        "created_at": now,
        "assistant_id": assistant_id,
        "thread_id": thread_id,
        "run_id": run_id,
        "role": role,
        "content": _message_content(spec.get("content")),
        "attachments": attachments,
        "metadata": _metadata(spec),
        "status": "completed",
        "incomplete_details": None,
        "completed_at": now,
        "incomplete_at": None,
    }


def _new_thread(body: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A thread and its initial messages from a create body (validated; not stored yet)."""
    thread = {
        "id": _object_id("thread_"),
        "object": "thread",
        "created_at": _now(),
        "metadata": _metadata(body),
        "tool_resources": {},
    }
    _apply_fields(thread, body, ("tool_resources",))
    specs = body.get("messages") or []
    if not isinstance(specs, list):
        raise _invalid("Invalid 'messages': expected an array.", "messages")
    return thread, [_new_message(thread["id"], spec) for spec in specs]


def _store_thread(store: Store, thread: dict[str, Any], messages: Iterable[dict[str, Any]]) -> None:
    store.threads[thread["id"]] = thread
    store.messages[thread["id"]] = {m["id"]: m for m in messages}
    store.runs[thread["id"]] = {}


async def create_thread(call: Call) -> web.StreamResponse:
    thread, messages = _new_thread(call.body)
    with call.store.lock:
        _store_thread(call.store, thread, messages)
    return _json(call.request, thread)


async def get_thread(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return _json(call.request, _lookup(call.store.threads, "thread", call.request.match_info["thread_id"]))


async def modify_thread(call: Call) -> web.StreamResponse:
    with call.store.lock:
        thread = _lookup(call.store.threads, "thread", call.request.match_info["thread_id"])
        changed = dict(thread)
        _apply_fields(changed, call.body, ("metadata", "tool_resources"))
        thread.update(changed)
        return _json(call.request, thread)


async def delete_thread(call: Call) -> web.StreamResponse:
    thread_id = call.request.match_info["thread_id"]
    store = call.store
    with store.lock:
        _lookup(store.threads, "thread", thread_id)
        del store.threads[thread_id]
        store.messages.pop(thread_id, None)
        for run_id in store.runs.pop(thread_id, {}):
            store.steps.pop(run_id, None)
    return _json(call.request, _deleted(thread_id, "thread.deleted"))


def _thread(call: Call) -> str:
    """The path's thread id, checked to exist in this region."""
    thread_id = call.request.match_info["thread_id"]
    _lookup(call.store.threads, "thread", thread_id)
    return thread_id


def _active_run(store: Store, thread_id: str) -> dict[str, Any] | None:
    return next((r for r in store.runs[thread_id].values() if r["status"] in ACTIVE_RUN_STATES), None)


async def create_message(call: Call) -> web.StreamResponse:
    with call.store.lock:
        thread_id = _thread(call)
        active = _active_run(call.store, thread_id)
        if active is not None:
            raise _invalid(f"Can't add messages to {thread_id} while a run {active['id']} is active.")
        message = _new_message(thread_id, call.body)
        call.store.messages[thread_id][message["id"]] = message
    return _json(call.request, message)


async def list_messages(call: Call) -> web.StreamResponse:
    with call.store.lock:
        messages = call.store.messages[_thread(call)].values()
        run_id = call.request.query.get("run_id")
        if run_id:
            messages = [m for m in messages if m["run_id"] == run_id]
        return _json(call.request, _page(call.request, _ascending(messages)))


def _message(call: Call) -> dict[str, Any]:
    messages = call.store.messages[_thread(call)]
    return _lookup(messages, "message", call.request.match_info["message_id"])


async def get_message(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return _json(call.request, _message(call))


async def modify_message(call: Call) -> web.StreamResponse:
    with call.store.lock:
        message = _message(call)
        message["metadata"] = _metadata(call.body, message["metadata"])
        return _json(call.request, message)


# ----------------------------------------------------------------------- runs and run steps


def _new_run(call: Call, thread_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A queued run (validated; not stored yet): the assistant must live in this region, ``model`` may override."""
    assistant_id = _string(body, "assistant_id")
    assistant = _lookup(call.store.assistants, "assistant", assistant_id)
    model = assistant["model"]
    if body.get("model") is not None:
        model = _string(body, "model")
        _check_deployment(call, model)
    instructions = body.get("instructions")
    if instructions is None:
        instructions = assistant["instructions"]
    if isinstance(body.get("additional_instructions"), str):
        instructions = f"{instructions or ''}{body['additional_instructions']}"
    now = _now()
    run: dict[str, Any] = {
        "id": _object_id("run_"),
        "object": "thread.run",
        "created_at": now,
        "assistant_id": assistant_id,
        "thread_id": thread_id,
        "status": "queued",
        "started_at": None,
        "expires_at": now + 600,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "required_action": None,
        "last_error": None,
        "model": model,
        "instructions": instructions,
        "tools": assistant["tools"],
        "tool_resources": assistant["tool_resources"],
        "metadata": {},
        "temperature": assistant["temperature"],
        "top_p": assistant["top_p"],
        "max_prompt_tokens": None,
        "max_completion_tokens": None,
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "incomplete_details": None,
        "usage": None,
        "response_format": assistant["response_format"],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
    }
    _apply_fields(
        run,
        body,
        (
            "tools",
            "metadata",
            "temperature",
            "top_p",
            "max_prompt_tokens",
            "max_completion_tokens",
            "truncation_strategy",
            "response_format",
            "tool_choice",
            "parallel_tool_calls",
        ),
    )
    return run


def _new_step(run: Mapping[str, Any], step_type: str, details: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": _object_id("step_"),
        "object": "thread.run.step",
        "created_at": _now(),
        "run_id": run["id"],
        "assistant_id": run["assistant_id"],
        "thread_id": run["thread_id"],
        "type": step_type,
        "status": "in_progress",
        "cancelled_at": None,
        "completed_at": None,
        "expired_at": None,
        "failed_at": None,
        "last_error": None,
        "step_details": details,
        "usage": None,
        "metadata": {},
    }


def _start_run(store: Store, run: dict[str, Any], chunks: int, prelude: list[bytes]) -> SseScript:
    """Store a queued run and take it as far as it goes at once: ``requires_action`` when it has a function tool
    (one tool call), else ``completed``. Returns its event stream; the stored objects end in their final state."""
    thread_id, run_id = run["thread_id"], run["id"]
    store.runs[thread_id][run_id] = run
    store.steps[run_id] = {}
    head = [*prelude, _event("thread.run.created", run), _event("thread.run.queued", run)]
    run.update(status="in_progress", started_at=_now())
    head.append(_event("thread.run.in_progress", run))
    function = next((t.get("function") or {} for t in run["tools"] if t.get("type") == "function"), None)
    if function is None:
        return _finish_run(store, run, chunks, head)
    name = function.get("name", "")
    tool_call = {"id": _object_id("call_"), "type": "function", "function": {"name": name, "arguments": "{}"}}
    step_call = {**tool_call, "function": {"name": name, "arguments": "{}", "output": None}}
    step = _new_step(run, "tool_calls", {"type": "tool_calls", "tool_calls": [step_call]})
    store.steps[run_id][step["id"]] = step
    head += [_event("thread.run.step.created", step), _event("thread.run.step.in_progress", step)]
    run.update(
        status="requires_action",
        required_action={"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": [tool_call]}},
    )
    return SseScript(head, [], [_event("thread.run.requires_action", run), NAMED_DONE_EVENT])


def _finish_run(store: Store, run: dict[str, Any], chunks: int, head: list[bytes]) -> SseScript:
    """Complete an in-progress run: an assistant message ``"Echo: <last user text>"`` and its message_creation
    step, streamed as created / in_progress / deltas / completed events."""
    thread_id, run_id = run["thread_id"], run["id"]
    messages = store.messages[thread_id].values()
    last_user = next((m for m in reversed(_ascending(messages)) if m["role"] == "user"), None)
    answer = "Echo: " + (_message_text(last_user) if last_user is not None else "")
    usage = _usage(sum(_words(_message_text(m)) for m in messages), _words(answer))
    message = _new_message(
        thread_id, {"role": "assistant", "content": answer}, assistant_id=run["assistant_id"], run_id=run_id
    )
    details = {"type": "message_creation", "message_creation": {"message_id": message["id"]}}
    step = _new_step(run, "message_creation", details)
    opening = dict(message, status="in_progress", content=[], completed_at=None)
    head += [
        _event("thread.run.step.created", step),
        _event("thread.run.step.in_progress", step),
        _event("thread.message.created", opening),
        _event("thread.message.in_progress", opening),
    ]
    content = [
        _event(
            "thread.message.delta",
            {
                "id": message["id"],
                "object": "thread.message.delta",
                "delta": {"content": [{"index": 0, "type": "text", "text": {"value": piece, "annotations": []}}]},
            },
        )
        for piece in _split(answer, chunks)
    ]
    now = _now()
    step.update(status="completed", completed_at=now, usage=usage)
    store.messages[thread_id][message["id"]] = message
    store.steps[run_id][step["id"]] = step
    run.update(status="completed", completed_at=now, expires_at=None, required_action=None, usage=usage)
    tail = [
        _event("thread.message.completed", message),
        _event("thread.run.step.completed", step),
        _event("thread.run.completed", run),
        NAMED_DONE_EVENT,
    ]
    return SseScript(head, content, tail)


async def _answer_run(call: Call, run: dict[str, Any], script: SseScript) -> web.StreamResponse:
    if _wants_stream(call.body):
        return await _send_sse(call, script)
    return _json(call.request, run)


async def create_run(call: Call) -> web.StreamResponse:
    store = call.store
    with store.lock:
        thread_id = _thread(call)
        active = _active_run(store, thread_id)
        if active is not None:
            raise _invalid(f"Thread {thread_id} already has an active run {active['id']}.")
        run = _new_run(call, thread_id, call.body)
        extra = call.body.get("additional_messages") or []
        if not isinstance(extra, list):
            raise _invalid("Invalid 'additional_messages': expected an array.", "additional_messages")
        for message in [_new_message(thread_id, spec) for spec in extra]:
            store.messages[thread_id][message["id"]] = message
        script = _start_run(store, run, call.behaviour.chunks, [])
    return await _answer_run(call, run, script)


async def create_thread_and_run(call: Call) -> web.StreamResponse:
    spec = call.body.get("thread") or {}
    if not isinstance(spec, dict):
        raise _invalid("Invalid 'thread': expected an object.", "thread")
    store = call.store
    with store.lock:
        thread, messages = _new_thread(spec)
        run = _new_run(call, thread["id"], call.body)
        _store_thread(store, thread, messages)
        script = _start_run(store, run, call.behaviour.chunks, [_event("thread.created", thread)])
    return await _answer_run(call, run, script)


def _run(call: Call) -> dict[str, Any]:
    runs = call.store.runs[_thread(call)]
    return _lookup(runs, "run", call.request.match_info["run_id"])


async def list_runs(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return _json(call.request, _page(call.request, _ascending(call.store.runs[_thread(call)].values())))


async def get_run(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return _json(call.request, _run(call))


async def modify_run(call: Call) -> web.StreamResponse:
    with call.store.lock:
        run = _run(call)
        run["metadata"] = _metadata(call.body, run["metadata"])
        return _json(call.request, run)


async def submit_tool_outputs(call: Call) -> web.StreamResponse:
    """Answer the pending tool call(s): the tool step completes, then the run completes like any other."""
    store = call.store
    with store.lock:
        run = _run(call)
        if run["status"] != "requires_action":
            raise _invalid(f'Runs in status "{run["status"]}" do not accept tool outputs.')
        outputs = call.body.get("tool_outputs")
        if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
            raise _missing("tool_outputs")
        given = {o.get("tool_call_id"): o.get("output") for o in outputs}
        pending = [c["id"] for c in run["required_action"]["submit_tool_outputs"]["tool_calls"]]
        if sorted(given, key=str) != sorted(pending):
            message = f"Expected tool outputs for call_ids {pending}, got {sorted(given, key=str)}"
            raise _invalid(message, "tool_outputs")
        step = next(
            s for s in store.steps[run["id"]].values() if s["type"] == "tool_calls" and s["status"] == "in_progress"
        )
        for tool_call in step["step_details"]["tool_calls"]:
            tool_call["function"]["output"] = given[tool_call["id"]]
        step.update(status="completed", completed_at=_now())
        run.update(status="queued", required_action=None)
        head = [_event("thread.run.step.completed", step), _event("thread.run.queued", run)]
        run["status"] = "in_progress"
        head.append(_event("thread.run.in_progress", run))
        script = _finish_run(store, run, call.behaviour.chunks, head)
    return await _answer_run(call, run, script)


async def cancel_run(call: Call) -> web.StreamResponse:
    """Answers ``cancelling``; the stored run (what a later GET sees) is ``cancelled``."""
    store = call.store
    with store.lock:
        run = _run(call)
        if run["status"] not in ACTIVE_RUN_STATES:
            raise _invalid(f"Cannot cancel run with status '{run['status']}'.")
        now = _now()
        run.update(status="cancelled", cancelled_at=now, expires_at=None, required_action=None)
        for step in store.steps[run["id"]].values():
            if step["status"] == "in_progress":
                step.update(status="cancelled", cancelled_at=now)
        return _json(call.request, dict(run, status="cancelling"))


async def list_run_steps(call: Call) -> web.StreamResponse:
    with call.store.lock:
        steps = call.store.steps[_run(call)["id"]].values()
        return _json(call.request, _page(call.request, _ascending(steps)))


async def get_run_step(call: Call) -> web.StreamResponse:
    with call.store.lock:
        steps = call.store.steps[_run(call)["id"]]
        return _json(call.request, _lookup(steps, "run step", call.request.match_info["step_id"]))


# ----------------------------------------------------------------------- vector stores


def _file_counts(statuses: Iterable[str]) -> dict[str, int]:
    counts = {"in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0, "total": 0}
    for status in statuses:
        counts[status] += 1
        counts["total"] += 1
    return counts


def _refresh_vector_store(store: Store, vector_store_id: str) -> dict[str, Any]:
    """Recompute what a vector store reports about its files."""
    vector_store = store.vector_stores[vector_store_id]
    files = store.vector_store_files[vector_store_id].values()
    counts = _file_counts(f["status"] for f in files)
    vector_store.update(
        file_counts=counts,
        usage_bytes=sum(f["usage_bytes"] for f in files),
        status="in_progress" if counts["in_progress"] else "completed",
        last_active_at=_now(),
    )
    return vector_store


def _new_vector_store_file(store: Store, vector_store_id: str, file_id: str, status: str) -> dict[str, Any]:
    """A vector store file; the file itself must live in this region."""
    file = _lookup(store.files, "file", file_id)
    return {
        "id": file_id,
        "object": "vector_store.file",
        "usage_bytes": file["bytes"],
        "created_at": _now(),
        "vector_store_id": vector_store_id,
        "status": status,
        "last_error": None,
        "chunking_strategy": CHUNKING_STRATEGY,
        "attributes": {},
    }


def _vector_store(call: Call) -> str:
    vector_store_id = call.request.match_info["vector_store_id"]
    _lookup(call.store.vector_stores, "vector store", vector_store_id)
    return vector_store_id


async def create_vector_store(call: Call) -> web.StreamResponse:
    store = call.store
    now = _now()
    vector_store: dict[str, Any] = {
        "id": _object_id("vs_"),
        "object": "vector_store",
        "created_at": now,
        "name": call.body.get("name") or "",
        "usage_bytes": 0,
        "file_counts": _file_counts(()),
        "status": "completed",
        "expires_after": call.body.get("expires_after"),
        "expires_at": None,
        "last_active_at": now,
        "metadata": _metadata(call.body),
    }
    with store.lock:
        file_ids = _string_list(call.body, "file_ids")
        files = [_new_vector_store_file(store, vector_store["id"], f, "completed") for f in file_ids]
        store.vector_stores[vector_store["id"]] = vector_store
        store.vector_store_files[vector_store["id"]] = {f["id"]: f for f in files}
        store.file_batches[vector_store["id"]] = {}
        return _json(call.request, _refresh_vector_store(store, vector_store["id"]))


async def list_vector_stores(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return _json(call.request, _page(call.request, _ascending(call.store.vector_stores.values())))


async def get_vector_store(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return _json(call.request, _refresh_vector_store(call.store, _vector_store(call)))


async def modify_vector_store(call: Call) -> web.StreamResponse:
    with call.store.lock:
        vector_store = call.store.vector_stores[_vector_store(call)]
        for name in ("name", "expires_after"):
            if name in call.body:
                vector_store[name] = call.body[name]
        vector_store["metadata"] = _metadata(call.body, vector_store["metadata"])
        return _json(call.request, vector_store)


async def delete_vector_store(call: Call) -> web.StreamResponse:
    store = call.store
    with store.lock:
        vector_store_id = _vector_store(call)
        for table in (store.vector_stores, store.vector_store_files, store.file_batches):
            del table[vector_store_id]
    return _json(call.request, _deleted(vector_store_id, "vector_store.deleted"))


async def create_vector_store_file(call: Call) -> web.StreamResponse:
    store = call.store
    with store.lock:
        vector_store_id = _vector_store(call)
        file = _new_vector_store_file(store, vector_store_id, _string(call.body, "file_id"), "completed")
        if isinstance(call.body.get("attributes"), dict):
            file["attributes"] = call.body["attributes"]
        store.vector_store_files[vector_store_id][file["id"]] = file
        _refresh_vector_store(store, vector_store_id)
        return _json(call.request, file)


def _filtered_files(call: Call, files: Iterable[dict[str, Any]]) -> web.StreamResponse:
    status = call.request.query.get("filter")
    chosen = [f for f in files if status is None or f["status"] == status]
    return _json(call.request, _page(call.request, _ascending(chosen)))


async def list_vector_store_files(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return _filtered_files(call, call.store.vector_store_files[_vector_store(call)].values())


def _vector_store_file(call: Call) -> dict[str, Any]:
    files = call.store.vector_store_files[_vector_store(call)]
    return _lookup(files, "vector store file", call.request.match_info["file_id"])


async def get_vector_store_file(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return _json(call.request, _vector_store_file(call))


async def delete_vector_store_file(call: Call) -> web.StreamResponse:
    store = call.store
    with store.lock:
        file = _vector_store_file(call)
        del store.vector_store_files[file["vector_store_id"]][file["id"]]
        _refresh_vector_store(store, file["vector_store_id"])
    return _json(call.request, _deleted(file["id"], "vector_store.file.deleted"))


async def search_vector_store(call: Call) -> web.StreamResponse:
    """No embeddings here: a well-formed, empty result page."""
    with call.store.lock:
        _vector_store(call)
    query = call.body.get("query")
    if isinstance(query, str) and query:
        queries = [query]
    elif isinstance(query, list) and query and all(isinstance(q, str) for q in query):
        queries = query
    else:
        raise _missing("query")
    page = {"object": "vector_store.search_results.page", "search_query": queries, "data": [], "has_more": False}
    return _json(call.request, {**page, "next_page": None})


async def create_file_batch(call: Call) -> web.StreamResponse:
    """A file batch starts ``in_progress`` and completes the next time it is looked at (so polling ends)."""
    store = call.store
    with store.lock:
        vector_store_id = _vector_store(call)
        file_ids = _string_list(call.body, "file_ids", required=True)
        files = [_new_vector_store_file(store, vector_store_id, f, "in_progress") for f in file_ids]
        batch = {
            "id": _object_id("vsfb_"),
            "object": "vector_store.files_batch",
            "created_at": _now(),
            "vector_store_id": vector_store_id,
            "status": "in_progress",
            "file_counts": _file_counts(f["status"] for f in files),
            "file_ids": file_ids,  # internal, dropped from answers
        }
        store.vector_store_files[vector_store_id].update((f["id"], f) for f in files)
        store.file_batches[vector_store_id][batch["id"]] = batch
        _refresh_vector_store(store, vector_store_id)
        return _json(call.request, _public_batch(batch))


def _public_batch(batch: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in batch.items() if k != "file_ids"}


def _file_batch(call: Call, settle: bool) -> dict[str, Any]:
    store = call.store
    vector_store_id = _vector_store(call)
    batch = _lookup(store.file_batches[vector_store_id], "file batch", call.request.match_info["batch_id"])
    if settle and batch["status"] == "in_progress":
        _set_batch_files(store, batch, "completed")
    return batch


def _set_batch_files(store: Store, batch: dict[str, Any], status: str) -> None:
    files = store.vector_store_files[batch["vector_store_id"]]
    for file_id in batch["file_ids"]:
        if file_id in files and files[file_id]["status"] == "in_progress":
            files[file_id]["status"] = status
    batch.update(status=status, file_counts=_file_counts(status for _ in batch["file_ids"]))
    _refresh_vector_store(store, batch["vector_store_id"])


async def get_file_batch(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return _json(call.request, _public_batch(_file_batch(call, settle=True)))


async def cancel_file_batch(call: Call) -> web.StreamResponse:
    with call.store.lock:
        batch = _file_batch(call, settle=False)
        if batch["status"] != "in_progress":
            raise _invalid(f"Cannot cancel a batch with status '{batch['status']}'.")
        _set_batch_files(call.store, batch, "cancelled")
        return _json(call.request, _public_batch(batch))


async def list_file_batch_files(call: Call) -> web.StreamResponse:
    with call.store.lock:
        batch = _file_batch(call, settle=True)
        files = call.store.vector_store_files[batch["vector_store_id"]]
        return _filtered_files(call, (files[f] for f in batch["file_ids"] if f in files))


# ----------------------------------------------------------------------- files


async def upload_file(call: Call) -> web.StreamResponse:
    """Multipart ``file`` + ``purpose``; Azure answers 201. The bytes are kept (once) for ``files/{id}/content``."""
    upload = call.uploads.get("file")
    if upload is None or upload.data is None:
        raise _missing("file")
    purpose = _string(call.body, "purpose")
    file = {
        "id": _object_id("file-"),
        "object": "file",
        "bytes": upload.size,
        "created_at": _now(),
        "filename": upload.filename,
        "purpose": purpose,
        "status": "processed",
        "status_details": None,
    }
    with call.store.lock:
        call.store.files[file["id"]] = file
        call.store.file_contents[file["id"]] = upload.data
    return _json(call.request, file, status=201)


async def list_files(call: Call) -> web.StreamResponse:
    purpose = call.request.query.get("purpose")
    with call.store.lock:
        files = [f for f in call.store.files.values() if purpose is None or f["purpose"] == purpose]
        return _json(call.request, _page(call.request, _ascending(files)))


async def get_file(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return _json(call.request, _lookup(call.store.files, "file", call.request.match_info["file_id"]))


async def delete_file(call: Call) -> web.StreamResponse:
    file_id = call.request.match_info["file_id"]
    with call.store.lock:
        _lookup(call.store.files, "file", file_id)
        del call.store.files[file_id]
        del call.store.file_contents[file_id]
    return _json(call.request, _deleted(file_id, "file"))


async def get_file_content(call: Call) -> web.StreamResponse:
    """The stored bytes as ``application/octet-stream``, in DOWNLOAD_CHUNK pieces (chunk delay between them)."""
    file_id = call.request.match_info["file_id"]
    with call.store.lock:
        _lookup(call.store.files, "file", file_id)
        view = memoryview(call.store.file_contents[file_id])
    pieces = (bytes(view[i : i + DOWNLOAD_CHUNK]) for i in range(0, len(view), DOWNLOAD_CHUNK))
    return await _send_chunks(call, pieces, OCTET_TYPE, length=len(view))


# ----------------------------------------------------------------------- batches


async def create_batch(call: Call) -> web.StreamResponse:
    body = call.body
    input_file_id = _string(body, "input_file_id")
    endpoint = _string(body, "endpoint")
    completion_window = _string(body, "completion_window")
    now = _now()
    batch = {
        "id": _object_id("batch_"),
        "object": "batch",
        "endpoint": endpoint,
        "errors": None,
        "input_file_id": input_file_id,
        "completion_window": completion_window,
        "status": "validating",
        "output_file_id": None,
        "error_file_id": None,
        "created_at": now,
        "in_progress_at": None,
        "expires_at": now + 86400,
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
        "metadata": _metadata(body) or None,
    }
    with call.store.lock:
        _lookup(call.store.files, "file", input_file_id)
        call.store.batches[batch["id"]] = batch
    return _json(call.request, batch)


async def list_batches(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return _json(call.request, _page(call.request, _ascending(call.store.batches.values())))


async def get_batch(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return _json(call.request, _lookup(call.store.batches, "batch", call.request.match_info["batch_id"]))


async def cancel_batch(call: Call) -> web.StreamResponse:
    with call.store.lock:
        batch = _lookup(call.store.batches, "batch", call.request.match_info["batch_id"])
        if batch["status"] not in ("validating", "in_progress", "finalizing", "cancelling"):
            raise _invalid(f"Cannot cancel a batch with status '{batch['status']}'.")
        if batch["status"] != "cancelling":
            batch.update(status="cancelling", cancelling_at=_now())
        return _json(call.request, batch)


# ----------------------------------------------------------------------- responses


def _input_items(value: Any) -> list[dict[str, Any]]:
    """``input`` (a string or a list of items) as stored input items, each with an id."""
    if isinstance(value, str) and value:
        value = [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value or not all(isinstance(item, dict) for item in value):
        raise _missing("input")
    items = []
    for item in value:
        if "role" in item:
            content = item.get("content")
            if isinstance(content, str):
                part_type = "output_text" if item["role"] == "assistant" else "input_text"
                content = [{"type": part_type, "text": content}]
            elif not isinstance(content, list):
                raise _invalid("Invalid 'input': a message needs 'content'.", "input")
            item = {"type": "message", "role": item["role"], "content": content, "status": "completed"}
        items.append({"id": item.get("id") or _object_id("msg_"), **item})
    return items


def _item_text(item: Mapping[str, Any]) -> str:
    return " ".join(
        part["text"]
        for part in item.get("content") or ()
        if isinstance(part, dict)
        and part.get("type") in ("input_text", "output_text", "text")
        and isinstance(part.get("text"), str)
    )


async def create_response(call: Call) -> web.StreamResponse:
    """Answer ``"Echo: <last user text>"``; stored unless ``store: false``; streamed as typed events."""
    body = call.body
    model = _string(body, "model")
    _check_deployment(call, model)
    items = _input_items(body.get("input"))
    previous = body.get("previous_response_id")
    store = call.store
    if previous is not None:
        with store.lock:
            if not isinstance(previous, str) or previous not in store.responses:
                message = f"Previous response with id '{previous}' not found."
                error = {"message": message, "type": "invalid_request_error", "param": "previous_response_id"}
                raise Reject(404, {**error, "code": "previous_response_not_found"})
    last_user = next((item for item in reversed(items) if item.get("role") == "user"), None)
    answer = "Echo: " + (_item_text(last_user) if last_user is not None else "")
    input_tokens = sum(_words(_item_text(item)) for item in items)
    output_tokens = _words(answer)
    now = _now()
    part = {"type": "output_text", "text": answer, "annotations": []}
    message = {"type": "message", "id": _object_id("msg_"), "status": "completed", "role": "assistant"}
    message["content"] = [part]
    response: dict[str, Any] = {
        "id": _object_id("resp_"),
        "object": "response",
        "created_at": now,
        "status": "completed",
        "completed_at": now,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": [message],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": previous,
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation") or "disabled",
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        },
        "user": body.get("user"),
        "metadata": _metadata(body),
    }
    if body.get("store") is not False:
        with store.lock:
            store.responses[response["id"]] = response
            store.response_inputs[response["id"]] = items
    if not _wants_stream(body):
        return _json(call.request, response)
    return await _send_sse(call, _response_script(response, message, part, call.behaviour.chunks))


def _response_script(response: dict[str, Any], message: dict[str, Any], part: dict[str, Any], chunks: int) -> SseScript:
    """Responses stream: typed events (``event:`` = data ``type``) numbered by ``sequence_number``; no [DONE]."""
    numbers = itertools.count()

    def event(event_type: str, **payload: Any) -> bytes:
        return _event(event_type, {"type": event_type, **payload, "sequence_number": next(numbers)})

    opening = dict(response, status="in_progress", completed_at=None, output=[], usage=None)
    where = {"item_id": message["id"], "output_index": 0, "content_index": 0}
    head = [
        event("response.created", response=opening),
        event("response.in_progress", response=opening),
        event("response.output_item.added", output_index=0, item=dict(message, status="in_progress", content=[])),
        event("response.content_part.added", **where, part=dict(part, text="")),
    ]
    pieces = _split(part["text"], chunks)
    content = [event("response.output_text.delta", **where, delta=piece, logprobs=[]) for piece in pieces]
    tail = [
        event("response.output_text.done", **where, text=part["text"], logprobs=[]),
        event("response.content_part.done", **where, part=part),
        event("response.output_item.done", output_index=0, item=message),
        event("response.completed", response=response),
    ]
    return SseScript(head, content, tail)


def _response(call: Call) -> dict[str, Any]:
    return _lookup(call.store.responses, "response", call.request.match_info["response_id"])


async def get_response(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return _json(call.request, _response(call))


async def delete_response(call: Call) -> web.StreamResponse:
    with call.store.lock:
        response_id = _response(call)["id"]
        del call.store.responses[response_id]
        del call.store.response_inputs[response_id]
    return _json(call.request, _deleted(response_id, "response"))


async def list_input_items(call: Call) -> web.StreamResponse:
    with call.store.lock:
        items = call.store.response_inputs[_response(call)["id"]]
        return _json(call.request, _page(call.request, items))


# The resource table: each row is served under each of RESOURCE_SCOPES. Where a literal segment and an {id} could
# both match (threads/runs vs threads/{thread_id}), aiohttp prefers the literal one.
_A, _R, _F = ASSISTANTS_API, RESPONSES_API, ANY_API_VERSION
_RUN = "threads/{thread_id}/runs/{run_id}"
_VS = "vector_stores/{vector_store_id}"
_FB = _VS + "/file_batches/{batch_id}"
RESOURCES: tuple[Resource, ...] = (
    Resource("GET", "assistants", "Assistants_List", _A, list_assistants),
    Resource("POST", "assistants", "Assistants_Create", _A, create_assistant, body=JSON_BODY),
    Resource("GET", "assistants/{assistant_id}", "Assistants_Get", _A, get_assistant),
    Resource("POST", "assistants/{assistant_id}", "Assistants_Modify", _A, modify_assistant),
    Resource("DELETE", "assistants/{assistant_id}", "Assistants_Delete", _A, delete_assistant),
    Resource("POST", "threads", "Threads_Create", _A, create_thread),
    Resource("POST", "threads/runs", "Runs_CreateThreadAndRun", _A, create_thread_and_run, JSON_BODY, streams=True),
    Resource("GET", "threads/{thread_id}", "Threads_Get", _A, get_thread),
    Resource("POST", "threads/{thread_id}", "Threads_Modify", _A, modify_thread),
    Resource("DELETE", "threads/{thread_id}", "Threads_Delete", _A, delete_thread),
    Resource("GET", "threads/{thread_id}/messages", "Messages_List", _A, list_messages),
    Resource("POST", "threads/{thread_id}/messages", "Messages_Create", _A, create_message, body=JSON_BODY),
    Resource("GET", "threads/{thread_id}/messages/{message_id}", "Messages_Get", _A, get_message),
    Resource("POST", "threads/{thread_id}/messages/{message_id}", "Messages_Modify", _A, modify_message),
    Resource("GET", "threads/{thread_id}/runs", "Runs_List", _A, list_runs),
    Resource("POST", "threads/{thread_id}/runs", "Runs_Create", _A, create_run, body=JSON_BODY, streams=True),
    Resource("GET", _RUN, "Runs_Get", _A, get_run),
    Resource("POST", _RUN, "Runs_Modify", _A, modify_run),
    Resource(
        "POST", _RUN + "/submit_tool_outputs", "Runs_SubmitToolOutputs", _A, submit_tool_outputs, JSON_BODY, True
    ),
    Resource("POST", _RUN + "/cancel", "Runs_Cancel", _A, cancel_run),
    Resource("GET", _RUN + "/steps", "RunSteps_List", _A, list_run_steps),
    Resource("GET", _RUN + "/steps/{step_id}", "RunSteps_Get", _A, get_run_step),
    Resource("GET", "vector_stores", "VectorStores_List", _A, list_vector_stores),
    Resource("POST", "vector_stores", "VectorStores_Create", _A, create_vector_store),
    Resource("GET", _VS, "VectorStores_Get", _A, get_vector_store),
    Resource("POST", _VS, "VectorStores_Modify", _A, modify_vector_store),
    Resource("DELETE", _VS, "VectorStores_Delete", _A, delete_vector_store),
    Resource("GET", _VS + "/files", "VectorStoreFiles_List", _A, list_vector_store_files),
    Resource("POST", _VS + "/files", "VectorStoreFiles_Create", _A, create_vector_store_file, body=JSON_BODY),
    Resource("GET", _VS + "/files/{file_id}", "VectorStoreFiles_Get", _A, get_vector_store_file),
    Resource("DELETE", _VS + "/files/{file_id}", "VectorStoreFiles_Delete", _A, delete_vector_store_file),
    Resource("POST", _VS + "/search", "VectorStores_Search", _A, search_vector_store, body=JSON_BODY),
    Resource("POST", _VS + "/file_batches", "VectorStoreFileBatches_Create", _A, create_file_batch, body=JSON_BODY),
    Resource("GET", _FB, "VectorStoreFileBatches_Get", _A, get_file_batch),
    Resource("POST", _FB + "/cancel", "VectorStoreFileBatches_Cancel", _A, cancel_file_batch),
    Resource("GET", _FB + "/files", "VectorStoreFileBatches_ListFiles", _A, list_file_batch_files),
    Resource("GET", "files", "Files_List", _F, list_files),
    Resource("POST", "files", "Files_Upload", _F, upload_file, body=MULTIPART_BODY, keep_upload=True),
    Resource("GET", "files/{file_id}", "Files_Get", _F, get_file),
    Resource("DELETE", "files/{file_id}", "Files_Delete", _F, delete_file),
    Resource("GET", "files/{file_id}/content", "Files_GetContent", _F, get_file_content, always_streams=True),
    Resource("GET", "batches", "Batch_List", _F, list_batches),
    Resource("POST", "batches", "Batch_Create", _F, create_batch, body=JSON_BODY),
    Resource("GET", "batches/{batch_id}", "Batch_Get", _F, get_batch),
    Resource("POST", "batches/{batch_id}/cancel", "Batch_Cancel", _F, cancel_batch),
    Resource("POST", "responses", "Responses_Create", _R, create_response, body=JSON_BODY, streams=True),
    Resource("GET", "responses/{response_id}", "Responses_Get", _R, get_response),
    Resource("DELETE", "responses/{response_id}", "Responses_Delete", _R, delete_response),
    Resource("GET", "responses/{response_id}/input_items", "Responses_ListInputItems", _R, list_input_items),
)


# --------------------------------------------------------------------------------------------- shared pipeline


def _check_api_version(request: web.Request, scope: Scope, family: Family | None = None) -> web.Response | None:
    """Azure's answers: missing -> 404, malformed or repeated -> 400, dated but too old (or not a preview) for the
    resource family -> 404 like an unknown route. Serverless: optional, but at most once. v1: absent, v1 or preview."""
    values = request.query.getall("api-version", ())
    if len(values) > 1:
        return _error(request, 400, ERR_API_VERSION)
    if not values:
        return _error(request, 404, ERR_NOT_FOUND) if scope.api_version_required else None
    version = values[0]
    if scope.api_versions is not None and version not in scope.api_versions:
        return _error(request, 400, ERR_API_VERSION)
    if scope.api_version_required:
        if not API_VERSION_RE.match(version):
            return _error(request, 400, ERR_API_VERSION)
        if family is not None and family.min_preview is not None:
            if not version.endswith("-preview") or version[:10] < family.min_preview:
                return _error(request, 404, ERR_NOT_FOUND)
    return None


@dataclass(slots=True)
class _Body:
    """A request body as read before anything else: raw JSON bytes, or (multipart) fields and file parts."""

    raw: bytes = b""
    json: Any = None
    form: dict[str, str] | None = None  # None: not a multipart body
    uploads: dict[str, Upload] = field(default_factory=dict)
    error: str | None = None  # a malformed multipart body


async def _read_body(request: web.Request, kind: str, keep_upload: bool = False) -> _Body:
    """JSON: read whole and parse. Multipart: stream each file part through sha256 (its bytes kept only when
    ``keep_upload``), so an upload is never held twice."""
    if kind == MULTIPART_BODY and request.content_type.startswith("multipart/"):
        read = _Body(form={})
        try:
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader) or not part.name:
                    raise ValueError("nested or unnamed multipart part")
                if part.filename is None:
                    read.form[part.name] = await part.text()
                    continue
                digest = hashlib.sha256()
                size = 0
                data = bytearray() if keep_upload else None
                while chunk := await part.read_chunk(DOWNLOAD_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    if data is not None:
                        data += chunk
                content_type = part.headers.get("Content-Type", OCTET_TYPE)
                upload = Upload(part.name, part.filename, content_type, size, digest.hexdigest(), data)
                read.uploads.setdefault(part.name, upload)
        except (ValueError, AssertionError, LookupError, HttpProcessingError) as exc:
            read.error = f"Could not parse multipart form: {exc}".strip()
        return read
    raw = await request.read()
    parsed: Any = None
    if raw:
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = None
    return _Body(raw=raw, json=parsed)


def _request_body(route: Route, read: _Body) -> dict[str, Any] | None:
    """The body a handler sees, or None when it is not acceptable for the route (answered by the caller)."""
    if route.body == MULTIPART_BODY:
        return read.form if read.form is not None and read.error is None else None
    if route.body == OPTIONAL_JSON_BODY and not read.raw:
        return {}
    return read.json if isinstance(read.json, dict) else None


def _request_key(request: web.Request) -> str | None:
    key = request.headers.get("api-key")
    if key:
        return key
    authorization = request.headers.get("Authorization", "")
    if authorization[:7].lower() == "bearer " and authorization[7:].strip():
        return authorization[7:].strip()
    return None


async def _failure(request: web.Request, mode: str, azure_name: str, behaviour: Behaviour) -> web.StreamResponse:
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
        return _error(request, 429, {"code": "429", "message": message}, extra)
    if mode == "content_filter":
        return _error(request, 400, ERR_CONTENT_FILTER)
    if mode == "500":
        return _error(request, 500, ERR_SERVER)
    if mode == "503":
        return _error(request, 503, ERR_SERVER)
    if mode == "html":
        return web.Response(body=HTML_502, status=502, headers=_headers(request, "text/html"))
    if mode == "599":  # a status no HTTP specification defines (some proxies' "network connect timeout")
        return _error(request, 599, ERR_SERVER)
    if mode == "302":  # a redirect that names no Location
        return web.Response(body=b"Found", status=302, headers=_headers(request, TEXT_TYPE))
    if mode == "invalid_json":
        return web.Response(body=b'{"object": "list", "data": [{"id": ', headers=_headers(request, JSON_TYPE))
    if mode == "bad_list":
        return _json(request, {"object": "list", "data": [1, "two", None], "has_more": False})
    if mode in ("huge", "huge_chunked", "huge_error"):
        return await _send_huge(request, mode, behaviour.huge_bytes)
    raise AssertionError(f"unhandled fail mode {mode!r}")


async def _send_huge(request: web.Request, mode: str, size: int) -> web.StreamResponse:
    """A valid JSON answer (``huge_error``: a 500 error) of about ``size`` bytes, written in pieces so that a client
    that stops reading leaves it unfinished (the record is then not ``completed``)."""
    if mode == "huge_error":
        status, head, tail = 500, b'{"error": {"code": "InternalServerError", "message": "', b'"}}'
    else:
        status, head, tail = 200, b'{"id": "chatcmpl-huge", "object": "chat.completion", "padding": "', b'"}'
    padding = max(size - len(head) - len(tail), 0)
    response = web.StreamResponse(status=status, headers=_headers(request, JSON_TYPE))
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


# --------------------------------------------------------------------------------------------- the simulator

_BEHAVIOUR = web.RequestKey("sim.behaviour", Behaviour)  # the effective behaviour, for the writes after the handler


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
        name: str = "sim",
    ) -> None:
        self.name = name  # for debugging: thread name, repr, CLI banner
        self.api_keys = api_keys  # None: any key, but one must be present
        self.deployments = deployments  # None: any deployment name (also checks body models: v1, assistants, ...)
        self.record_requests = record_requests  # the CLI turns this off so a long benchmark does not grow memory
        self.behaviour = Behaviour()
        self.requests: list[RecordedRequest] = []
        self.store = Store()  # this region's assistants, threads, files, ...
        self.url = ""
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    # ----------------------------------------------------------------------- test-facing API

    def __repr__(self) -> str:
        return f"AzureSimulator(name={self.name!r}, url={self.url!r})"

    def reset(self) -> None:
        """Forget recorded requests and stored objects, and restore default behaviour (all in place)."""
        with self._lock:
            self.requests.clear()
        self.store.clear()
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
        self._thread = threading.Thread(target=run, name=f"azure-sim-{self.name}", daemon=True)
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
        """The aiohttp app: every operation and resource under each of its scopes, then an Azure-style 404."""
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for operation in OPERATIONS:
            for scope in operation.scopes:
                handler = self._endpoint(operation, scope)
                for prefix in scope.prefixes:
                    app.router.add_route("POST", prefix + operation.path, handler)
        for resource in RESOURCES:
            for scope in RESOURCE_SCOPES:
                handler = self._endpoint(resource, scope)
                for prefix in scope.prefixes:
                    app.router.add_route(resource.method, prefix + resource.path, handler)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        return app

    def _record(self, request: web.Request, read: _Body, operation: str = "") -> RecordedRequest:
        first = next(iter(read.uploads.values()), None)
        record = RecordedRequest(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            raw_query=request.query_string,
            headers={k.lower(): v for k, v in request.headers.items()},
            header_list=[(k.lower(), v) for k, v in request.headers.items()],
            body=read.raw,
            json=read.json,
            received_at=time.monotonic(),
            operation=operation,
            form=dict(read.form or {}),
            upload_bytes=first.size if first else 0,
            upload_sha256=first.sha256 if first else "",
            upload_filename=first.filename if first else "",
        )
        if self.record_requests:
            with self._lock:
                self.requests.append(record)
        return record

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        """Unknown paths answer like Azure and are recorded, so a test can see the gateway hit a wrong URL."""
        record = self._record(request, await _read_body(request, JSON_BODY))
        record.completed = True
        return _error(request, 404, ERR_NOT_FOUND)

    def _endpoint(self, route: Route, scope: Scope) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """Wrap a route with body reading, recording and disconnect tracking."""

        async def handle(request: web.Request) -> web.StreamResponse:
            read = await _read_body(request, route.body, route.keep_upload)
            record = self._record(request, read, route.azure_name)
            try:
                response = await self._serve(request, record, read, route, scope)
                if record.aborted:
                    return response
                behaviour = request.get(_BEHAVIOUR)
                if not response.prepared:  # write it here so `completed` means "the client has it all"
                    if behaviour is not None and behaviour.drip > 0 and isinstance(response, web.Response):
                        response = await _drip(request, response, behaviour)
                    else:
                        _encode(response, behaviour)
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

        handle.__name__ = f"{scope.name}_{route.handler.__name__}"
        return handle

    async def _serve(
        self, request: web.Request, record: RecordedRequest, read: _Body, route: Route, scope: Scope
    ) -> web.StreamResponse:
        """The shared checks in Azure's order, then the configured delay and fault, then the route's handler."""
        rejected = _check_api_version(request, scope, route.family if isinstance(route, Resource) else None)
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
        request[_BEHAVIOUR] = behaviour
        if behaviour.delay > 0:
            await asyncio.sleep(behaviour.delay)
        if behaviour.fail in CANNED_FAIL_MODES:
            return await _failure(request, behaviour.fail, route.azure_name, behaviour)
        body = _request_body(route, read)
        if body is None:
            if route.body != MULTIPART_BODY:
                return _error(request, 400, ERR_INVALID_JSON)
            expected = f"Invalid Content-Type header ({request.content_type}), expected multipart/form-data."
            message = read.error or expected
            return _bad_request(request, message)
        if behaviour.fail == "abort" and not (route.always_streams or (route.streams and _wants_stream(body))):
            return _drop_connection(request, record)
        model = ""
        if isinstance(route, Operation):
            model = route.model
            if scope.model_is_deployment:
                model = body.get("model")
                if not isinstance(model, str) or not model:
                    return _bad_request(request, "Missing required parameter: 'model'.", "model")
                if self.deployments is not None and model not in self.deployments:
                    return _error(request, 404, ERR_DEPLOYMENT)
            elif not scope.deployment_in_path and isinstance(body.get("model"), str):
                model = body["model"]
        try:
            return await route.handler(Call(request, record, body, model, behaviour, self, read.uploads))
        except Reject as exc:
            return _error(request, exc.status, exc.error)


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
    parser.add_argument("--name", default="sim", help="a name for debugging (e.g. the region it stands for)")
    parser.add_argument("--fail", choices=sorted(FAIL_MODES), help="default fail mode (as x-sim-fail)")
    parser.add_argument("--fail-rate", type=float, default=1.0, help="share of requests that fail (as x-sim-fail-rate)")
    parser.add_argument("--retry-after-ms", type=float, help="a 429's retry-after-ms (as x-sim-retry-after-ms)")
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
        name=args.name,
    )
    sim.behaviour.chunk_delay = args.chunk_delay_ms / 1000.0
    sim.behaviour.fail = args.fail
    sim.behaviour.fail_rate = args.fail_rate
    sim.behaviour.retry_after_ms = args.retry_after_ms
    with asyncio.Runner(loop_factory=_new_event_loop) as runner:
        runner.run(_serve_forever(sim, args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
