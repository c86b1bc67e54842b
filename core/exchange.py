"""One call through the gateway, from admission to its last byte.

Every endpoint serves its request through an Exchange: it authenticates the caller and admits the call
against the caller key's limits, sends the call upstream on the caller's behalf (to one backend, or to a
pool's members in turn), relays the answer (a JSON answer read whole, an event stream, a byte stream),
and finishes. `finish` is the one place where the access record is emitted, the budget settled and the
metrics recorded, for every kind of answer, however the call ended (an error, a deadline, a client gone).
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterable, Awaitable, Callable, Mapping
from functools import partial
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from core.accesslog import AccessRecord, new_request_id
from core.api import Endpoint
from core.auth import ANONYMOUS
from core.budgets import Reservation
from core.config.model import Backend, GatewaySettings, Pool, PoolMember, ResourceBackend
from core.errors import GatewayError, body_too_slow, upstream_timeout
from core.failures import client_error
from core.gateway import Gateway, State
from core.gateway import current as current_gateway
from core.guard import CallGuard
from core.inbound import forwarded_request_headers, read_body, read_head
from core.models.prices import MICROS, Price
from core.outbound import upstream_headers
from core.relay import JSON, VALID_STATUSES, Relay, RelayedStream, refuse_status, relayed_headers
from core.reservation import reserved_parts
from core.telemetry import RequestTrace
from core.translation.errors import upstream_error
from core.translation.translator import Translator
from core.uploads import Upload, read_upload
from core.upstream import failover
from core.upstream.failover import PoolError, Tried
from core.upstream.health import retry_after
from core.upstream.transport import TransportError, UpstreamResponse
from core.usage_table import Counts

T = TypeVar("T")
_TRACE_HEADERS = ("traceparent", "tracestate")
_JSON_TYPE = (b"content-type", JSON.encode())
# How an answer whose headers came ends when it breaks off on the upstream's side (cut, or stalled): a
# failure of the pool member that served it. A client that went away (client_closed_request) is not one.
_BROKEN_BY_UPSTREAM = frozenset({"upstream_closed_connection", "upstream_timeout"})
# How a call that got no answer ended when the upstream may have generated for it meanwhile.
_MAY_HAVE_GENERATED = frozenset({None, "upstream_timeout", "upstream_closed_connection", "client_closed_request"})


class WholeResponse(Response):
    """A whole answer, its headers already in their wire form (Starlette's Response would encode a
    dict of them again for every answer); `ended` is told once it is sent, however that went."""

    def __init__(self, body: bytes, status: int, headers: list[tuple[bytes, bytes]], ended: Callable[[], None]) -> None:
        self.body = body
        self.status_code = status
        self.background = None
        if not (status < 200 or status in (204, 304)):  # those carry no body, so no length either
            headers = [*headers, (b"content-length", str(len(body)).encode())]
        self.raw_headers = headers
        self._ended = ended

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Starlette's Response.__call__ less what the gateway never has (a websocket, a background task), in
        # this frame: every whole answer goes out here.
        try:
            await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
            await send({"type": "http.response.body", "body": self.body})
        finally:
            self._ended()


class UpstreamReply:
    """One attempt's answer, its headers arrived: with the group that gave it and this call's
    translation for that group."""

    __slots__ = ("response", "group", "translator", "error_body")

    def __init__(self, response: UpstreamResponse, group: str, translator: Translator) -> None:
        self.response = response
        self.group = group
        self.translator = translator
        self.error_body: bytes | None = None  # an error's body once read (to learn from it), relayed as it is

    @property
    def status(self) -> int:
        return self.response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self.response.headers

    async def read_error(self) -> bytes:
        if self.error_body is None:
            self.error_body = await self.response.read_error()
        return self.error_body

    def close(self) -> None:
        self.response.close()


class Exchange:
    __slots__ = (
        "request",
        "head",
        "record",
        "gateway",
        "state",
        "settings",
        "caller",
        "trace",
        "guard",
        "tried",
        "_served",
        "_max_wait",
        "answer_by",
        "stream_by",
        "_client_headers",
        "_own_headers",
        "reserve_tokens",
        "_reserve_output",
        "_callers_quota",
        "_budgeted",
        "_reservation",
        "_sent",
        "_sent_at",
        "_started",
        "_stream",
        "_whole",
        "_unread_usage",
        "_finished",
        "_admitted",
        "_upload",
        "_price",
        "cost",
    )
    gateway: Gateway
    state: State  # the configuration snapshot this call uses to its end (a reload may land meanwhile)
    settings: GatewaySettings

    def __init__(self, request: Request) -> None:
        self.request = request
        scope = request.scope  # (Request.method is a property around the scope's)
        # The request headers every call reads, and the client's that go upstream (an allow-list, which admit
        # widens by gateway.forwardHeaders).
        self.head, self._client_headers = read_head(scope["headers"])
        self.record = AccessRecord(
            request_id=new_request_id(), method=scope["method"], path=scope["path"], stream=False, status=0
        )
        self._started = time.perf_counter()  # (for the duration metric)
        self.caller = ANONYMOUS
        self.trace: RequestTrace | None = None
        self.guard: CallGuard | None = None
        self.tried: Tried | None = None  # a pooled call's attempts
        self._served: tuple[Pool, PoolMember] | None = None  # the pool member whose answer (2xx) is relayed
        self._max_wait: float | None = None  # a pooled call's gateway.maxCooldown: the longest wait it relays
        self.answer_by = self.stream_by = 0.0  # event loop times, set when the call goes upstream
        # Every answer's own headers: the request id, and the caller's own budget (not the upstream's).
        self._own_headers = [(b"x-request-id", self.record.request_id.encode())]
        self._callers_quota = False  # the caller's own Azure key made the call: Azure's x-ratelimit-* are its own
        # The tokens the call reserves of its key's budget as it goes upstream (core/reservation.py).
        self.reserve_tokens = 0
        self._reserve_output = 0  # of those, the output cap (a cost limit prices it as output)
        self._budgeted = False
        self._reservation: Reservation | None = None
        self._sent = False  # a request went upstream on the caller's behalf
        self._sent_at = 0.0
        self._stream: RelayedStream | None = None
        self._whole: WholeResponse | None = None  # the last whole answer built, which tells the end
        # A whole answer as the upstream sent it, with its translation: its usage is read at the end (finish).
        self._unread_usage: tuple[Translator, bytes] | None = None
        self._finished = False
        self._admitted = False  # admitted: a call refused while the gateway loads, or a preflight, is not
        self._upload: Upload | None = None  # the call's multipart body, which may refuse itself as it streams
        self._price: Price | None = None  # the price of the deployment asked last (core/models/prices.py)
        self.cost = 0  # what the call cost, in micro-units, once priced at its end

    # -- admission

    def bind(self) -> GatewaySettings:
        """The gateway serving the call and its configuration snapshot, which the call uses to its end, the CORS
        answer included (GatewayError 503 while the gateway loads). Read once per call: a reload may land meanwhile."""
        gateway = self.gateway = current_gateway()
        gateway.on_request()
        state = self.state = gateway.state
        settings = self.settings = state.config.settings
        return settings

    async def admit(self, endpoint: Endpoint) -> None:
        """Who calls, and whether its key's limits are spent already (GatewayError 401, 429). The call
        reserves its cost only as it goes upstream (`reserve`). After `bind`."""
        self._admitted = True  # the metrics count it from here (a preflight is not a call)
        gateway, state, settings = self.gateway, self.state, self.settings
        if settings.forward_headers:  # more of the client's headers go upstream than read_head found
            self._client_headers = forwarded_request_headers(self.request.scope["headers"], settings.forward_headers)
        record = self.record
        if gateway.telemetry is not None:
            self.trace = gateway.telemetry.start(record, self.head, route=endpoint.route)
        if not endpoint.authenticate:
            return
        caller = self.caller = state.auth.authenticate(self.head)
        record.caller = caller.name
        if endpoint.budgeted and caller.key is not None and caller.key.limits is not None:
            gateway.budgets.check(caller)
            self._budgeted = True

    def reserves(self, operation: str, raw: bytes, payload: dict[str, Any] | None) -> None:
        """What the call will reserve of a limited key's tokens (core/reservation.py): `operation` a
        deployment operation or a resource path's shape, `raw` and `payload` its body."""
        if self._budgeted:
            key = self.caller.key
            assert key is not None and key.limits is not None
            prompt, self._reserve_output = reserved_parts(operation, raw, payload, key.limits.reserve_output_tokens)
            self.reserve_tokens = prompt + self._reserve_output

    async def reserve(self) -> None:
        """Reserve the call's cost of its key's budget (once, however many attempts follow): GatewayError
        429 when it does not fit. The answer then carries the key's x-ratelimit-* headers."""
        if not self._budgeted or self._reservation is not None:
            return
        micros = 0
        if self._price is not None:  # the dearest deployment the call may go to, at most (its price when one)
            output = self._reserve_output
            micros = self._price.cost(self.reserve_tokens - output, 0, output)
        reservation, headers = await self.gateway.budgets.reserve(self.caller, self.reserve_tokens, micros)
        self._reservation = reservation
        self._own_headers += headers

    # -- going upstream

    def upstream_headers(self, target: Backend | ResourceBackend, bearer: str | None) -> list[tuple[str, str]]:
        """The headers of a request made on the caller's behalf, less the body's own."""
        self._callers_quota = target.auth == "passthrough"
        return upstream_headers(target, self.caller, self._client_headers, self.record.request_id, bearer)

    async def attempt(
        self,
        method: str,
        url: str,
        headers: list[tuple[str, str]],
        body: bytes | AsyncIterable[bytes] | None,
        group: str,
        translator: Translator,
    ) -> UpstreamReply:
        """One request upstream on the caller's behalf, in its own span of the caller's trace. An upload that
        refused itself as it streamed (core/uploads.py) ends the call with the caller's 400 instead of whatever
        became of the request cut short."""
        self.record.group = group  # the group a timeout names
        self._sent = True
        span = None
        if self.trace is not None:
            span = self.trace.upstream_call(self.record, method, url)
            # The upstream call's own span replaces the client's traceparent.
            headers = [(name, value) for name, value in headers if name not in _TRACE_HEADERS] + span.headers
        upload = self._upload
        try:
            response = await self.gateway.transport.send(
                method, url, headers, body, bounded_reads=not self.settings.reads_outlast_deadlines
            )
        except BaseException as error:
            if span is not None:
                span.end(None)
            if isinstance(error, TransportError) and upload is not None and upload.refusal is not None:
                raise upload.refusal from None
            raise
        if upload is not None and upload.refusal is not None:
            response.close()
            if span is not None:
                span.end(None)
            raise upload.refusal
        if span is not None:
            span.end(response.status)
        return UpstreamReply(response, group, translator)

    async def send(self, attempt: Callable[[], Awaitable[UpstreamReply]], *, streams_body: bool) -> UpstreamReply:
        """The call's one attempt, within the call's deadline. `streams_body`: an upload still arriving
        from the client goes up as it comes (the client must not be watched meanwhile: core/guard.py)."""
        if self._budgeted:
            await self.reserve()
        self.going_upstream(streams_body=streams_body)
        try:
            return await attempt()
        except (asyncio.CancelledError, TransportError, PoolError) as error:
            raise self._failure(error) from None

    async def send_pooled(
        self,
        pool_id: str,
        pool: Pool,
        attempt: Callable[[PoolMember], Awaitable[UpstreamReply]],
        *,
        streams_body: bool,
    ) -> UpstreamReply:
        """The call through a pool: members tried in the pool's order until one answers (core/upstream/)."""
        if self._budgeted:
            await self.reserve()
        tried = self.tried = Tried()
        self.going_upstream(streams_body=streams_body)
        try:
            sent = await self.awaited(
                failover.send(
                    self.gateway.pools,
                    pool_id,
                    pool,
                    attempt,
                    tried,
                    single_shot=streams_body,
                    streamed=self.record.stream is True,
                )
            )
        finally:
            record = self.record
            record.attempts, record.member, record.failed = tried.attempts, tried.served_by, tried.failures or None
        self._max_wait = pool.max_cooldown
        if sent.reply.status < 400:
            self._served = (pool, sent.member)
        return sent.reply

    def priced(self, price: Price | None) -> None:
        """The price of the deployment an attempt goes to: the call's cost is its usage at that price."""
        self._price = price

    def going_upstream(self, *, streams_body: bool = False) -> None:
        """The call's deadlines start now; the client is watched for, unless its body is still on its way."""
        guard = self.guarded()
        now = guard.loop.time()
        self.answer_by, self.stream_by = now + self.settings.total_timeout, now + self.settings.stream_timeout
        guard.expect(self.answer_by, self._upstream_timeout, watch=not streams_body)
        self._sent_at = time.perf_counter()

    def note_adjusted(self, changes: list[str]) -> None:
        """What fitting the request to its model changed (core/models/fit.py): in the access record, and in
        the answer's `x-gateway-adjusted` header, so the caller can see it."""
        if changes:
            self.record.adjusted = changes
            self._own_headers.append((b"x-gateway-adjusted", ", ".join(changes).encode()))

    def _upstream_timeout(self) -> GatewayError:
        return upstream_timeout(self.record.group or "?")

    def guarded(self) -> CallGuard:
        """The call's guard (core/guard.py), started on first use."""
        if self.guard is None:
            self.guard = CallGuard(self.request)
        return self.guard

    async def awaited(self, work: Awaitable[T]) -> T:
        """Upstream `work` while the client waits for it: the guard's error once it ends the call
        (the deadline's 504, ClientDisconnected), the client's 502 or 504 for an upstream failure."""
        try:
            return await work
        except (asyncio.CancelledError, TransportError, PoolError) as error:
            raise self._failure(error) from None

    def _failure(self, error: asyncio.CancelledError | TransportError | PoolError) -> BaseException:
        """What an upstream wait that ended in `error` raises: the guard's reason for a cancellation the guard made,
        the cancellation itself otherwise, the client's 502 or 504 for an upstream failure. (A call's attempt and its
        answer's body, awaited by every call, catch their errors in their own frames rather than through `awaited`,
        whose coroutine would cost every call more.)"""
        if isinstance(error, asyncio.CancelledError):
            return error if self.guard is None else self.guard.cancelled(error)
        return client_error(error, self.record.group or "?")

    async def body(self) -> bytes:
        """The whole request body: 413 beyond gateway.maxBodyBytes, 408 when it takes longer than
        gateway.timeouts.total to arrive."""
        settings = self.settings
        guard = self.guarded()
        seconds = settings.total_timeout
        guard.expect(guard.loop.time() + seconds, partial(body_too_slow, seconds), watch=False)
        return await read_body(self.request, settings.max_body_bytes, guard, self.head.get("content-length"))

    async def upload(self, *, fields: tuple[str, ...], file_part: str) -> Upload:
        """A multipart body, read until its routing fields and the start of `file_part`; the rest
        streams upstream (core/uploads.py). Bounded like `body`."""
        settings = self.settings
        guard = self.guarded()
        seconds = settings.total_timeout
        guard.expect(guard.loop.time() + seconds, partial(body_too_slow, seconds), watch=False)
        upload = await read_upload(self.request, settings.max_body_bytes, guard, fields=fields, file_part=file_part)
        self._upload = upload
        return upload

    # -- answering

    async def answer(self, reply: UpstreamReply) -> Response:
        """The upstream's answer as the client's response: its error, an event stream, a byte stream,
        or a JSON answer read whole."""
        upstream, group, record = reply.response, reply.group, self.record
        limits = self._callers_quota  # whether Azure's x-ratelimit-* are the caller's to see (core/relay.py)
        if upstream.status not in VALID_STATUSES:
            refuse_status(upstream, group)
        content_type = upstream.headers.get("content-type", "")
        if upstream.status >= 400:
            if upstream.status == 401 and (refresher := self.gateway.refresher) is not None:
                refresher.key_refused()  # a rotated key, the old one retired: read the secrets again
            body = await self.awaited(reply.read_error())
            record.upstream_ms = _ms_since(self._sent_at)
            # The error is OpenAI-shaped JSON now, whatever its type was.
            headers = [
                pair for pair in relayed_headers(upstream.raw_headers, rate_limits=limits) if pair[0] != b"content-type"
            ]
            if self._max_wait is not None:
                headers = _waits_capped(headers, upstream.headers, self._max_wait)
            answer, record.error_code = upstream_error(upstream.status, body)
            return self.response(answer, upstream.status, headers, json=True)
        record.upstream_ms = _ms_since(self._sent_at)  # the headers came (a body that breaks off came after them)
        if content_type.startswith("text/event-stream") and (events := reply.translator.events()) is not None:
            try:
                upstream.decode()  # the gateway reads the events; bytes relayed as they come keep their encoding
            except TransportError as error:
                raise client_error(error, group) from None
            settings = self.settings
            relay = Relay(
                upstream, record, group, events,
                ends_at=self.stream_by, idle=settings.idle_timeout, max_event_bytes=settings.max_response_bytes,
                keep_alive=settings.keep_alive,
            )  # fmt: skip
            return self._stream_of(relay, upstream.status, relayed_headers(upstream.raw_headers, rate_limits=limits))
        if reply.translator.as_bytes or not content_type.startswith(JSON):
            # Audio, subtitles, plain text, file content: bytes as they come, with the upstream's content type,
            # none of them waiting longer than gateway.timeouts.read for the next (the transport may not bound it).
            relay = Relay(upstream, record, group, None, ends_at=self.stream_by, idle=self.settings.read_timeout)
            headers = relayed_headers(upstream.raw_headers, byte_for_byte=True, rate_limits=limits)
            return self._stream_of(relay, upstream.status, headers)
        try:
            body = await upstream.read(self.settings.max_response_bytes)
        except (asyncio.CancelledError, TransportError) as error:
            raise self._failure(error) from None
        record.upstream_ms = _ms_since(self._sent_at)
        self._unread_usage = (reply.translator, body)  # read once the answer is sent: the client need not wait for it
        body = reply.translator.answer(body)
        # Azure answers some creates (file uploads) with 201; OpenAI clients expect 200.
        status = 200 if upstream.status == 201 else upstream.status
        return self.response(body, status, relayed_headers(upstream.raw_headers, rate_limits=limits))

    def _stream_of(self, relay: Relay, status: int, headers: list[tuple[bytes, bytes]]) -> RelayedStream:
        assert self.guard is not None  # the call went upstream
        self._stream = RelayedStream(relay, status, self._with_own(headers), self.guard, self.finish)
        return self._stream

    def response(
        self, body: bytes, status: int = 200, headers: list[tuple[bytes, bytes]] | None = None, *, json: bool = False
    ) -> Response:
        """A whole answer, with the headers every answer of this call carries. `headers` are in their
        wire form (lower-case names, bytes), as relayed_headers gives them."""
        headers = self._own_headers if headers is None else self._with_own(headers)
        if json:
            headers = [*headers, _JSON_TYPE]
        self._whole = WholeResponse(body, status, headers, self.finish)
        return self._whole

    def _with_own(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        """`headers` and this call's own (a new list). (A limited key's x-ratelimit-* never meet the upstream's: those
        are relayed only to a pass-through caller, and a gateway with pass-through groups has no caller keys.)"""
        return headers + self._own_headers

    def error(self, error: GatewayError) -> Response:
        """A failure the gateway decided on, OpenAI-shaped."""
        self.record.error_code = error.code
        headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in error.headers.items()]
        return self.response(error.body(), error.status, headers, json=True)

    # -- the end

    def respond(self, response: Response) -> Response:
        """`response` goes to the client. A whole answer finishes once it is sent, a stream when its last byte
        is: the access line, the budget and the metrics wait for the answer, never the client for them."""
        record = self.record
        record.status = response.status_code
        if response is self._stream:
            assert self.guard is not None
            self.guard.hold()
            return response
        if self._stream is not None:  # a stream built, then not sent (a later failure): nobody reads its upstream
            self._stream.abandon()
        if response is not self._whole:  # not one of this exchange's answers: nothing will tell it the end
            self.finish()
            return response
        if self.guard is not None:
            self.guard.close()  # the call is answered: neither a deadline nor the client may interrupt the sending
        return response

    def finish(self) -> None:
        """The call is over: a whole answer's usage read, a pool member whose answer broke off on its side charged
        with a failure, the budget settled, the metrics recorded, the access record emitted."""
        if self._finished:
            return
        self._finished = True
        self._stream = self._whole = None  # they hold this exchange, to tell it the end: no cycle left
        if self.guard is not None:
            self.guard.close()
        record = self.record
        if self._unread_usage is not None:
            translator, body = self._unread_usage
            self._unread_usage = None
            record.set_usage(translator.usage(body))
        if self._price is not None:
            self._priced_usage()
        if self._served is not None and record.error_code in _BROKEN_BY_UPSTREAM:
            pool, member = self._served  # its headers counted as a success; the answer broke off after all
            self.gateway.pools.health.broke(member.model, pool.breaker)
        if self._reservation is not None:
            self.gateway.budgets.settle(self._reservation, self._spent(self._reservation), record.model)
        telemetry = self.gateway.telemetry if self._admitted else None
        if telemetry is not None:
            if self.trace is not None:
                self.trace.end(record)
            telemetry.record(record, time.perf_counter() - self._started)
        record.emit()

    def _priced_usage(self) -> None:
        """The call's cost, from the usage its answer reported (or the estimate of a stream cut short)."""
        record, price = self.record, self._price
        assert price is not None
        if record.prompt_tokens is None and record.completion_tokens is None:
            return
        self.cost = price.cost(record.prompt_tokens or 0, record.cached_tokens or 0, record.completion_tokens or 0)
        record.cost = self.cost / MICROS

    def _spent(self, reservation: Reservation) -> Counts:
        """What the call cost: nothing when nothing went upstream; else one request and the answer's tokens.
        A call whose usage never came (a stream cut short, no answer in time) may have generated up to its
        reservation: it costs that. An upstream that could not be reached, or answered an error, generated
        nothing."""
        if not self._sent:
            return Counts()
        record = self.record
        tokens, cost = record.tokens, self.cost
        answered = record.upstream_ms is not None
        if record.usage_estimated or (not answered and record.error_code in _MAY_HAVE_GENERATED):
            tokens = max(tokens, reservation.cost.tokens)
            cost = max(cost, reservation.cost.cost)
        return Counts(1, tokens, cost)


def _waits_capped(
    headers: list[tuple[bytes, bytes]], upstream: Mapping[str, str], most: float
) -> list[tuple[bytes, bytes]]:
    """A pooled call's relayed failure asks the caller to wait no longer than the pool benches its member
    (gateway.maxCooldown): an upstream's Retry-After of millennia is told as `most` seconds."""
    wait = retry_after(upstream)
    if wait is None or wait <= most:
        return headers
    kept = [pair for pair in headers if pair[0] not in (b"retry-after", b"retry-after-ms")]
    return [*kept, (b"retry-after", str(math.ceil(most)).encode()), (b"retry-after-ms", str(int(most * 1000)).encode())]


def _ms_since(started: float) -> float:
    """Milliseconds since `started` (perf_counter), to the hundredth. (round(x, 2) goes through a decimal string:
    a whole number of hundredths divided by 100 is the same double, at a third of the cost.)"""
    return round((time.perf_counter() - started) * 100_000) / 100
