"""One structured line per request: who, which model, where, how it went.

Never a secret, never a prompt: only ids, names, numbers.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

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


@dataclass(slots=True)
class AccessRecord:
    request_id: str
    method: str
    path: str
    caller: str | None = None
    operation: str | None = None  # as after /v1/ ("chat/completions"); resource calls: the first segment
    model: str | None = None
    response_model: str | None = None  # the model that answered, as its answer names it
    group: str | None = None
    stream: bool = False
    status: int = 0
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
    # Not logged: when the request started (perf_counter), for the duration metric.
    started: float = field(default_factory=time.perf_counter, repr=False)

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
        """The record as its JSON line: every field but `started`, in the record's order, those that are None left
        out (tests/test_accesslog.py holds it to every field).

        Spelled out field by field: every call writes one, and a loop over the fields' names with getattr cost
        it half as many instructions again (33.6 thousand against 22; bench/README.md, "Instructions")."""
        # Path, operation and model come from the client: bounded, like every text field.
        line: dict[str, object] = {
            "request_id": self.request_id,
            "time": _clock.now(),  # when the call ended, UTC
            "method": _bounded(self.method),
            "path": _bounded(self.path),
        }
        if self.caller is not None:
            line["caller"] = self.caller
        if self.operation is not None:
            line["operation"] = _bounded(self.operation)
        if self.model is not None:
            line["model"] = _bounded(self.model)
        if self.response_model is not None:
            line["response_model"] = _bounded(self.response_model)
        if self.group is not None:
            line["group"] = self.group
        line["stream"] = self.stream
        line["status"] = self.status
        if self.upstream_ms is not None:
            line["upstream_ms"] = self.upstream_ms
        if self.prompt_tokens is not None:
            line["prompt_tokens"] = self.prompt_tokens
        if self.completion_tokens is not None:
            line["completion_tokens"] = self.completion_tokens
        if self.total_tokens is not None:
            line["total_tokens"] = self.total_tokens
        if self.cached_tokens is not None:
            line["cached_tokens"] = self.cached_tokens
        if self.reasoning_tokens is not None:
            line["reasoning_tokens"] = self.reasoning_tokens
        if self.usage_estimated is not None:
            line["usage_estimated"] = self.usage_estimated
        if self.cost is not None:
            line["cost"] = self.cost
        if self.error_code is not None:
            line["error_code"] = self.error_code
        if self.member is not None:
            line["member"] = self.member
        if self.attempts is not None:
            line["attempts"] = self.attempts
        if self.failed is not None:
            line["failed"] = self.failed
        if self.adjusted is not None:
            line["adjusted"] = self.adjusted
        return orjson.dumps(line).decode()


def _bounded(text: str) -> str:
    return text if len(text) <= ECHO_LIMIT else truncated(text)
