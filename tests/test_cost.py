"""What calls cost, over real sockets: the simulator's usage (cached and reasoning tokens included) at each
deployment's price, in the access log; a pool's members at their own prices. Cost limits per key: tests/test_budgets
and tests/test_budgets_shared.py; the cost metric: tests/test_telemetry.py."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from azure_sim.server import AzureSimulator
from core.models.prices import Price
from tests.support.access_log import access_line
from tests.support.standard import ALICE, SECRETS

PRICED = """
endpoints:
  azureOpenAI:
    groups:
      - group: east
        apiKey: "${EASTUS_KEY}"
        instanceName: east
        baseURL: "${SIM_URL}"
        version: "2025-04-01-preview"
        models:
          gpt-4o: {deploymentName: gpt-4o-dep, price: {input: 2.50, cachedInput: 1.25, output: 10.00}}
          o4-mini: {deploymentName: o4-mini-dep, price: {input: 1.10, cachedInput: 0.275, output: 4.40}}
          gpt-4o-cheap: {deploymentName: gpt-4o-dep, price: {input: 1, output: 2}}
          embed: {deploymentName: text-embedding-3-small}
          house: {deploymentName: house-dep}
gateway:
  apiKeys:
    - {name: alice, key: "${ALICE_KEY}"}
  pools:
    pooled:
      models:
        - {model: gpt-4o-cheap, price: {input: 0.5, output: 0.5}}
"""
# A prompt long enough for Azure's prompt cache (1024 tokens; the simulator counts words).
LONG_PROMPT = " ".join(f"word{i}" for i in range(1300))


@pytest.fixture(scope="module")
def own_sim() -> Iterator[AzureSimulator]:
    simulator = AzureSimulator(api_keys={SECRETS["EASTUS_KEY"]}, models={"o4-mini-dep": "o4-mini"}).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def gateway(own_sim, start_gateway):
    own_sim.reset()
    return start_gateway(PRICED, {**SECRETS, "SIM_URL": own_sim.url})


def _cost(line: dict[str, Any], price: Price) -> float:
    micros = price.cost(line["prompt_tokens"], line.get("cached_tokens") or 0, line.get("completion_tokens") or 0)
    return micros / 1_000_000


def test_a_long_prompt_sent_again_costs_less_for_its_cached_tokens(gateway) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=ALICE, max_retries=0)
    price = Price.of(2.50, 1.25, 10.00)
    lines = []
    for _ in range(2):
        raw = client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": LONG_PROMPT}]
        )
        lines.append(access_line(gateway, raw.headers["x-request-id"]))
    first, second = lines
    assert first["prompt_tokens"] == second["prompt_tokens"] == 1300
    assert first.get("cached_tokens", 0) == 0 and second["cached_tokens"] == 1280  # 1024 + 2 x 128
    assert first["cost"] == pytest.approx(_cost(first, price)) and first["cost"] > 0
    # 20 uncached tokens at 2.50 a million, 1280 at 1.25, the completion at 10.
    expected = (20 * 2.5 + 1280 * 1.25 + second["completion_tokens"] * 10) / 1_000_000
    assert second["cost"] == pytest.approx(expected, abs=1e-6)
    assert second["cost"] < first["cost"]


def test_reasoning_tokens_are_billed_as_output_and_a_stream_is_priced_too(gateway) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=ALICE, max_retries=0)
    price = Price.of(1.10, 0.275, 4.40)
    raw = client.chat.completions.with_raw_response.create(
        model="o4-mini", messages=[{"role": "user", "content": "one two three"}], reasoning_effort="high"
    )
    line = access_line(gateway, raw.headers["x-request-id"])
    assert line["reasoning_tokens"] == 128 and line["completion_tokens"] > 128
    assert line["cost"] == pytest.approx(_cost(line, price))
    assert line["cost"] * 1_000_000 >= line["completion_tokens"] * 4.40  # the reasoning at the output price

    # A stream, with usage asked for by the client: priced from its usage chunk.
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json={
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": "one two three"}],
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        headers={"Authorization": f"Bearer {ALICE}"},
        timeout=10,
    ) as streamed:
        streamed.read()
    line = access_line(gateway, streamed.headers["x-request-id"])
    assert line["cost"] == pytest.approx(_cost(line, Price.of(2.50, 1.25, 10.00))) and line["cost"] > 0


def test_each_deployment_and_pool_member_is_priced_on_its_own_and_an_unpriced_one_has_no_cost(gateway) -> None:
    headers = {"Authorization": f"Bearer {ALICE}"}
    chat = {"messages": [{"role": "user", "content": "one two three"}]}
    lines = {}
    for model in ("gpt-4o-cheap", "pooled", "house"):
        answer = httpx.post(f"{gateway.url}/v1/chat/completions", json={**chat, "model": model}, headers=headers)
        assert answer.status_code == 200
        lines[model] = access_line(gateway, answer.headers["x-request-id"])
    assert lines["gpt-4o-cheap"]["cost"] == pytest.approx(_cost(lines["gpt-4o-cheap"], Price.of(1, 1, 2)))
    # The same deployment through the pool: at the member's own price.
    assert lines["pooled"]["member"] == "gpt-4o-cheap"
    assert lines["pooled"]["cost"] == pytest.approx(_cost(lines["pooled"], Price.of(0.5, 0.5, 0.5)))
    assert "cost" not in lines["house"] and lines["house"]["total_tokens"] > 0

    # Embeddings: the built-in table's price for text-embedding-3-small, input only.
    embedded = httpx.post(f"{gateway.url}/v1/embeddings", json={"model": "embed", "input": "a b c d"}, headers=headers)
    line = access_line(gateway, embedded.headers["x-request-id"])
    assert line["cost"] == pytest.approx(_cost(line, Price.of(0.02, 0.02, 0)))


def test_a_response_is_priced_with_its_cached_and_reasoning_tokens(gateway) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=ALICE, max_retries=0)
    lines = []
    for _ in range(2):
        raw = client.responses.with_raw_response.create(
            model="o4-mini", input=LONG_PROMPT, reasoning={"effort": "low"}, store=False
        )
        lines.append(access_line(gateway, raw.headers["x-request-id"]))
    second = lines[1]
    assert second["cached_tokens"] == 1280 and second["reasoning_tokens"] == 16
    assert second["cost"] == pytest.approx(_cost(second, Price.of(1.10, 0.275, 4.40)))
    assert second["cost"] < lines[0]["cost"]


def test_a_response_from_a_pool_is_priced_at_the_member_that_served(gateway) -> None:
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=ALICE, max_retries=0)
    raw = client.responses.with_raw_response.create(model="pooled", input="one two three", store=False)
    line = access_line(gateway, raw.headers["x-request-id"])
    assert line["member"] == "gpt-4o-cheap"
    assert line["cost"] == pytest.approx(_cost(line, Price.of(0.5, 0.5, 0.5))) and line["cost"] > 0
