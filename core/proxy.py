"""Forward one deployment-scoped call (chat, completions, embeddings, images, audio)
upstream and relay the answer.

The request body is kept until an upstream has answered, and the backend is
chosen per attempt, so a failover policy can retry elsewhere before the first
byte reaches the client. (A streamed upload can be sent only once.)
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from functools import partial
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from core.accesslog import AccessRecord
from core.answer import Deadlines, Relaying, client_response
from core.auth import Caller
from core.config.model import Backend, PoolMember, ResourceBackend, Route
from core.errors import invalid_api_key, upstream_bad_response
from core.gateway import Gateway, State
from core.relay import JSON, DisconnectWatch, json_object, within
from core.telemetry import upstream_trace_headers
from core.translation.request import asks_usage, rewrite_body, upstream_operation
from core.translation.response import completion_to_chat
from core.translation.stream import StreamRewriter
from core.transport import TransportError, UpstreamResponse
from core.uploads import Upload
from core.upstream import failover
from core.upstream.errors import gateway_error


@dataclass(slots=True)
class Call:
    """One client request, parsed and authorised, ready to forward."""

    operation: str  # as after /v1/, e.g. "chat/completions"
    route: Route
    caller: Caller
    body: bytes | Upload  # a JSON body, or a multipart upload still streaming in
    payload: dict[str, Any] | None  # the parsed JSON body; None for uploads
    stream: bool
    client_headers: list[tuple[str, str]]  # already filtered of hop-by-hop and auth headers
    record: AccessRecord
    count_usage: bool = False  # metrics or budgets need this answer's tokens

    @property
    def asks_usage_for_caller(self) -> bool:
        """A stream whose usage chunk the gateway requests although the caller did not."""
        return (
            self.count_usage
            and self.stream
            and self.operation in _STREAM_USAGE_OPERATIONS
            and self.payload is not None
            and not asks_usage(self.payload)
        )


# The operations whose streams take `stream_options` (images and audio streams do not).
_STREAM_USAGE_OPERATIONS = frozenset({"chat/completions", "completions"})


async def forward(request: Request, gateway: Gateway, state: State, call: Call) -> Response:
    """`state` is the snapshot the request started with: a reload meanwhile does not change it."""
    watch = DisconnectWatch(request, enabled=not isinstance(call.body, Upload))
    try:
        return await _forward(watch, gateway, state, call)
    finally:
        # Before a StreamingResponse starts: Starlette then listens for the disconnect itself.
        watch.close()


async def _forward(watch: DisconnectWatch, gateway: Gateway, state: State, call: Call) -> Response:
    settings = state.config.settings
    call.count_usage = gateway.counts_usage(state)
    deadlines = Deadlines.starting_now(settings)
    backend, upstream, started = await within(deadlines.answer_by, watch.run(_send(gateway, call)), call.record)
    completions_as_chat = backend.force_prompt and call.operation == "chat/completions"
    if call.stream or completions_as_chat:
        events = None
        if call.stream:
            events = partial(
                StreamRewriter,
                drop_filter_events=settings.normalize_streams,
                completions_as_chat=completions_as_chat,
                hide_usage=call.asks_usage_for_caller,
                estimate_prompt_tokens=_prompt_estimate(call),
            )
        translate = partial(_chat_completion, group=backend.group) if completions_as_chat else None
        relaying = Relaying(events, translate)
    else:
        relaying = _AS_IT_COMES
    return await client_response(upstream, backend.group, call.record, watch, deadlines, settings, relaying, started)


_AS_IT_COMES = Relaying(events=None)  # most calls: a JSON answer (or bytes) relayed unchanged


def _prompt_estimate(call: Call) -> int | None:
    """About 4 bytes of request per prompt token: what a stream cut short before its usage counts."""
    if not call.count_usage or isinstance(call.body, Upload):
        return None
    return len(call.body) // 4


def _chat_completion(body: bytes, group: str) -> bytes:
    """forcePrompt: the upstream's completion as the chat completion the client asked for."""
    completion = json_object(body, group)
    choices = completion.get("choices")
    if choices is not None and not (isinstance(choices, list) and all(isinstance(c, dict) for c in choices)):
        raise upstream_bad_response(group, "answered with a completion whose choices are not a list of objects")
    return orjson.dumps(completion_to_chat(completion))


async def _send(gateway: Gateway, call: Call) -> tuple[Backend, UpstreamResponse, float]:
    """A pooled route fails over between its members (core/upstream/failover.py); any other
    route has one backend, sent to once."""
    pool = call.route.pool
    if pool is not None:
        started = time.perf_counter()

        async def attempt(member: PoolMember) -> UpstreamResponse:
            return await _attempt(gateway, call, member.backend)

        member, upstream = await failover.send(
            gateway.upstreams, call.route.model, pool, attempt, call.record, single_shot=isinstance(call.body, Upload)
        )
        assert isinstance(upstream, UpstreamResponse)
        return member.backend, upstream, started
    backend = call.route.backends[0]
    call.record.group = backend.group  # the group a timeout names
    started = time.perf_counter()
    try:
        return backend, await _attempt(gateway, call, backend), started
    except TransportError as error:
        raise gateway_error(error, backend.group) from None


async def _attempt(gateway: Gateway, call: Call, backend: Backend) -> UpstreamResponse:
    operation = upstream_operation(backend, call.operation)
    bearer = await gateway.tokens.token() if backend.auth == "entra" else None
    body, headers = _request_body(backend, call, bearer)
    return await gateway.transport.send("POST", backend.url(operation), headers, body)


def _request_body(
    backend: Backend, call: Call, bearer: str | None
) -> tuple[bytes | AsyncIterator[bytes], list[tuple[str, str]]]:
    headers = upstream_headers(backend, call.caller, call.client_headers, call.record.request_id, bearer)
    if isinstance(call.body, Upload):
        # Multipart goes as it came: Azure takes the deployment from the URL.
        headers += call.body.headers()
        return call.body.chunks(), headers
    assert call.payload is not None
    headers.append(("content-type", JSON))
    return rewrite_body(backend, call.operation, call.body, call.payload, ask_usage=call.asks_usage_for_caller), headers


def upstream_headers(
    target: Backend | ResourceBackend,
    caller: Caller,
    client_headers: list[tuple[str, str]],
    request_id: str,
    bearer: str | None = None,
) -> list[tuple[str, str]]:
    """Headers for an upstream call, less the body's content type. `bearer` is the
    Entra ID token for targets with `auth == "entra"`."""
    # The group's own headers (auth, additionalHeaders) win over same-named client headers.
    configured = {name for name, _ in target.headers}
    headers = [(name, value) for name, value in client_headers if name not in configured]
    headers.append(("accept-encoding", "identity"))
    # Azure logs this id, which ties its diagnostics to our access log.
    headers.append(("x-ms-client-request-id", request_id))
    if target.auth == "passthrough":
        key = caller.presented_key
        if key is None:
            raise invalid_api_key()
        headers.append(("api-key", key))
        if isinstance(target, Backend) and target.serverless:  # Azure AI serverless takes the Bearer form
            headers.append(("authorization", f"Bearer {key}"))
    elif target.auth == "entra":
        assert bearer is not None
        headers.append(("authorization", f"Bearer {bearer}"))
    headers.extend(target.headers)
    if trace := upstream_trace_headers():  # the upstream call's own span replaces the client's traceparent
        headers = [(name, value) for name, value in headers if name not in ("traceparent", "tracestate")]
        headers.extend(trace)
    return headers
