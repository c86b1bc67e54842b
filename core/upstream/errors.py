"""Transport failures as the client's error: the one place where they become a 502 or a 504."""

from __future__ import annotations

from core.errors import (
    GatewayError,
    upstream_bad_response,
    upstream_closed,
    upstream_response_too_large,
    upstream_timeout,
    upstream_unreachable,
)
from core.transport import (
    BadBody,
    BodyTooLarge,
    ConnectTimedOut,
    HeadersTimedOut,
    ReadFailed,
    ReadTimedOut,
    TransportError,
)


def gateway_error(error: TransportError, group: str) -> GatewayError:
    if isinstance(error, (ConnectTimedOut, HeadersTimedOut, ReadTimedOut)):
        return upstream_timeout(group)
    if isinstance(error, BodyTooLarge):
        return upstream_response_too_large(group, error.limit)
    if isinstance(error, BadBody):
        return upstream_bad_response(group, error.problem)
    if isinstance(error, ReadFailed):  # it answered, then went away: not "could not be reached"
        return upstream_closed(group)
    return upstream_unreachable(group)
