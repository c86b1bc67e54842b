"""Keep-alives for a streamed answer whose upstream is silent.

Azure Functions' front end cuts a response that sends nothing for 230 s, and a reasoning model may think that long
before its first token. An SSE comment line (`: keep-alive`) is part of the stream's format and every client
ignores it (the WHATWG event-stream format: a line starting with a colon), so the gateway sends one whenever the
upstream has been silent for the configured interval. Only between events: the stream transforms send whole
events, and a comment is only sent while the relay waits for the upstream, never after the answer's end.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.types import Message, Send

KEEP_ALIVE: Message = {"type": "http.response.body", "body": b": keep-alive\n\n", "more_body": True}


class KeepAlive:
    """One stream's keep-alives: a timer per stream, not per chunk; the relay says when it waits and when it heard."""

    __slots__ = ("_send", "_interval", "_loop", "_heard_at", "_timer", "_sending", "waiting")

    def __init__(self, send: Send, interval: float) -> None:
        self._send = send
        self._interval = interval
        self._loop = asyncio.get_running_loop()
        self._heard_at = self._loop.time()
        self._sending: asyncio.Task[None] | None = None
        self.waiting = False  # the relay is waiting for the upstream: nothing else is being sent
        self._timer = self._loop.call_at(self._heard_at + interval, self._beat)

    def heard(self) -> None:
        """The upstream sent something: the silence starts again."""
        self._heard_at = self._loop.time()

    def stop(self) -> None:
        """The stream is over (or failed): no keep-alive after this, not even one already due."""
        self._timer.cancel()
        if self._sending is not None and not self._sending.done():
            self._sending.cancel()

    def _beat(self) -> None:
        now = self._loop.time()
        due = self._heard_at + self._interval
        if now >= due:
            if self.waiting and (self._sending is None or self._sending.done()):
                self._sending = self._loop.create_task(self._comment())
            due = now + self._interval
        self._timer = self._loop.call_at(due, self._beat)

    async def _comment(self) -> None:
        # A client gone shows on the relay's next write, and ends the stream there.
        with contextlib.suppress(Exception):
            await self._send(KEEP_ALIVE)
