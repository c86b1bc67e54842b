"""Relaying an upstream answer to the client: headers, streamed bodies, and the
disconnect watch that abandons upstream work nobody is waiting for any more.

Shared by the deployment-scoped proxy (core/proxy.py) and the resource-scoped
one (core/resources.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Mapping
from typing import Protocol, TypeVar

from starlette.requests import Request
from starlette.responses import StreamingResponse

from core.accesslog import AccessRecord
from core.errors import ClientDisconnected, GatewayError
from core.translation.usage import Usage
from core.transport import UpstreamResponse

# Upstream response headers worth relaying; everything else (cookies, Azure's
# internal routing headers) stays behind.
_RELAYED_HEADERS = frozenset(
    {"content-type", "cache-control", "retry-after", "retry-after-ms", "apim-request-id", "openai-processing-ms"}
)
JSON = "application/json"
T = TypeVar("T")


class RelayedStream(StreamingResponse):
    """A streamed answer; it writes its own access-log line when the stream ends."""


class StreamTransform(Protocol):
    """Rewrites a streamed body chunk by chunk (see core/translation/stream.py)."""

    usage: Usage | None

    def feed(self, chunk: bytes) -> bytes: ...

    def finish(self) -> bytes: ...


def relayed_headers(upstream: Mapping[str, str], request_id: str, *, keep_length: bool = False) -> dict[str, str]:
    headers = {
        name.lower(): value
        for name, value in upstream.items()
        if name.lower() in _RELAYED_HEADERS or name.lower().startswith("x-ratelimit-")
    }
    if keep_length and "content-length" in upstream:
        # A download relayed byte for byte keeps its length, so clients can show progress.
        headers["content-length"] = upstream["content-length"]
    headers["x-request-id"] = request_id
    return headers


def relay_stream(
    upstream: UpstreamResponse, record: AccessRecord, transform: StreamTransform | None, headers: dict[str, str]
) -> RelayedStream:
    return RelayedStream(_relay(upstream, record, transform), upstream.status, headers)


async def _relay(
    upstream: UpstreamResponse, record: AccessRecord, transform: StreamTransform | None
) -> AsyncIterator[bytes]:
    finished = False
    try:
        async for chunk in upstream.iter_chunks():
            out = transform.feed(chunk) if transform is not None else chunk
            if out:
                yield out
        rest = transform.finish() if transform is not None else b""
        if rest:
            yield rest
        finished = True
    except GatewayError as error:
        # Headers are gone already: tell the client in-band, the way OpenAI's SDKs read it.
        record.error_code = error.code
        if transform is not None:
            yield b"data: " + error.body() + b"\n\n"
    finally:
        if finished:
            upstream.release()
        else:
            upstream.close()  # client gone or upstream broken: drop the upstream connection
        if transform is not None:
            record.set_usage(transform.usage)
        record.emit()


class DisconnectWatch:
    """Abandons upstream work when the client disconnects: a non-streamed completion
    can run for minutes, and nobody is left to pay attention to it.

    Watching costs a task and a pending receive(); most answers arrive sooner than
    anyone gives up, so the watch starts only after a short grace period. When the
    client is gone it cancels the request's task, which drops the upstream call.
    It must not run while the request body is still being read (an upload streamed
    upstream): receive() would take body chunks away from it.
    """

    __slots__ = ("_request", "_task", "_timer", "_watcher", "_disconnected")
    GRACE_SECONDS = 0.05

    def __init__(self, request: Request, *, enabled: bool = True) -> None:
        self._request = request
        self._task = asyncio.current_task()
        self._watcher: asyncio.Task[None] | None = None
        self._disconnected = False
        self._timer = asyncio.get_running_loop().call_later(self.GRACE_SECONDS, self._start) if enabled else None

    def _start(self) -> None:
        self._watcher = asyncio.ensure_future(_wait_for_disconnect(self._request))
        self._watcher.add_done_callback(self._on_disconnect)

    def _on_disconnect(self, watcher: asyncio.Task[None]) -> None:
        if watcher.cancelled() or watcher.exception() is not None or self._task is None:
            return
        self._disconnected = True
        self._task.cancel()

    async def run(self, work: Awaitable[T]) -> T:
        try:
            return await work
        except asyncio.CancelledError:
            if self._disconnected and self._task is not None and self._task.uncancel() == 0:
                raise ClientDisconnected() from None
            raise

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._watcher is not None:
            self._watcher.cancel()


async def _wait_for_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
