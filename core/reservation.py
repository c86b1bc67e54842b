"""What a call reserves of its caller key's token budget at admission (core/budgets.py): an estimate of its
prompt, plus the most it may generate; of a cost limit, those tokens at its deployment's price (the prompt as
input, none of it cached; the cap as output). The answer's real usage replaces the reservation when the call ends.

The prompt estimate is read from the request's bytes, not tokenized: see core/translation/usage.py.
"""

from __future__ import annotations

from typing import Any

from core.translation.usage import estimate_prompt_tokens

# The calls whose answers are generated tokens, capped by the caller or by the key's default reservation: the
# deployment operations, and the resource paths' shapes (core/resources/paths.py) that start or resume a run.
_GENERATING = frozenset(
    {
        "chat/completions",
        "completions",
        "responses",
        "threads/runs",
        "threads/{id}/runs",
        "threads/{id}/runs/{id}/submit_tool_outputs",
    }
)
# Where each API takes its output cap; the first one given wins (chat: max_completion_tokens replaces max_tokens).
_OUTPUT_CAPS = ("max_completion_tokens", "max_tokens", "max_output_tokens")
# A cap beyond this is no cap a model honours: reserved as this (the largest output any model offers today is
# 128k tokens), so one call cannot reserve a whole day for nothing.
MAX_OUTPUT_RESERVATION = 131_072


def output_cap(operation: str, payload: dict[str, Any] | None, default: int) -> int:
    """The most the call may generate: its own cap, else the key's default reservation; 0 for calls that
    generate no tokens (embeddings, images, audio, object reads and writes). `operation`: a deployment
    operation ("chat/completions") or a resource path's shape ("threads/{id}/runs")."""
    if operation not in _GENERATING:
        return 0
    if payload is not None:
        for name in _OUTPUT_CAPS:
            value = payload.get(name)
            if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
                return min(value, MAX_OUTPUT_RESERVATION)
    return default


def reserved_parts(operation: str, raw: bytes, payload: dict[str, Any] | None, default_output: int) -> tuple[int, int]:
    """The tokens a call reserves, apart: its prompt's estimate, and its output cap (a cost limit reserves each at
    its own price)."""
    return estimate_prompt_tokens(raw), output_cap(operation, payload, default_output)
