"""Caller-key budgets (gateway.apiKeys[].limits): OpenAI's 429 and x-ratelimit-* headers, on every route that goes
upstream, counted per process; shared through Azurite's table service in tests/test_budgets_shared.py."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import openai
import orjson
import pytest

from core.translation.usage import estimate_prompt_tokens
from tests.support.access_log import access_line
from tests.support.budgets import CHAT, fresh_minute, limited, post
from tests.support.standard import ALICE, BOB, SECRETS

AUTH_JSON = {"Authorization": f"Bearer {ALICE}", "content-type": "application/json"}


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
    gateway = start("{tokensPerMinute: 200, reserveOutputTokens: 40}")
    fresh_minute(20)
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json={**CHAT, "stream": True},
        headers={"Authorization": f"Bearer {ALICE}"},
        timeout=10,
    ) as streamed:
        assert streamed.status_code == 200
        assert streamed.headers["x-ratelimit-limit-tokens"] == "200"
        assert b'"usage"' not in streamed.read()  # counted, not shown: the caller did not ask
    used = access_line(gateway, streamed.headers["x-request-id"])["total_tokens"]
    assert used > 0
    # The next call sees the stream's real usage, not its reservation, and its own reservation.
    body = orjson.dumps(CHAT)
    answer = httpx.post(f"{gateway.url}/v1/chat/completions", content=body, headers=AUTH_JSON, timeout=10)
    reserved = estimate_prompt_tokens(body) + 40
    assert int(answer.headers["x-ratelimit-remaining-tokens"]) == 200 - used - reserved
    spent = used + answer.json()["usage"]["total_tokens"]
    while (over := post(gateway, ALICE)).status_code == 200:
        spent += over.json()["usage"]["total_tokens"]
    error = over.json()["error"]
    assert error["type"] == "tokens" and "tokens per min (TPM): Limit 200" in error["message"]
    assert spent <= 200


def test_tokens_per_day_are_reported_in_the_token_headers(start) -> None:
    gateway = start("{tokensPerDay: 1000000}")
    first = post(gateway, ALICE)
    used = first.json()["usage"]["total_tokens"]
    body = orjson.dumps(CHAT)
    second = httpx.post(f"{gateway.url}/v1/chat/completions", content=body, headers=AUTH_JSON, timeout=10)
    assert second.headers["x-ratelimit-limit-tokens"] == "1000000"
    # What is left once this call's reservation (its prompt's estimate and the default 1024 output tokens) is held.
    reserved = estimate_prompt_tokens(body) + 1024
    assert int(second.headers["x-ratelimit-remaining-tokens"]) == 1000000 - used - reserved


def test_concurrent_calls_are_admitted_only_as_far_as_their_reservations_fit(sim, start) -> None:
    gateway = start("{tokensPerMinute: 1000}")
    fresh_minute(30)
    body = {**CHAT, "max_tokens": 100}
    reserved = estimate_prompt_tokens(orjson.dumps(body)) + 100
    # 40 calls at once, each held upstream for a moment: none has its usage yet when the others arrive. Each
    # really costs what it reserved, so one that ends early frees nothing, however slowly the others arrive.
    headers = {**AUTH_JSON, "x-sim-delay-ms": "2000", "x-sim-usage": str(reserved)}
    with ThreadPoolExecutor(40) as pool:
        answers = list(pool.map(lambda _: httpx.post(f"{gateway.url}/v1/chat/completions", content=orjson.dumps(body),
                                                     headers=headers, timeout=10), range(40)))  # fmt: skip
    admitted = [a for a in answers if a.status_code == 200]
    assert len(admitted) == 1000 // reserved  # what fits, reserved at once; the rest refused
    assert all(a.status_code == 429 for a in answers if a.status_code != 200)
    assert sum(a.json()["usage"]["total_tokens"] for a in admitted) <= 1000


def test_calls_the_gateway_refuses_itself_count_against_nothing(sim, start) -> None:
    gateway = start("{requestsPerMinute: 3}")
    fresh_minute(20)
    auth = {"Authorization": f"Bearer {ALICE}"}
    for _ in range(5):
        assert post(gateway, ALICE, body={"model": "no-such-model", "messages": []}).status_code == 404
        bad = httpx.post(f"{gateway.url}/v1/chat/completions", content=b"{not json", headers=auth, timeout=10)
        assert bad.status_code == 400
    assert len(sim.requests) == 0
    assert [post(gateway, ALICE).status_code for _ in range(4)] == [200, 200, 200, 429]


def test_a_call_too_large_for_the_limit_is_told_so(sim, start) -> None:
    gateway = start("{tokensPerMinute: 500}")
    answer = post(gateway, ALICE, body={**CHAT, "max_tokens": 600})
    assert answer.status_code == 429 and len(sim.requests) == 0
    assert "Request too large for caller key alice: Limit 500 tokens" in answer.json()["error"]["message"]
    assert post(gateway, ALICE, body={**CHAT, "max_tokens": 50}).status_code == 200


def test_a_stream_cut_before_its_usage_costs_its_reservation(sim, start) -> None:
    gateway = start("{tokensPerMinute: 10000, reserveOutputTokens: 300}")
    fresh_minute(20)
    body = orjson.dumps({**CHAT, "stream": True})
    with httpx.stream(
        "POST", f"{gateway.url}/v1/chat/completions", content=body, headers={**AUTH_JSON, "x-sim-fail": "abort"}
    ) as cut:
        assert b'"error"' in cut.read()  # the relay's in-band error: the stream never finished
    line = access_line(gateway, cut.headers["x-request-id"])
    assert line["usage_estimated"] is True
    after = httpx.post(f"{gateway.url}/v1/chat/completions", content=orjson.dumps(CHAT), headers=AUTH_JSON)
    reserved_cut, reserved_now = estimate_prompt_tokens(body) + 300, estimate_prompt_tokens(orjson.dumps(CHAT)) + 300
    assert int(after.headers["x-ratelimit-remaining-tokens"]) == 10000 - reserved_cut - reserved_now


def _seconds_to(end: datetime) -> float:
    return (end - datetime.now(UTC)).total_seconds()


def test_a_cost_limit_per_day_refuses_the_call_that_would_pass_it_with_openais_insufficient_quota(start) -> None:
    """gpt-4o has the built-in table's price (2.50 / 1.25 / 10.00 per million): each call reserves its prompt
    estimate and reserveOutputTokens at that price and settles at its usage's cost."""
    gateway = start("{costPerDay: 0.002, reserveOutputTokens: 20}")
    answers = []
    for _ in range(60):
        answers.append(post(gateway, ALICE))
        if answers[-1].status_code == 429:
            break
    admitted, over = answers[:-1], answers[-1]
    assert len(admitted) >= 5 and all(a.status_code == 200 for a in admitted), len(admitted)
    assert all(a.headers["x-gateway-cost-limit"] == "0.002" for a in answers)
    remaining = [float(a.headers["x-gateway-cost-remaining"]) for a in admitted]
    assert remaining == sorted(remaining, reverse=True) and remaining[0] < 0.002

    assert over.status_code == 429
    error = over.json()["error"]
    assert error["code"] == "insufficient_quota" and error["type"] == "insufficient_quota"
    assert "cost per day of caller key alice: Limit 0.002, Used 0.00" in error["message"]
    midnight = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    assert abs(int(over.headers["retry-after"]) - _seconds_to(midnight)) <= 5
    assert over.headers["x-gateway-cost-reset"].endswith("s")

    # What was admitted cost no more than the limit: each call's cost was within its reservation.
    spent = sum(access_line(gateway, a.headers["x-request-id"])["cost"] for a in admitted)
    assert 0.002 - 0.0003 < spent <= 0.002, spent
    # Another key is its own; the official SDK reads the refusal as a RateLimitError.
    assert post(gateway, BOB).status_code == 200
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=ALICE, max_retries=0)
    with pytest.raises(openai.RateLimitError) as raised:
        client.chat.completions.create(**CHAT)
    assert raised.value.code == "insufficient_quota"


def test_a_call_whose_reservation_alone_costs_more_than_the_limit_is_told_so(start) -> None:
    gateway = start("{costPerMonth: 0.005}")
    # 1000 output tokens at 10.00 a million: 0.01, more than the month allows.
    too_large = post(gateway, ALICE, body={**CHAT, "max_tokens": 1000})
    assert too_large.status_code == 429
    error = too_large.json()["error"]
    assert error["code"] == "insufficient_quota" and "Request too large for caller key alice" in error["message"]
    assert "Limit 0.005, Requested 0.01" in error["message"]
    fits = post(gateway, ALICE, body={**CHAT, "max_tokens": 100})
    assert fits.status_code == 200 and float(fits.headers["x-gateway-cost-remaining"]) < 0.005
    # Embeddings reserve their prompt at the input price only.
    embedded = post(gateway, ALICE, "/v1/embeddings", {"model": "text-embedding-3-small", "input": "x"})
    assert embedded.status_code == 200


def test_a_cost_limit_per_month_waits_for_the_months_end(start) -> None:
    gateway = start("{costPerMonth: 0.001, costPerDay: 5, reserveOutputTokens: 50}")
    answers = [post(gateway, ALICE)]
    while answers[-1].status_code == 200 and len(answers) < 60:
        answers.append(post(gateway, ALICE))
    over = answers[-1]
    assert len(answers) > 2 and over.status_code == 429
    assert "cost per month of caller key alice: Limit 0.001" in over.json()["error"]["message"]
    now = datetime.now(UTC)
    next_month = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    assert abs(int(over.headers["retry-after"]) - _seconds_to(next_month)) <= 5
    # The header tells the limit with the least left: the month's.
    assert over.headers["x-gateway-cost-limit"] == "0.001"
