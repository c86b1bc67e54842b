"""One structured line per request: who, which model, where, how it went.

Never a secret, never a prompt: only ids, names, numbers.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime

import orjson

from core.errors import truncated
from core.translation.usage import Usage

logger = logging.getLogger("aoai_gateway.access")


def new_request_id() -> str:
    return os.urandom(16).hex()


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
        # Path, operation and model come from the client: bounded, like every text field.
        line: dict[str, object] = {
            "request_id": self.request_id,
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),  # when the call ended, UTC
            "method": truncated(self.method),
            "path": truncated(self.path),
        }
        for name in _OPTIONAL_FIELDS:
            value = getattr(self, name)
            if value is not None:
                line[name] = truncated(value) if name in _CLIENT_TEXT else value
        line["stream"] = self.stream
        line["status"] = self.status
        for name in _AFTER_STATUS:
            value = getattr(self, name)
            if value is not None:
                line[name] = value
        logger.info(orjson.dumps(line).decode())


# The line's fields in the record's order; those that may be absent are left out when they are.
_OPTIONAL_FIELDS = ("caller", "operation", "model", "response_model", "group")
_CLIENT_TEXT = frozenset({"operation", "model", "response_model"})
_NAMES = [f.name for f in fields(AccessRecord) if f.name != "started"]
_AFTER_STATUS = tuple(_NAMES[_NAMES.index("status") + 1 :])  # numbers, codes, a pool's attempts
