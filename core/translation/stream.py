"""Rewrite a streamed (SSE) answer on its way to the client.

Per event, the cheapest test that can decide is applied first: most events are
forwarded as the exact bytes Azure sent; only candidates are parsed as JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from core.translation.response import completion_chunk_to_chat_chunk
from core.translation.sse import EventSplitter, event_data
from core.translation.usage import Usage, find_usage

_EMPTY_ID = (b'"id":""', b'"id": ""')


def is_filter_only(event: bytes) -> bool:
    """Azure's content-filter events (the prompt_filter_results first chunk and the
    async-filter annotation events) carry an empty id; no OpenAI client expects them."""
    if not any(marker in event for marker in _EMPTY_ID):
        return False
    chunk = event_json(event)
    return chunk is not None and chunk.get("id") == ""


def event_json(event: bytes) -> dict[str, Any] | None:
    """An event's data as a JSON object; None for `[DONE]`, comments and anything else."""
    data = event_data(event)
    if data is None or data == b"[DONE]":
        return None
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


class StreamRewriter:
    """Turns upstream chunks into the bytes to send the client, event by event."""

    __slots__ = ("splitter", "_drop_filter_events", "_convert", "usage")

    def __init__(self, *, drop_filter_events: bool, completions_as_chat: bool) -> None:
        self.splitter = EventSplitter()
        self._drop_filter_events = drop_filter_events
        self._convert: Callable[[bytes], bytes] | None = _CompletionsToChat().convert if completions_as_chat else None
        self.usage: Usage | None = None

    def feed(self, chunk: bytes) -> bytes:
        kept = []
        for event in self.splitter.feed(chunk):
            if b'"usage"' in event:
                self.usage = find_usage(event) or self.usage
            if self._drop_filter_events and is_filter_only(event):
                continue
            if self._convert is not None:
                event = self._convert(event)
            kept.append(event)
        return b"".join(kept)

    def finish(self) -> bytes:
        """Whatever partial event remained when the upstream closed, as is."""
        return self.splitter.rest()


class _CompletionsToChat:
    """forcePrompt: completions chunks become chat.completion.chunk events."""

    __slots__ = ("_first",)

    def __init__(self) -> None:
        self._first = True

    def convert(self, event: bytes) -> bytes:
        chunk = event_json(event)
        if chunk is None or chunk.get("object") != "text_completion":
            return event
        converted = completion_chunk_to_chat_chunk(chunk, first=self._first)
        self._first = False
        return b"data: " + orjson.dumps(converted) + b"\n\n"
