"""One structured line per request: who, which model, where, how it went.

Never a secret, never a prompt: only ids, names, numbers.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable

import msgspec

from core.errors import ECHO_LIMIT, truncated
from core.translation.usage import Usage

logger = logging.getLogger("aoai_gateway.access")
# Where `python -m core serve` has its lines written without a logging record each (core/logs.py): the
# message alone is all its handler writes, so building the record would only cost every call. None: logging.
_line_sink: Callable[[str], None] | None = None


def write_lines_to(sink: Callable[[str], None] | None) -> None:
    """Access lines go to `sink` (a line without its newline) from now on; None: through the logger again.
    Only for a logger whose every handler would write the message alone, as `serve`'s does."""
    global _line_sink
    _line_sink = sink


def new_request_id() -> str:
    """128 random bits, hex: unique per call, not a secret (it is sent to the client and upstream), so the
    process's own generator does (os.urandom would be a system call per request)."""
    return random.getrandbits(128).to_bytes(16).hex()  # (a third cheaper than formatting the number as hex)


class _UtcClock:
    """ISO 8601 UTC to the millisecond, the second formatted once per second and the millisecond looked up
    (datetime.isoformat, or formatting each line's time, costs every call more than its line's other fields)."""

    __slots__ = ("_second", "_prefix")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def now(self) -> str:
        now = time.time()
        second = int(now)
        if second != self._second:
            self._second, self._prefix = second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return self._prefix + _MILLISECONDS[int((now - second) * 1000)]


_MILLISECONDS = tuple(f".{ms:03d}+00:00" for ms in range(1000))
_clock = _UtcClock()


class AccessRecord(msgspec.Struct, kw_only=True, omit_defaults=True, gc=False):
    """The access record of one call, written as its JSON line: every field in this order, those left at their default
    (None, and `time` until it is written) left out. `stream` and `status` have no default: every line names them.
    (gc=False: a record holds strings, numbers and lists of strings, never a cycle for the collector to find.)"""

    request_id: str
    time: str = ""  # when the call ended, UTC: set as the line is written
    method: str
    path: str
    caller: str | None = None
    operation: str | None = None  # as after /v1/ ("chat/completions"); resource calls: the first segment
    model: str | None = None
    response_model: str | None = None  # the model that answered, as its answer names it
    group: str | None = None
    stream: bool
    status: int
    upstream_ms: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cached_tokens: int | None = None  # of the prompt's, read from Azure's prompt cache
    reasoning_tokens: int | None = None  # of the completion's, spent reasoning
    usage_estimated: bool | None = None  # a stream cut short before its usage chunk: counted, not reported
    cost: float | None = None  # what the call cost, in the prices' currency (core/models/prices.py); None: unpriced
    error_code: str | None = None
    # Pooled models (gateway.pools): the member that served, the attempts made, and each failed
    # attempt as "member:status" (or member:unreachable / :timeout / :first-byte-timeout).
    member: str | None = None
    attempts: int | None = None
    failed: list[str] | None = None
    # What fitting the request to its model changed: "max_tokens->max_completion_tokens", "-temperature".
    adjusted: list[str] | None = None

    @property
    def tokens(self) -> int:
        if self.total_tokens is not None:
            return self.total_tokens
        return (self.prompt_tokens or 0) + (self.completion_tokens or 0)

    def set_usage(self, usage: Usage | None) -> None:
        if usage is not None:
            self.prompt_tokens = usage.prompt_tokens
            self.completion_tokens = usage.completion_tokens
            self.total_tokens = usage.total_tokens
            self.cached_tokens = usage.cached_tokens
            self.reasoning_tokens = usage.reasoning_tokens
            self.response_model = usage.model or self.response_model

    def emit(self) -> None:
        if not logger.isEnabledFor(logging.INFO):
            return
        line = self.line()
        if _line_sink is not None:
            _line_sink(line)
        else:
            logger.info(line)

    def line(self) -> str:
        """The record as its JSON line, timed now. The text that comes from the client (the method, the path, the
        operation and the models) is bounded first, in the record too, like every text field the gateway echoes."""
        self.time = _clock.now()
        if (
            max(len(self.method), len(self.path), len(self.operation or ""), len(self.model or ""),
                len(self.response_model or "")) > ECHO_LIMIT
        ):  # fmt: skip
            self._bound_client_text()
        return _encode(self).decode()

    def _bound_client_text(self) -> None:
        self.method, self.path = truncated(self.method), truncated(self.path)
        if self.operation is not None:
            self.operation = truncated(self.operation)
        if self.model is not None:
            self.model = truncated(self.model)
        if self.response_model is not None:
            self.response_model = truncated(self.response_model)


_encode = msgspec.json.Encoder().encode
