"""Writing answers in pieces: Azure-flavoured SSE streams, chunked byte answers, and the faults that cut them
(``abort``, ``truncate_*``, ``hang_after_done``, ``late_end``), slow writes (``x-sim-drip-ms``) and forced encodings.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_response import ContentCoding

from .behaviour import LATE_END_SECONDS, LINE_ENDINGS, Behaviour
from .routing import Call, RecordedRequest
from .wire import (
    CHUNK_FILTER,
    DONE_EVENT,
    FILTER_ONLY_EVENT,
    SSE_TYPE,
    SYSTEM_FINGERPRINT,
    azure_headers,
    split_text,
    sse_event,
    wants_usage,
)

DECODABLE_ENCODINGS = {"gzip": ContentCoding.gzip, "deflate": ContentCoding.deflate}


@dataclass(slots=True)
class SseScript:
    """A stream in three parts, so ``x-sim-fail: abort`` can cut it after two ``content`` events."""

    head: list[bytes]
    content: list[bytes]
    tail: list[bytes]


async def send_sse(call: Call, script: SseScript) -> web.StreamResponse:
    """Write each event separately (one transport write each) with the chunk delay between events."""
    fail = call.behaviour.fail
    aborting = fail == "abort"
    events = script.head + (script.content[:2] if aborting else script.content + script.tail)
    response = web.StreamResponse(headers=azure_headers(call.request, SSE_TYPE))
    encode_answer(response, call.behaviour)
    await response.prepare(call.request)
    delay = call.behaviour.chunk_delay
    line_ending = LINE_ENDINGS[call.behaviour.line_ending]
    for i, event in enumerate(events):
        if i and delay > 0:
            await asyncio.sleep(delay)
        if line_ending != b"\n":  # events are built with LF; JSON data holds no raw line breaks
            event = event.replace(b"\n", line_ending)
        await _write(response, event, call.behaviour)
    if aborting:
        drop_connection(call.request, call.record)
    elif fail == "hang_after_done":
        await asyncio.sleep(3600)  # until the client goes away (aiohttp then cancels this handler)
    else:
        if fail == "late_end":
            await asyncio.sleep(LATE_END_SECONDS)
        await response.write_eof()
    return response


_CUTTING_MODES = frozenset({"abort", "truncate_chunked", "truncate_length"})


async def send_chunks(
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
    response = web.StreamResponse(headers=azure_headers(call.request, content_type))
    if length is not None:
        response.content_length = length
    encode_answer(response, call.behaviour)
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
        drop_connection(call.request, call.record)
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


async def drip_answer(request: web.Request, response: web.Response, behaviour: Behaviour) -> web.StreamResponse:
    """A whole answer (built by a handler, not yet sent) written a byte at a time."""
    body = response.body
    assert isinstance(body, bytes)
    dripping = web.StreamResponse(status=response.status, headers=response.headers)
    dripping.content_length = len(body)
    await dripping.prepare(request)
    await _write(dripping, body, behaviour)
    await dripping.write_eof()
    return dripping


def encode_answer(response: web.StreamResponse, behaviour: Behaviour | None) -> None:
    """Compress the answer as ``x-sim-encoding`` says, whatever the request's accept-encoding (an upstream that
    ignores ``identity``); another value only labels the plain bytes with an encoding nobody can decode."""
    if behaviour is None or behaviour.encoding is None:
        return
    coding = DECODABLE_ENCODINGS.get(behaviour.encoding)
    if coding is not None:
        response.enable_compression(force=coding)
    else:
        response.headers["Content-Encoding"] = behaviour.encoding


def drop_connection(request: web.Request, record: RecordedRequest) -> web.Response:
    """Close the socket without finishing the response (what a crashing upstream looks like to a client).

    Returns a placeholder that aiohttp will fail to write, which it handles silently.
    """
    record.aborted = True
    if request.transport is not None:
        request.transport.close()
    return web.Response()


def stream_script(
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
    include_usage = wants_usage(call.body)
    if include_usage:
        base["usage"] = None  # like OpenAI: every chunk but the last carries usage: null

    def chunk(choice: dict[str, Any]) -> bytes:
        return sse_event({"choices": [choice], **base})

    head = [FILTER_ONLY_EVENT]
    if opening_choice is not None:
        head.append(chunk(opening_choice))
    content = [chunk(content_choice(piece)) for piece in split_text(answer, call.behaviour.chunks)]
    tail = []
    if call.behaviour.annotations:
        tail.append(_annotation_event(len(answer)))
    tail.append(chunk(finish_choice))
    if include_usage:
        tail.append(sse_event({"choices": [], **base, "usage": usage}))
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
    return sse_event({"choices": [choice], "created": 0, "id": "", "model": "", "object": ""})
