"""Caller-key budgets (gateway.apiKeys[].limits): OpenAI's 429 and x-ratelimit-* headers, on every route that goes
upstream, counted per process; shared through Azurite's table service in tests/test_budgets_shared.py."""

from __future__ import annotations

import time

import httpx
import openai
import pytest

from tests.support.standard import ALICE, BOB, SECRETS

BUDGET_CONFIG = """
endpoints:
  azureOpenAI:
    assistants: true
    groups:
      - group: eastus
        apiKey: "${EASTUS_KEY}"
        instanceName: eastus-instance
        baseURL: "${SIM_URL}"
        version: "2024-10-21"
        assistants: true
        models:
          gpt-4o: {deploymentName: gpt-4o-dep}
          text-embedding-3-small: {deploymentName: embed-dep}
gateway:
  apiKeys:
    - {name: alice, key: "${ALICE_KEY}", limits: LIMITS}
    - {name: bob, key: "${BOB_KEY}"}
"""

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "one two three"}]}


def limited(limits: str) -> str:
    return BUDGET_CONFIG.replace("LIMITS", limits)


def fresh_minute(needed: float) -> None:
    """Wait for the next UTC minute when fewer than `needed` seconds are left in this one: a test's
    requests must fall in one per-minute window."""
    left = 60 - time.time() % 60
    if left < needed:
        time.sleep(left + 0.05)


def post(gateway, key: str, path: str = "/v1/chat/completions", body: dict | None = None) -> httpx.Response:
    return httpx.post(f"{gateway.url}{path}", json=body or CHAT, headers={"Authorization": f"Bearer {key}"}, timeout=10)


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
