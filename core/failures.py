"""Upstream failures as the client's errors: the one place where the transport's typed errors and the
pool's become a 429, a 502 or a 504, each naming the group that failed."""

from __future__ import annotations

import math

from core.errors import (
    GatewayError,
    truncated,
    upstream_bad_response,
    upstream_closed,
    upstream_response_too_large,
    upstream_timeout,
    upstream_unreachable,
)
from core.upstream.failover import AllBenched, FirstByteTimedOut, OutOfTime, PoolError
from core.upstream.transport import (
    BadBody,
    BodyTooLarge,
    ConnectTimedOut,
    HeadersTimedOut,
    ReadFailed,
    ReadTimedOut,
    TransportError,
)


def client_error(error: TransportError | PoolError, group: str) -> GatewayError:
    if isinstance(error, AllBenched):
        return all_benched(error.pool_id, error.seconds)
    if isinstance(error, OutOfTime):
        return upstream_timeout(group, "did not answer within the pool's time budget")
    if isinstance(error, (FirstByteTimedOut, ConnectTimedOut, HeadersTimedOut, ReadTimedOut)):
        return upstream_timeout(group)
    if isinstance(error, BodyTooLarge):
        return upstream_response_too_large(group, error.limit)
    if isinstance(error, BadBody):
        return upstream_bad_response(group, error.problem)
    if isinstance(error, ReadFailed):  # it answered, then went away: not "could not be reached"
        return upstream_closed(group)
    return upstream_unreachable(group)


def all_benched(pool_id: str, seconds: float) -> GatewayError:
    # Rounded to the microsecond first: float clock noise (1000.2 - 1000 = 0.20000000000004547)
    # must not turn a 200 ms hint into 201.
    milliseconds = max(math.ceil(round(seconds * 1000, 3)), 1)
    wait = max(math.ceil(milliseconds / 1000), 1)
    return GatewayError(
        429,
        f"Every upstream for model `{truncated(pool_id)}` is cooling down after rate limits or failures. "
        f"Please retry after {wait} seconds.",
        type="requests",
        code="rate_limit_exceeded",
        headers={"Retry-After": str(wait), "retry-after-ms": str(milliseconds)},
    )
