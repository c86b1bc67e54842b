"""Rewrite a streamed (SSE) answer on its way to the client.

Per event, the cheapest test that can decide is applied first: most events are
forwarded as the exact bytes Azure sent; only candidates are parsed as JSON.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from core.json_depth import too_deep
from core.translation.sse import EventSplitter, event_data
from core.translation.usage import Usage, estimate_prompt_tokens, read_usage


def is_filter_only(event: bytes) -> bool:
    """Azure's content-filter events (the prompt_filter_results first chunk and the
    async-filter annotation events) carry an empty id; no OpenAI client expects them."""
    if b'"id":""' not in event and b'"id": ""' not in event:  # (every event asks: no generator for two tests)
        return False
    chunk = event_json(event)
    return chunk is not None and chunk.get("id") == ""


def event_json(event: bytes) -> dict[str, Any] | None:
    """An event's data as a JSON object; None for `[DONE]`, comments and anything else, and for data nested too
    deep to re-encode (core/json_depth.py): such an event is relayed as it came, or skipped where it must be
    translated."""
    data = event_data(event)
    if data is None or data == b"[DONE]" or too_deep(data):
        return None
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return parsed if isinstance(parsed, dict) else None


class StreamRewriter:
    """Turns upstream chunks into the bytes to send the client, event by event.

    `hide_usage`: the gateway asked upstream for `stream_options.include_usage` on the
    caller's behalf; the caller did not, so it gets neither the final usage chunk nor
    the `"usage": null` every other chunk then carries, exactly as OpenAI would stream.
    `prompt`: the request's body; when set, a stream that ends before its usage chunk is
    still counted, by an estimate (see `counted_usage`). `convert`: rewrites each event kept (forcePrompt's
    completions chunks as chat chunks)."""

    __slots__ = ("splitter", "_drop_filter_events", "_convert", "_hide_usage", "_prompt", "_events", "usage")

    def __init__(
        self,
        *,
        drop_filter_events: bool,
        convert: Callable[[bytes], bytes] | None = None,
        hide_usage: bool = False,
        prompt: bytes | None = None,
    ) -> None:
        self.splitter = EventSplitter()
        self._drop_filter_events = drop_filter_events
        self._convert = convert
        self._hide_usage = hide_usage
        self._prompt = prompt  # estimated only if the stream is cut short
        self._events = 0  # answer events relayed: about one token each
        self.usage: Usage | None = None

    def feed(self, chunk: bytes) -> bytes:
        kept = []
        for event in self.splitter.feed(chunk):
            if b'"usage"' in event:
                if self._hide_usage and (hidden_null := _without_last_null_usage(event)) is not None:
                    event = hidden_null  # `"usage":null`: nothing to count, and no JSON to parse
                else:
                    self.usage = _chunk_usage(event) or self.usage
                    if self._hide_usage:
                        hidden = _without_usage(event)
                        if hidden is None:
                            continue
                        event = hidden
            if self._drop_filter_events and is_filter_only(event):
                continue
            if self._convert is not None:
                event = self._convert(event)
            self._events += 1
            kept.append(event)
        return b"".join(kept)

    def counted_usage(self) -> tuple[Usage | None, bool]:
        """The upstream's usage, or for a stream cut short an estimate and True: the prompt's
        estimate, one completion token per event relayed (Azure streams about one per chunk)."""
        if self.usage is not None or self._prompt is None:
            return self.usage, False
        completion = max(self._events - (1 if self.splitter.done else 0), 0)
        prompt = estimate_prompt_tokens(self._prompt)
        return Usage(prompt, completion, prompt + completion), True

    def finish(self) -> bytes:
        """Whatever partial event remained when the upstream closed, as is."""
        return self.splitter.rest()


def _chunk_usage(event: bytes) -> Usage | None:
    """The top-level usage of a chunk (the usage chunk's; every other chunk's is null, or absent)."""
    data = event_data(event)
    return read_usage(data) if data is not None else None


_NULL_USAGE_LAST = b',"usage":null}'
_NULL_USAGE_EVENT_END = _NULL_USAGE_LAST + b"\n\n"  # as Azure ends each such event


def _without_last_null_usage(event: bytes) -> bytes | None:
    """The event without its top-level `"usage":null`, when that is its data's last key, as Azure writes
    every chunk but the usage chunk once usage is asked for; None otherwise. The object's last byte
    closes the event's top-level object, so the key before it is that object's own, and a string
    cannot hold those bytes (its quotes would be escaped)."""
    if event.endswith(_NULL_USAGE_EVENT_END):  # Azure's own line ends, as every chunk comes: nothing to strip
        data, end = event[: -len(_NULL_USAGE_EVENT_END)], b"}\n\n"
    else:
        whole = event.rstrip(b"\r\n")
        if not whole.endswith(_NULL_USAGE_LAST):
            return None
        data, end = whole[: -len(_NULL_USAGE_LAST)], b"}" + event[len(whole) :]
    if not data.startswith(b"data:") or b"\n" in data or b"\r" in data or b'"usage"' in data:
        return None  # not a single data line with that one `usage` key: the general path decides
    return data + end


def _without_usage(event: bytes) -> bytes | None:
    """The event without its `usage` key; None for the usage-only chunk (`choices: []`)."""
    chunk = event_json(event)
    if chunk is None or "usage" not in chunk:
        return event
    if chunk.get("choices") == [] and chunk["usage"] is not None:
        return None
    del chunk["usage"]
    return b"data: " + orjson.dumps(chunk) + b"\n\n"
