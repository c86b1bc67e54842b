"""Forward one deployment-scoped call upstream and relay the answer.

The request body is kept whole until an upstream has answered, and the backend
is chosen per attempt, so a failover policy can retry elsewhere before the first
byte reaches the client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from core.accesslog import AccessRecord
from core.auth import Caller
from core.config.model import Backend, Route
from core.errors import ClientDisconnected, GatewayError, invalid_api_key
from core.gateway import Gateway
from core.translation.errors import openai_error_body
from core.translation.request import rewrite_body, upstream_operation
from core.translation.response import completion_to_chat
from core.translation.stream import StreamRewriter
from core.translation.usage import find_usage
from core.transport import UpstreamResponse

# Upstream response headers worth relaying; everything else (cookies, Azure's
# internal routing headers) stays behind.
_RELAYED_HEADERS = frozenset(
    {"content-type", "cache-control", "retry-after", "retry-after-ms", "apim-request-id", "openai-processing-ms"}
)
JSON = "application/json"
T = TypeVar("T")


@dataclass(slots=True)
class Call:
    """One client request, parsed and authorised, ready to forward."""

    operation: str  # as after /v1/, e.g. "chat/completions"
    route: Route
    caller: Caller
    raw_body: bytes
    payload: dict[str, Any]
    stream: bool
    client_headers: list[tuple[str, str]]  # already filtered of hop-by-hop and auth headers
    record: AccessRecord


class RelayedStream(StreamingResponse):
    """A streamed answer; it writes its own access-log line when the stream ends."""


async def forward(request: Request, gateway: Gateway, call: Call) -> Response:
    watch = DisconnectWatch(request)
    try:
        return await _forward(watch, gateway, call)
    finally:
        # Before a StreamingResponse starts: Starlette then listens for the disconnect itself.
        watch.close()


async def _forward(watch: DisconnectWatch, gateway: Gateway, call: Call) -> Response:
    backend, upstream, started = await watch.run(_send(gateway, call))
    record = call.record
    record.group = backend.group
    headers = relayed_headers(upstream.headers, record.request_id)
    if upstream.status >= 400:
        body = await watch.run(upstream.read())
        record.upstream_ms = _ms_since(started)
        return Response(openai_error_body(upstream.status, body), upstream.status, headers, media_type=JSON)

    completions_as_chat = backend.force_prompt and call.operation == "chat/completions"
    if call.stream and upstream.headers.get("content-type", "").startswith("text/event-stream"):
        record.upstream_ms = _ms_since(started)
        rewriter = StreamRewriter(
            drop_filter_events=gateway.state.config.settings.normalize_streams,
            completions_as_chat=completions_as_chat,
        )
        return RelayedStream(_relay_stream(upstream, rewriter, record), upstream.status, headers)

    body = await watch.run(upstream.read())
    record.upstream_ms = _ms_since(started)
    if completions_as_chat:
        body = orjson.dumps(completion_to_chat(orjson.loads(body)))
    record.set_usage(find_usage(body))
    return Response(body, upstream.status, headers)


async def _send(gateway: Gateway, call: Call) -> tuple[Backend, UpstreamResponse, float]:
    """Try the route's backends in order until one answers (connection-level failures only)."""
    failure: GatewayError | None = None
    for backend in call.route.backends:
        operation = upstream_operation(backend, call.operation)
        body = rewrite_body(backend, call.operation, call.raw_body, call.payload)
        headers = upstream_headers(backend, call)
        started = time.perf_counter()
        try:
            upstream = await gateway.transport.send("POST", backend.url(operation), headers, body, group=backend.group)
        except GatewayError as error:
            failure = error
            continue
        return backend, upstream, started
    assert failure is not None  # a route always has at least one backend
    raise failure


def upstream_headers(backend: Backend, call: Call) -> list[tuple[str, str]]:
    # The group's own headers (auth, additionalHeaders) win over same-named client headers.
    configured = {name for name, _ in backend.headers}
    headers = [(name, value) for name, value in call.client_headers if name not in configured]
    headers.append(("content-type", JSON))
    headers.append(("accept-encoding", "identity"))
    # Azure logs this id, which ties its diagnostics to our access log.
    headers.append(("x-ms-client-request-id", call.record.request_id))
    if backend.auth == "passthrough":
        key = call.caller.presented_key
        if key is None:
            raise invalid_api_key()
        headers.append(("api-key", key))
        if backend.serverless:  # Azure AI serverless endpoints take the Bearer form
            headers.append(("authorization", f"Bearer {key}"))
    headers.extend(backend.headers)
    return headers


def relayed_headers(upstream: Mapping[str, str], request_id: str) -> dict[str, str]:
    headers = {
        name.lower(): value
        for name, value in upstream.items()
        if name.lower() in _RELAYED_HEADERS or name.lower().startswith("x-ratelimit-")
    }
    headers["x-request-id"] = request_id
    return headers


async def _relay_stream(upstream: UpstreamResponse, rewriter: StreamRewriter, record: AccessRecord) -> AsyncIterator[bytes]:
    finished = False
    try:
        async for chunk in upstream.iter_chunks():
            out = rewriter.feed(chunk)
            if out:
                yield out
        rest = rewriter.finish()
        if rest:
            yield rest
        finished = True
    except GatewayError as error:
        # Headers are gone already: tell the client in-band, the way OpenAI's SDKs read it.
        record.error_code = error.code
        yield b"data: " + error.body() + b"\n\n"
    finally:
        if finished:
            upstream.release()
        else:
            upstream.close()  # client gone or upstream broken: drop the upstream connection
        record.set_usage(rewriter.usage)
        record.emit()


class DisconnectWatch:
    """Abandons upstream work when the client disconnects: a non-streamed completion
    can run for minutes, and nobody is left to pay attention to it.

    Watching costs a task and a pending receive(); most answers arrive sooner than
    anyone gives up, so the watch starts only after a short grace period. When the
    client is gone it cancels the request's task, which drops the upstream call.
    """

    __slots__ = ("_request", "_task", "_timer", "_watcher", "_disconnected")
    GRACE_SECONDS = 0.05

    def __init__(self, request: Request) -> None:
        self._request = request
        self._task = asyncio.current_task()
        self._watcher: asyncio.Task[None] | None = None
        self._disconnected = False
        self._timer = asyncio.get_running_loop().call_later(self.GRACE_SECONDS, self._start)

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
        self._timer.cancel()
        if self._watcher is not None:
            self._watcher.cancel()


async def _wait_for_disconnect(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
