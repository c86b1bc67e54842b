"""Relaying an upstream answer to the client as it arrives: the headers worth relaying, and the
streamed response, which reads the upstream until its end, its [DONE], an error or a deadline.

A stream is an ASGI response of its own: it sends its start, each piece as it is ready and its end,
and a byte stream the upstream broke off ends without its final chunk, so that the server drops the
connection and the client sees a broken transfer, never a short file that looks whole.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import NoReturn

from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from core.accesslog import AccessRecord
from core.errors import ClientDisconnected, GatewayError, upstream_bad_response, upstream_timeout
from core.failures import client_error
from core.guard import CallGuard
from core.keepalive import KeepAlive
from core.translation.translator import StreamTransform
from core.upstream.transport import TransportError, UpstreamResponse

# Upstream response headers worth relaying; everything else (cookies, Azure's
# internal routing headers) stays behind.
_RELAYED_HEADERS = frozenset(
    {"content-type", "cache-control", "retry-after", "retry-after-ms", "apim-request-id", "openai-processing-ms"}
)
_RELAYED_BYTES = frozenset(name.encode() for name in _RELAYED_HEADERS)
# A download relayed as it came keeps its length (clients show progress) and its encoding.
_RELAYED_BYTE_FOR_BYTE = _RELAYED_BYTES | {b"content-length", b"content-encoding"}
JSON = "application/json"
# Statuses a client can act on; a redirect is not followed, so it is no answer either.
VALID_STATUSES = frozenset(status.value for status in HTTPStatus if 200 <= status < 300 or status >= 400)
# After [DONE], the little time an upstream gets to end its answer, so its connection can be reused.
_SETTLE_SECONDS = 1.0


def relayed_headers(
    upstream: Sequence[tuple[bytes, bytes]], *, byte_for_byte: bool = False, rate_limits: bool = False
) -> list[tuple[bytes, bytes]]:
    """The upstream's headers worth relaying, in their wire form (lower-case names). `rate_limits`: Azure's
    `x-ratelimit-*` too, for a call made with the caller's own Azure key (pass-through), whose quota they describe.
    Any other caller shares the deployment's quota with every caller (in a pool, one member's of several), and
    OpenAI's headers of those names tell a caller its own limits: a limited key's, which the gateway sends itself
    (core/budgets.py)."""
    names = _SPELLINGS[byte_for_byte][rate_limits]
    headers = []
    try:  # every spelling seen before, as with nearly every answer (a subscript costs a third of a get's call)
        for name, value in upstream:
            relayed = names[name]
            if relayed is not None:
                headers.append((relayed, value))
        return headers
    except KeyError:
        return _relayed_learning(upstream, names, byte_for_byte, rate_limits)


def _relayed_learning(
    upstream: Sequence[tuple[bytes, bytes]], names: dict[bytes, bytes | None], byte_for_byte: bool, rate_limits: bool
) -> list[tuple[bytes, bytes]]:
    """relayed_headers, learning the spellings not seen before as it goes."""
    headers = []
    for name, value in upstream:
        relayed = names.get(name, _UNSEEN)
        if relayed is _UNSEEN:
            relayed = _relayed_name(names, name, byte_for_byte, rate_limits)
        if relayed is not None:
            headers.append((relayed, value))
    return headers


# An upstream sends the same few header names, spelled the same way, with every answer: what each spelling is
# relayed as (its lower-case name, or None) is decided once, not lower-cased and matched for every answer. One
# table per way of relaying: _SPELLINGS[byte_for_byte][rate_limits].
_SPELLINGS: tuple[tuple[dict[bytes, bytes | None], ...], ...] = (({}, {}), ({}, {}))
_MAX_NAMES = 256  # spellings remembered per table; an upstream sending ever new names makes the gateway forget them
_UNSEEN = b""  # (no header has an empty name: aiohttp's parser refuses one)


def _relayed_name(
    names: dict[bytes, bytes | None], name: bytes, byte_for_byte: bool, rate_limits: bool
) -> bytes | None:
    lower = name.lower()
    relayed = lower in (_RELAYED_BYTE_FOR_BYTE if byte_for_byte else _RELAYED_BYTES)
    kept = lower if relayed or (rate_limits and lower.startswith(b"x-ratelimit-")) else None
    if len(names) >= _MAX_NAMES:
        names.clear()
    names[name] = kept
    return kept


def refuse_status(upstream: UpstreamResponse, group: str) -> NoReturn:
    """GatewayError 502 for a status no client can act on (non-standard, 1xx, a redirect): one not in
    VALID_STATUSES, which the caller checks."""
    upstream.close()
    what = "redirect" if 300 <= upstream.status < 400 else "status"
    raise upstream_bad_response(group, f"answered with HTTP {what} {upstream.status}, which the gateway does not relay")


class RelayedStream(Response):
    """A streamed answer, written by its relay. The guard that bounded the call until now (core/guard.py)
    bounds the stream too; `ended` is told once the stream is over, however it ended."""

    def __init__(
        self,
        relay: Relay,
        status: int,
        headers: list[tuple[bytes, bytes]],
        guard: CallGuard,
        ended: Callable[[], None],
    ) -> None:
        self.status_code = status
        self.raw_headers = headers  # in their wire form already
        self.background = None
        self._relay = relay
        self._guard = guard
        self._ended = ended

    def abandon(self) -> None:
        """Built, then never sent: nobody will read the upstream's answer."""
        self._relay.close()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        relay, guard = self._relay, self._guard
        try:
            guard.resume()
            start = {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
            complete = await guard.run(relay.send_to(send, start, guard))
            # Unguarded from here: once the response is over, the server reports it as a disconnect.
            guard.close()
            if complete:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (ClientDisconnected, OSError):  # OSError: an ASGI 2.4 server's send, to a client gone
            relay.client_gone()
        except asyncio.CancelledError:  # the server ended the response
            relay.client_gone()
            raise
        finally:
            guard.close()
            await relay.settle()
            self._ended()


class Relay:
    """Reads one upstream answer for the client until its end, its [DONE], an error or a deadline."""

    __slots__ = (
        "_upstream", "_record", "_group", "_transform", "_ends_at", "_idle", "_max_event", "_keep_alive", "_unsettled"
    )  # fmt: skip

    def __init__(
        self,
        upstream: UpstreamResponse,
        record: AccessRecord,
        group: str,
        transform: StreamTransform | None,
        *,
        ends_at: float,
        idle: float | None = None,
        max_event_bytes: int | None = None,
        keep_alive: float = 0.0,
    ) -> None:
        """`ends_at`: when the whole answer must be through (event loop clock); `idle`: seconds allowed between two
        complete events (in a byte stream, between two pieces); `max_event_bytes`: the largest event; `keep_alive`:
        seconds of upstream silence before the client gets an SSE comment (core/keepalive.py; SSE only; 0: never)."""
        self._upstream = upstream
        self._record = record
        self._group = group
        self._transform = transform
        self._ends_at = ends_at
        self._idle = idle
        self._max_event = max_event_bytes
        self._keep_alive = keep_alive
        self._unsettled = False  # stopped at [DONE]: the upstream's answer may not have ended yet

    async def send_to(self, send: Send, start: Message, guard: CallGuard) -> bool:
        """The response's start and its body as it arrives, each read within the stream's deadlines
        (`guard` ends a read that passes them); True when the client's answer is whole (possibly
        ending in an error event), so that its end may be sent."""
        upstream, record, transform, group = self._upstream, self._record, self._transform, self._group
        loop = asyncio.get_running_loop()
        idle = self._idle
        guard.expect(
            self._ends_at if idle is None else min(self._ends_at, loop.time() + idle), self._timeout, watch=True
        )
        complete = False
        await send(start)
        keep_alive = KeepAlive(send, self._keep_alive) if transform is not None and self._keep_alive > 0 else None
        try:
            while True:
                try:
                    if keep_alive is None:
                        chunk = await upstream.next_chunk()
                    else:
                        keep_alive.waiting = True
                        chunk = await upstream.next_chunk()
                        keep_alive.waiting = False
                        keep_alive.heard()
                except asyncio.CancelledError as cancelled:
                    # A deadline passed (or the client went away): the guard says which.
                    failure = guard.cancelled(cancelled)
                    if failure is cancelled:
                        raise
                    raise failure from cancelled
                if not chunk:
                    break
                if transform is None:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
                    heard = True  # a byte stream's silence is between two pieces
                else:
                    splitter = transform.splitter
                    events = splitter.events
                    out = transform.feed(chunk)
                    if out:
                        await send({"type": "http.response.body", "body": out, "more_body": True})
                    if splitter.done:
                        self._unsettled = True
                        break
                    if self._max_event is not None and splitter.pending > self._max_event:
                        raise upstream_bad_response(group, f"sent a stream event larger than {self._max_event} bytes")
                    heard = splitter.events != events  # an event stream's, between two complete events
                if heard and idle is not None:
                    guard.expect(min(self._ends_at, loop.time() + idle), self._timeout, watch=True)
            rest = transform.finish() if transform is not None else b""
            if rest:
                await send({"type": "http.response.body", "body": rest, "more_body": True})
            complete = True
        except ClientDisconnected:
            raise
        except (GatewayError, TransportError) as failure:
            error = failure if isinstance(failure, GatewayError) else client_error(failure, group)
            record.error_code = error.code
            if keep_alive is not None:
                keep_alive.stop()  # the error event is the stream's last
            if transform is not None:
                # Headers are gone already: tell the client in-band, the way OpenAI's SDKs read it.
                await send(
                    {"type": "http.response.body", "body": b"data: " + error.body() + b"\n\n", "more_body": True}
                )
                complete = True
        finally:
            if keep_alive is not None:
                keep_alive.stop()
            if not self._unsettled:
                # Back to the pool when read to its end; aiohttp drops it instead when it was not
                # (client gone, upstream broken or too slow).
                upstream.release()
            if transform is not None:
                usage, estimated = transform.counted_usage()
                record.set_usage(usage)
                record.usage_estimated = estimated or None
        return complete

    def _timeout(self) -> GatewayError:
        if asyncio.get_running_loop().time() >= self._ends_at:
            return upstream_timeout(self._group, "did not finish its answer within gateway.timeouts.stream")
        if self._transform is None:
            return upstream_timeout(self._group, "sent nothing more within gateway.timeouts.read")
        return upstream_timeout(self._group, "sent no complete event within gateway.timeouts.idle")

    def close(self) -> None:
        self._upstream.close()

    def client_gone(self) -> None:
        """The status sent was 200, but the client did not take the whole answer: say so (499, like nginx)."""
        gone = ClientDisconnected()
        self._record.status, self._record.error_code = gone.status, gone.code

    async def settle(self) -> None:
        """Once the client's response is over. After [DONE], let the upstream end its answer so
        its connection can be reused, else drop the connection (it may never end)."""
        upstream = self._upstream
        if not self._unsettled:
            upstream.release()  # a no-op once released; drops a connection a stream never read
            return
        self._unsettled = False
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
