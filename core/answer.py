"""An upstream answer whose headers have arrived, as the client's response: the one place that
decides between an error, an event stream, a byte stream and a JSON answer read whole.

Shared by the deployment-scoped proxy (core/proxy.py) and the resource-scoped one (core/resources.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass

from starlette.responses import Response

from core.accesslog import AccessRecord
from core.config.model import GatewaySettings
from core.relay import (
    JSON,
    DisconnectWatch,
    StreamTransform,
    check_status,
    error_response,
    ms_since,
    relay_stream,
    relayed_headers,
    within,
)
from core.translation.usage import find_usage
from core.transport import UpstreamResponse


@dataclass(slots=True)  # not frozen: one is built per request, and a frozen dataclass builds slower
class Deadlines:
    """Event loop times by which an answer must be through, from when the request started."""

    answer_by: float  # a whole non-streamed answer, and the headers of any answer
    stream_by: float  # a whole streamed answer or download

    @classmethod
    def starting_now(cls, settings: GatewaySettings) -> Deadlines:
        now = asyncio.get_running_loop().time()
        return cls(now + settings.total_timeout, now + settings.stream_timeout)


@dataclass(frozen=True, slots=True)
class Relaying:
    """How one call's answers are relayed."""

    events: Callable[[], StreamTransform] | None  # rewrites an event stream; None: relayed as bytes
    translate: Callable[[bytes], bytes] | None = None  # rewrites a whole JSON answer
    as_bytes: bool = False  # relay even a JSON answer byte for byte (file content)


async def client_response(
    upstream: UpstreamResponse,
    group: str,
    record: AccessRecord,
    watch: DisconnectWatch,
    deadlines: Deadlines,
    settings: GatewaySettings,
    relaying: Relaying,
    started: float,
) -> Response:
    """`started`: when the request went upstream (perf_counter), for the access log's upstream_ms."""
    check_status(upstream, group)
    content_type = upstream.headers.get("content-type", "")
    if upstream.status >= 400:
        body = await within(deadlines.answer_by, watch.run(upstream.read_error()), record)
        record.upstream_ms = ms_since(started)
        return error_response(upstream, body, record.request_id)
    record.upstream_ms = ms_since(started)
    if relaying.events is not None and content_type.startswith("text/event-stream"):
        headers = relayed_headers(upstream.headers, record.request_id)
        return relay_stream(
            upstream, record, relaying.events(), headers,
            ends_at=deadlines.stream_by, idle=settings.idle_timeout, max_event_bytes=settings.max_response_bytes,
        )  # fmt: skip
    if relaying.as_bytes or not content_type.startswith(JSON):
        # Audio, subtitles, plain text, file content: bytes as they come, with the upstream's content type.
        headers = relayed_headers(upstream.headers, record.request_id, byte_for_byte=True)
        return relay_stream(upstream, record, None, headers, ends_at=deadlines.stream_by)
    body = await within(deadlines.answer_by, watch.run(upstream.read(settings.max_response_bytes)), record)
    record.upstream_ms = ms_since(started)
    record.set_usage(find_usage(body))
    if relaying.translate is not None:
        body = relaying.translate(body)
    # Azure answers some creates (file uploads) with 201; OpenAI clients expect 200.
    status = 200 if upstream.status == 201 else upstream.status
    return Response(body, status, relayed_headers(upstream.headers, record.request_id))
