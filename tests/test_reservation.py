"""What a call reserves of its key's tokens at admission: its output cap, or the key's default; nothing for calls
that generate no tokens."""

from __future__ import annotations

from core.reservation import MAX_OUTPUT_RESERVATION, output_cap, reserved_parts
from core.translation.usage import estimate_prompt_tokens


def test_the_output_cap_is_the_calls_own_else_the_keys_default() -> None:
    assert output_cap("embeddings", {"max_tokens": 50}, 1000) == 0  # generates no tokens
    assert output_cap("threads/{id}/messages", None, 1000) == 0
    assert output_cap("chat/completions", None, 1000) == 1000
    assert output_cap("chat/completions", {"max_tokens": 0}, 1000) == 0  # a cap of 0 is a cap
    assert output_cap("chat/completions", {"max_completion_tokens": 50, "max_tokens": 10}, 1000) == 50
    assert output_cap("responses", {"max_output_tokens": 1}, 1000) == 1
    assert output_cap("threads/{id}/runs", {"max_tokens": -5}, 1000) == 1000  # not a cap: the default
    assert output_cap("completions", {"max_tokens": True}, 1000) == 1000
    assert output_cap("chat/completions", {"max_tokens": 10**9}, 1000) == MAX_OUTPUT_RESERVATION


def test_a_call_reserves_its_prompts_estimate_and_its_output_cap() -> None:
    raw = b'{"messages": [{"role": "user", "content": "one two three four"}], "max_tokens": 7}'
    assert reserved_parts("chat/completions", raw, {"max_tokens": 7}, 1000) == (estimate_prompt_tokens(raw), 7)
    assert reserved_parts("chat/completions", raw, {}, 1000) == (estimate_prompt_tokens(raw), 1000)
