"""Relaying an upstream answer to the client: headers, streamed bodies, and the
disconnect watch that abandons upstream work nobody is waiting for any more.

Shared by the deployment-scoped proxy (core/proxy.py) and the resource-scoped
one (core/resources.py).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncGenerator, Awaitable, Mapping
from http import HTTPStatus
from typing import Any, Protocol, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from core.accesslog import AccessRecord
from core.errors import ClientDisconnected, GatewayError, upstream_bad_response, upstream_timeout
from core.translation.errors import openai_error_body
from core.translation.sse import EventSplitter
from core.translation.usage import Usage
from core.transport import TransportError, UpstreamResponse
from core.upstream.errors import gateway_error

# Upstream response headers worth relaying; everything else (cookies, Azure's
# internal routing headers) stays behind.
_RELAYED_HEADERS = frozenset(
    {"content-type", "cache-control", "retry-after", "retry-after-ms", "apim-request-id", "openai-processing-ms"}
)
JSON = "application/json"
# Statuses a client can act on; a redirect is not followed, so it is no answer either.
_VALID_STATUSES = frozenset(status.value for status in HTTPStatus if 200 <= status < 300 or status >= 400)
# After [DONE], the little time an upstream gets to end its answer, so its connection can be reused.
_SETTLE_SECONDS = 1.0
T = TypeVar("T")


class StreamTransform(Protocol):
    """Rewrites a streamed body chunk by chunk (see core/translation/stream.py)."""

    splitter: EventSplitter  # the event framing: its event count and [DONE] pace the relay

    def feed(self, chunk: bytes) -> bytes: ...

    def finish(self) -> bytes: ...

    def counted_usage(self) -> tuple[Usage | None, bool]: ...


def relayed_headers(upstream: Mapping[str, str], request_id: str, *, byte_for_byte: bool = False) -> dict[str, str]:
    headers = {
        name.lower(): value
        for name, value in upstream.items()
        if name.lower() in _RELAYED_HEADERS or name.lower().startswith("x-ratelimit-")
    }
    if byte_for_byte:
        # A download relayed as it came keeps its length (clients show progress) and its encoding.
        for name in ("content-length", "content-encoding"):
            if name in upstream:
                headers[name] = upstream[name]
    headers["x-request-id"] = request_id
    return headers


def check_status(upstream: UpstreamResponse, group: str) -> None:
    """GatewayError 502 for a status no client can act on (non-standard, 1xx, a redirect)."""
    if upstream.status not in _VALID_STATUSES:
        upstream.close()
        what = "redirect" if 300 <= upstream.status < 400 else "status"
        raise upstream_bad_response(
            group, f"answered with HTTP {what} {upstream.status}, which the gateway does not relay"
        )


def error_response(upstream: UpstreamResponse, body: bytes, request_id: str) -> Response:
    """An upstream error, OpenAI-shaped, with its status and rate-limit headers (not its content type)."""
    headers = relayed_headers(upstream.headers, request_id)
    headers.pop("content-type", None)
    return Response(openai_error_body(upstream.status, body), upstream.status, headers, media_type=JSON)


def json_object(body: bytes, group: str) -> dict[str, Any]:
    """A 2xx JSON answer the gateway must read: GatewayError 502 when it is not a JSON object."""
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        raise upstream_bad_response(group, "answered with a body that is not a JSON object")
    return answer


async def within(deadline: float, work: Awaitable[T], record: AccessRecord) -> T:
    """`work`, or GatewayError 504 once the event loop's clock reaches `deadline`; a transport
    failure becomes the client's 502 or 504."""
    try:
        async with asyncio.timeout_at(deadline):
            return await work
    except TimeoutError:
        raise upstream_timeout(record.group or "?") from None
    except TransportError as error:
        raise gateway_error(error, record.group or "?") from None


class RelayedStream(StreamingResponse):
    """A streamed answer. It writes its own access-log line when the stream ends; a byte
    stream the upstream broke off ends without its final chunk, so that uvicorn drops the
    connection and the client sees a broken transfer, never a short file that looks whole."""

    def __init__(self, relay: Relay, status: int, headers: dict[str, str]) -> None:
        self._chunks = relay.chunks()
        super().__init__(self._chunks, status, headers)
        self._relay = relay

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Settle here, not in stream_response: Starlette cancels stream_response as soon as
        # the server reports the finished response as a disconnect, which would drop every
        # upstream connection whose end comes a moment after [DONE].
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self._relay.settle()

    async def stream_response(self, send: Send) -> None:
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            async for chunk in self._chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if self._relay.complete:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            await self._chunks.aclose()  # the client went away mid-stream: stop reading now, not at garbage collection


def relay_stream(
    upstream: UpstreamResponse,
    record: AccessRecord,
    transform: StreamTransform | None,
    headers: dict[str, str],
    *,
    ends_at: float,
    idle: float | None = None,
    max_event_bytes: int | None = None,
) -> RelayedStream:
    """`ends_at`: when the whole answer must be through (event loop clock); `idle`: seconds
    allowed between two complete events (SSE only); `max_event_bytes`: the largest event."""
    if transform is not None:
        try:
            upstream.decode()  # the gateway reads the events; bytes relayed as they come keep their encoding
        except TransportError as error:
            raise gateway_error(error, record.group or "?") from None
    return RelayedStream(Relay(upstream, record, transform, ends_at, idle, max_event_bytes), upstream.status, headers)


class Relay:
    """Reads one upstream answer for the client until its end, its [DONE], an error or a deadline."""

    __slots__ = (
        "_upstream",
        "_record",
        "_transform",
        "_ends_at",
        "_idle",
        "_max_event",
        "_started",
        "_unsettled",
        "complete",
    )

    def __init__(
        self,
        upstream: UpstreamResponse,
        record: AccessRecord,
        transform: StreamTransform | None,
        ends_at: float,
        idle: float | None,
        max_event_bytes: int | None,
    ) -> None:
        self._upstream = upstream
        self._record = record
        self._transform = transform
        self._ends_at = ends_at
        self._idle = idle
        self._max_event = max_event_bytes
        self._started = False
        self._unsettled = False  # stopped at [DONE]: the upstream's answer may not have ended yet
        self.complete = False  # the client's response is whole (possibly ending in an error event)

    async def chunks(self) -> AsyncGenerator[bytes, None]:
        self._started = True
        upstream, record, transform = self._upstream, self._record, self._transform
        group = record.group or "?"
        loop = asyncio.get_running_loop()
        idle_ends_at = math.inf if self._idle is None else loop.time() + self._idle
        try:
            while True:
                deadline = min(self._ends_at, idle_ends_at)
                try:
                    # One timer per read: aiohttp's read timeout restarts at every byte,
                    # so only a deadline ends an upstream that drips.
                    async with asyncio.timeout_at(deadline):
                        chunk = await upstream.next_chunk()
                except TimeoutError:
                    raise self._timeout(group, loop.time() >= self._ends_at) from None
                if not chunk:
                    break
                if transform is None:
                    yield chunk
                    continue
                splitter = transform.splitter
                events = splitter.events
                out = transform.feed(chunk)
                if out:
                    yield out
                if splitter.done:
                    self._unsettled = True
                    break
                if splitter.events != events and self._idle is not None:
                    idle_ends_at = loop.time() + self._idle
                if self._max_event is not None and splitter.pending > self._max_event:
                    raise upstream_bad_response(group, f"sent a stream event larger than {self._max_event} bytes")
            rest = transform.finish() if transform is not None else b""
            if rest:
                yield rest
            self.complete = True
        except (GatewayError, TransportError) as failure:
            error = failure if isinstance(failure, GatewayError) else gateway_error(failure, group)
            record.error_code = error.code
            if transform is not None:
                # Headers are gone already: tell the client in-band, the way OpenAI's SDKs read it.
                yield b"data: " + error.body() + b"\n\n"
                self.complete = True
        except (GeneratorExit, asyncio.CancelledError):  # the client went away mid-stream
            _log_client_gone(record)
            raise
        finally:
            if not self._unsettled:
                # Back to the pool when read to its end; aiohttp drops it instead when it was not
                # (client gone, upstream broken or too slow).
                upstream.release()
            if transform is not None:
                usage, estimated = transform.counted_usage()
                record.set_usage(usage)
                record.usage_estimated = estimated or None
            record.emit()

    def _timeout(self, group: str, overall: bool) -> GatewayError:
        if overall:
            return upstream_timeout(group, "did not finish its answer within gateway.timeouts.stream")
        return upstream_timeout(group, "sent no complete event within gateway.timeouts.idle")

    async def settle(self) -> None:
        """Once the client's response is over. After [DONE], let the upstream end its answer so
        its connection can be reused, else drop the connection (it may never end)."""
        if not self._started:  # the client was gone before the first byte
            self._upstream.close()
            _log_client_gone(self._record)
            self._record.emit()
            return
        if not self._unsettled:
            return
        self._unsettled = False
        upstream = self._upstream
        try:
            async with asyncio.timeout(_SETTLE_SECONDS):
                while await upstream.next_chunk():
                    pass  # nothing after [DONE] is meant for anyone
        except (TimeoutError, TransportError):
            upstream.close()
        except BaseException:
            upstream.close()
            raise
        else:
            upstream.release()


def _log_client_gone(record: AccessRecord) -> None:
    """The status sent was 200, but the client did not take the whole answer: say so (499, like nginx)."""
    gone = ClientDisconnected()
    record.status, record.error_code = gone.status, gone.code


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
