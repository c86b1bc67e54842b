"""Server-sent events framing: split a byte stream into whole events.

Only the framing is parsed. Event bytes are returned exactly as received, so a
stream the gateway does not need to change reaches the client byte for byte.
"""

from __future__ import annotations

import re

# Lines end with CRLF, LF or a bare CR (the spec allows all three, mixed), and a blank line
# ends an event. Two line endings in a row always contain one of these pairs (a bare CR
# before an LF would be a CRLF), ending at the first byte of the blank line's ending.
_BLANK_LINE = re.compile(rb"\n[\r\n]|\r\r")


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
            end = _event_end(buffer, start)
            if end < 0:
                break
            event = buffer[start:end]
            events.append(event)
            start = end
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


def _event_end(buffer: bytes, start: int) -> int:
    """Where the first event from `start` ends (after its blank line), or -1 when none is complete.

    A blank line ended by a CR that is the buffer's last byte counts as complete: should an LF
    follow, it begins the next event as an empty line, which the spec ignores.
    """
    lf_lf = buffer.find(b"\n\n", start)
    if lf_lf >= 0 and buffer.find(b"\r", start, lf_lf) < 0:
        return lf_lf + 2  # LF framing, as Azure's: with no CR before it, no other blank line can come first
    blank = _BLANK_LINE.search(buffer, start)  # (a search byte by byte, where find is a memchr)
    if blank is None:
        return -1
    end = blank.end()
    if buffer[end - 1 : end + 1] == b"\r\n":  # the blank line's CRLF
        end += 1
    return end


def event_data(event: bytes) -> bytes | None:
    """The joined `data:` payload of one event, or None when it has none."""
    lines = [line for line in event.splitlines() if line.startswith(b"data:")]
    if not lines:
        return None
    return b"\n".join(line[5:].lstrip(b" ") for line in lines)
