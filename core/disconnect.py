"""The disconnect watch: abandons upstream work when the client is gone. A non-streamed completion
can run for minutes, and a stream for half an hour, with nobody left to pay attention to it.

Watching costs a task and a pending receive(); most answers arrive sooner than anyone gives up,
so the watch starts only after a short grace period. When the client is gone it cancels the
request's task, which drops the upstream call; `run` turns that cancellation into ClientDisconnected.
It must not run while the request body is still being read (an upload streamed upstream):
receive() would take body chunks away from it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from starlette.requests import Request

from core.errors import ClientDisconnected

T = TypeVar("T")


class DisconnectWatch:
    __slots__ = ("_request", "_task", "_timer", "_watcher", "_disconnected", "_held")
    GRACE_SECONDS = 0.05

    def __init__(self, request: Request, *, enabled: bool = True) -> None:
        self._request = request
        self._task = asyncio.current_task()
        self._watcher: asyncio.Task[None] | None = None
        self._disconnected = False
        self._held = False  # the response is with the server: a disconnect must not cancel its code
        self._timer: asyncio.TimerHandle | None = None
        if enabled:
            self._timer = asyncio.get_running_loop().call_later(self.GRACE_SECONDS, self._start)

    def _start(self) -> None:
        self._timer = None
        self._watcher = asyncio.ensure_future(_wait_for_disconnect(self._request))
        self._watcher.add_done_callback(self._on_disconnect)

    def _on_disconnect(self, watcher: asyncio.Task[None]) -> None:
        if watcher.cancelled() or watcher.exception() is not None:
            return
        self._disconnected = True
        if not self._held and self._task is not None:
            self._task.cancel()

    async def run(self, work: Awaitable[T]) -> T:
        try:
            return await work
        except asyncio.CancelledError:
            if self._disconnected and self._task is not None and self._task.uncancel() == 0:
                raise ClientDisconnected() from None
            raise

    def hold(self) -> None:
        """A streamed answer goes to the server, which starts it when it is ready: until `resume`,
        a disconnect is only noted."""
        self._held = True

    def resume(self) -> None:
        """The stream starts in the current task; ClientDisconnected if the client went away meanwhile.
        Watches from here on even where the request had a body to stream (it is all sent by now)."""
        self._held = False
        self._task = asyncio.current_task()
        if self._disconnected:
            raise ClientDisconnected()
        if self._timer is None and self._watcher is None:
            self._timer = asyncio.get_running_loop().call_later(self.GRACE_SECONDS, self._start)

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._watcher is not None:
            self._watcher.cancel()


async def _wait_for_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
