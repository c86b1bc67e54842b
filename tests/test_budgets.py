"""Caller-key budgets (gateway.apiKeys[].limits): OpenAI's 429 and x-ratelimit-* headers, on every route that goes
upstream, counted per process; shared through Azurite's table service in tests/test_budgets_shared.py."""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.support.budgets import CHAT, fresh_minute, limited, post
from tests.support.standard import ALICE, BOB, SECRETS


@pytest.fixture
def start(sim, start_gateway):
    return lambda limits: start_gateway(limited(limits), {**SECRETS, "SIM_URL": sim.url})


def test_requests_per_minute_then_openais_429_and_headers_while_another_caller_is_unaffected(start) -> None:
    gateway = start("{requestsPerMinute: 3}")
    fresh_minute(20)
    answers = [post(gateway, ALICE) for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.headers["x-ratelimit-remaining-requests"] for a in answers] == ["2", "1", "0"]
    assert all(a.headers["x-ratelimit-limit-requests"] == "3" for a in answers)
    assert all(a.headers["x-ratelimit-reset-requests"].endswith("s") for a in answers)

    over = post(gateway, ALICE)
    assert over.status_code == 429
    error = over.json()["error"]
    assert error["code"] == "rate_limit_exceeded" and error["type"] == "requests"
    assert "requests per min (RPM): Limit 3, Used 3" in error["message"]
    assert 1 <= int(over.headers["retry-after"]) <= 60
    assert over.headers["x-ratelimit-remaining-requests"] == "0"
    assert over.headers["x-ratelimit-limit-requests"] == "3"

    # The official SDK reads it as a RateLimitError.
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=ALICE, max_retries=0)
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(**CHAT)
    assert all(post(gateway, BOB).status_code == 200 for _ in range(5))


def test_resource_calls_count_against_the_same_budget(sim, start) -> None:
    gateway = start("{requestsPerMinute: 2}")
    fresh_minute(20)
    headers = {"Authorization": f"Bearer {ALICE}"}
    assert post(gateway, ALICE).status_code == 200
    listed = httpx.get(f"{gateway.url}/v1/assistants", headers=headers, timeout=10)
    assert listed.status_code == 200 and listed.headers["x-ratelimit-remaining-requests"] == "0"
    calls = len(sim.requests)
    over = httpx.get(f"{gateway.url}/v1/assistants", headers=headers, timeout=10)
    assert over.status_code == 429 and over.json()["error"]["code"] == "rate_limit_exceeded"
    assert post(gateway, ALICE, "/v1/embeddings", {"model": "text-embedding-3-small", "input": "x"}).status_code == 429
    assert len(sim.requests) == calls  # refused before anything went upstream


def test_tokens_per_minute_count_streamed_answers(sim, start) -> None:
    gateway = start("{tokensPerMinute: 5}")
    fresh_minute(20)
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json={**CHAT, "stream": True},
        headers={"Authorization": f"Bearer {ALICE}"},
        timeout=10,
    ) as streamed:
        assert streamed.status_code == 200
        assert streamed.headers["x-ratelimit-limit-tokens"] == "5"
        assert b'"usage"' not in streamed.read()  # counted, not shown: the caller did not ask
    over = post(gateway, ALICE)
    assert over.status_code == 429
    error = over.json()["error"]
    assert error["type"] == "tokens" and "tokens per min (TPM): Limit 5" in error["message"]
    assert over.headers["x-ratelimit-remaining-tokens"] == "0"


def test_tokens_per_day_are_reported_in_the_token_headers(start) -> None:
    gateway = start("{tokensPerDay: 1000000}")
    first = post(gateway, ALICE)
    used = first.json()["usage"]["total_tokens"]
    second = post(gateway, ALICE)
    assert second.headers["x-ratelimit-limit-tokens"] == "1000000"
    assert int(second.headers["x-ratelimit-remaining-tokens"]) == 1000000 - used
