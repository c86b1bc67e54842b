"""May a failed attempt be tried on another member? Only before any byte reached the client,
and only when the failure is the upstream's, not the caller's."""

from __future__ import annotations

# 408 and 429 say "not now", 5xx "not here"; any other 4xx (bad request, content filter,
# 401) is the caller's answer and is relayed at once.
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})


def is_retryable_status(status: int) -> bool:
    return status in RETRYABLE_STATUSES
