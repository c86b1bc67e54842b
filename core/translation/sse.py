"""Server-sent events framing: split a byte stream into whole events.

Only the framing is parsed. Event bytes are returned exactly as received, so a
stream the gateway does not need to change reaches the client byte for byte.
"""

from __future__ import annotations

_SEPARATORS = (b"\n\n", b"\r\n\r\n")


class EventSplitter:
    """Accumulates chunks and returns the complete events they finish, up to `data: [DONE]`:
    nothing after it belongs to the answer (an upstream may keep the connection open)."""

    __slots__ = ("_buffer", "events", "done")

    def __init__(self) -> None:
        self._buffer = b""
        self.events = 0  # complete events so far
        self.done = False  # the [DONE] event came

    def feed(self, chunk: bytes) -> list[bytes]:
        if self.done:
            return []
        buffer = self._buffer + chunk if self._buffer else chunk
        events: list[bytes] = []
        start = 0
        while True:
            end, sep_len = _next_boundary(buffer, start)
            if end < 0:
                break
            event = buffer[start : end + sep_len]
            events.append(event)
            start = end + sep_len
            if b"[DONE]" in event and event_data(event) == b"[DONE]":
                self.done = True
                start = len(buffer)
                break
        self._buffer = buffer[start:]
        self.events += len(events)
        return events

    @property
    def pending(self) -> int:
        """Bytes of an event not complete yet."""
        return len(self._buffer)

    def rest(self) -> bytes:
        """Bytes of an unfinished event left when the stream ended."""
        rest, self._buffer = self._buffer, b""
        return rest


def _next_boundary(buffer: bytes, start: int) -> tuple[int, int]:
    best, best_len = -1, 0
    for sep in _SEPARATORS:
        index = buffer.find(sep, start)
        if index >= 0 and (best < 0 or index < best):
            best, best_len = index, len(sep)
    return best, best_len


def event_data(event: bytes) -> bytes | None:
    """The joined `data:` payload of one event, or None when it has none."""
    lines = [line for line in event.splitlines() if line.startswith(b"data:")]
    if not lines:
        return None
    return b"\n".join(line[5:].lstrip(b" ") for line in lines)
