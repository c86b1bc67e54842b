"""Server-sent events framing: split a byte stream into whole events.

Only the framing is parsed. Event bytes are returned exactly as received, so a
stream the gateway does not need to change reaches the client byte for byte.
"""

from __future__ import annotations

_SEPARATORS = (b"\n\n", b"\r\n\r\n")


class EventSplitter:
    """Accumulates chunks and returns the complete events they finish."""

    __slots__ = ("_buffer",)

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[bytes]:
        buffer = self._buffer + chunk if self._buffer else chunk
        events: list[bytes] = []
        start = 0
        while True:
            end, sep_len = _next_boundary(buffer, start)
            if end < 0:
                break
            events.append(buffer[start : end + sep_len])
            start = end + sep_len
        self._buffer = buffer[start:]
        return events

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
