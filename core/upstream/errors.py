"""Transport failures as the client's error: the one place where they become a 502 or a 504."""

from __future__ import annotations

from core.errors import GatewayError, upstream_timeout, upstream_unreachable
from core.transport import ConnectTimedOut, HeadersTimedOut, TransportError


def gateway_error(error: TransportError, group: str) -> GatewayError:
    if isinstance(error, (ConnectTimedOut, HeadersTimedOut)):
        return upstream_timeout(group)
    return upstream_unreachable(group)
