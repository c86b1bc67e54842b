"""Pools end to end: three simulators as members, the official openai SDK as the client with
its own retries off (max_retries=0), so what is measured is the gateway's failover alone.

Health is per gateway instance and kept per member, so each scenario has members of its own.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from azure_sim import AzureSimulator
from tests.support.access_log import access_line
from tests.support.gateways import Gateway, StartGateway
from tests.support.json_values import json_object
from tests.support.simulators import regional_simulators

KEY, CALLER, LIMITED = "azure-key-pools-0123", "gw-key-pools-alice", "gw-key-pools-bob"
REGIONS = ("east", "west", "north")
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello pool"}]
READ_TIMEOUT = 1.0
# scenario -> pool settings (YAML flow mapping, less `models`); members are "{scenario}-{region}".
SCENARIOS = {
    "throttled": "{}",
    "failing": "{}",
    "reset": "{}",
    "refused": "{}",
    "slow": "{firstByteTimeout: 0.3}",
    "timeout": "{}",
    "retrytimeout": "{retryOnTimeout: true}",
    "benched": "{}",
    "stream": "{}",
    "caller": "{}",
    "rr": "{strategy: round-robin}",
    "breaker": "{circuitBreaker: {minimumRequests: 2, window: 30, trip: 1}}",
    "upload": "{}",
    "responses": "{}",
}


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]  # typeshed: Any, as the address depends on the family
        return port


def pool_config(urls: dict[str, str], refused_url: str) -> str:
    lines = ["endpoints:", "  azureOpenAI:", "    groups:"]
    for region in (*REGIONS, "gone"):
        lines += [
            f"      - group: {region}",
            f"        apiKey: {KEY}",
            f"        instanceName: {region}",
            f'        baseURL: "{urls.get(region, refused_url)}"',
            "        version: 2024-10-21",
            "        deploymentName: chat-dep",
            "        models:",
        ]
        lines += [f"          {scenario}-{region}: true" for scenario in SCENARIOS]
        lines += [f"          upload-{region}: {{deploymentName: whisper-dep}}"]
    lines += [
        "gateway:",
        "  apiKeys:",
        f"    - {{name: alice, key: {CALLER}}}",
        f"    - {{name: bob, key: {LIMITED}, models: [caller]}}",
        f"  timeouts: {{connect: 2, read: {READ_TIMEOUT}}}",
        "  pools:",
    ]
    for scenario, settings in SCENARIOS.items():
        regions = ("east", "gone", "west") if scenario == "refused" else REGIONS
        members = ", ".join(
            f"{{model: {scenario}-{region}, priority: {rank}}}" for rank, region in enumerate(regions, 1)
        )
        lines.append(f"    {scenario}: {{models: [{members}], {settings[1:-1]}}}".replace(", }", "}"))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, AzureSimulator]]:
    with regional_simulators(REGIONS, KEY, {"chat-dep", "whisper-dep"}) as started:
        yield started


@pytest.fixture(autouse=True)
def _healthy(sims: dict[str, AzureSimulator]) -> None:
    for simulator in sims.values():
        simulator.reset()


@pytest.fixture(scope="module")
def pooled(sims: dict[str, AzureSimulator], start_gateway_session: StartGateway) -> Gateway:
    config = pool_config({region: sim.url for region, sim in sims.items()}, f"http://127.0.0.1:{_closed_port()}")
    return start_gateway_session(config, {})


@pytest.fixture
def client(pooled: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{pooled.url}/v1", api_key=CALLER, max_retries=0, timeout=10)


def calls(sim: AzureSimulator) -> int:
    return sum(1 for request in sim.requests if "/openai/deployments/" in request.path)


def chat(client: openai.OpenAI, model: str) -> tuple[str, str]:
    """The answer's text and the request id the gateway gave it."""
    raw = client.chat.completions.with_raw_response.create(model=model, messages=MESSAGES)
    return raw.parse().choices[0].message.content or "", raw.headers["x-request-id"]


def test_a_429_fails_over_and_the_member_sits_out_its_retry_after(client, pooled, sims) -> None:
    east, west = sims["east"], sims["west"]
    east.behaviour.fail, east.behaviour.retry_after_ms = "429", 1500
    text, request_id = chat(client, "throttled")
    assert text == "Echo: Hello pool"
    assert (calls(east), calls(west)) == (1, 1)
    line = access_line(pooled, request_id)
    assert line["member"] == "throttled-west" and line["attempts"] == 2 and line["failed"] == ["throttled-east:429"]
    east.behaviour.fail = None
    chat(client, "throttled")
    assert (calls(east), calls(west)) == (1, 2)  # benched for its retry-after-ms: not even asked
    time.sleep(1.6)
    chat(client, "throttled")
    assert (calls(east), calls(west)) == (2, 2)


def test_500_then_503_reach_the_third_member(client, pooled, sims) -> None:
    sims["east"].behaviour.fail, sims["west"].behaviour.fail = "500", "503"
    text, request_id = chat(client, "failing")
    assert text == "Echo: Hello pool"
    line = access_line(pooled, request_id)
    assert line["member"] == "failing-north" and line["failed"] == ["failing-east:500", "failing-west:503"]


def test_every_member_failing_relays_the_last_failure(client, sims) -> None:
    for simulator in sims.values():
        simulator.behaviour.fail = "500"
    with pytest.raises(openai.InternalServerError) as caught:
        chat(client, "failing")
    assert caught.value.status_code == 500 and sum(calls(s) for s in sims.values()) == 3


def test_a_connection_reset_before_the_headers_fails_over(client, sims) -> None:
    sims["east"].behaviour.fail = "abort"
    assert chat(client, "reset")[0] == "Echo: Hello pool"
    assert calls(sims["west"]) == 1


def test_a_refused_connection_fails_over(client, pooled, sims) -> None:
    sims["east"].behaviour.fail = "503"
    text, request_id = chat(client, "refused")
    assert text == "Echo: Hello pool"
    assert access_line(pooled, request_id)["failed"] == ["refused-east:503", "refused-gone:unreachable"]


def test_slow_headers_move_on_after_first_byte_timeout(client, sims) -> None:
    sims["east"].behaviour.delay = READ_TIMEOUT * 0.8  # within the read timeout, beyond firstByteTimeout (0.3 s)
    stream = client.chat.completions.create(model="slow", messages=MESSAGES, stream=True)
    text = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert text == "Echo: Hello pool" and calls(sims["west"]) == 1


def test_a_read_timeout_is_not_retried_by_default(client, sims) -> None:
    sims["east"].behaviour.delay = READ_TIMEOUT + 1
    with pytest.raises(openai.APIStatusError) as caught:
        chat(client, "timeout")
    assert caught.value.status_code == 504 and calls(sims["west"]) == 0


def test_a_read_timeout_is_retried_where_the_pool_allows_it(client, sims) -> None:
    sims["east"].behaviour.delay = READ_TIMEOUT + 1
    assert chat(client, "retrytimeout")[0] == "Echo: Hello pool" and calls(sims["west"]) == 1


def test_every_member_benched_is_a_429_with_the_soonest_retry_after(client, sims) -> None:
    for simulator, wait in zip(sims.values(), (9000, 3000, 5000), strict=True):
        simulator.behaviour.fail, simulator.behaviour.retry_after_ms = "429", wait
    with pytest.raises(openai.RateLimitError) as caught:
        chat(client, "benched")
    assert caught.value.response.headers["retry-after"] == "3"
    assert json_object(caught.value.body)["code"] == "rate_limit_exceeded"
    with pytest.raises(openai.RateLimitError) as caught:
        chat(client, "benched")  # nobody is asked until one returns
    assert int(caught.value.response.headers["retry-after"]) <= 3 and sum(calls(s) for s in sims.values()) == 3


def test_a_stream_fails_over_before_its_first_byte_only(client, sims) -> None:
    sims["east"].behaviour.fail = "429"
    stream = client.chat.completions.create(model="stream", messages=MESSAGES, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "Echo: Hello pool"
    sims["west"].behaviour.fail = "abort"  # east is benched now: west serves, and drops mid-stream
    stream = client.chat.completions.create(model="stream", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError):
        list(stream)
    assert calls(sims["north"]) == 0  # after the first byte nothing is retried


def test_the_callers_own_error_is_not_retried(client, sims) -> None:
    sims["east"].behaviour.fail = "content_filter"
    with pytest.raises(openai.BadRequestError):
        chat(client, "caller")
    assert calls(sims["west"]) == 0


def test_an_upload_is_sent_once(pooled, sims) -> None:
    sims["east"].behaviour.fail = "503"
    response = httpx.post(
        f"{pooled.url}/v1/audio/transcriptions",
        headers={"Authorization": f"Bearer {CALLER}"},
        data={"model": "upload"},
        files={"file": ("a.wav", b"RIFF....WAVE", "audio/wav")},
        timeout=10,
    )
    assert response.status_code == 503 and calls(sims["west"]) == 0


def test_round_robin_spreads_over_every_member(client, sims) -> None:
    for _ in range(9):
        chat(client, "rr")
    assert [calls(s) for s in sims.values()] == [3, 3, 3]


def test_the_breaker_opens_then_a_probe_closes_it(client, sims) -> None:
    east = sims["east"]
    east.behaviour.fail = "500"
    chat(client, "breaker")
    chat(client, "breaker")  # the second consecutive failure opens it
    east.behaviour.fail = None
    chat(client, "breaker")
    assert calls(east) == 2  # open: east is not asked
    time.sleep(1.1)
    chat(client, "breaker")  # the half-open probe goes to east, and passes
    chat(client, "breaker")
    assert calls(east) == 4


def test_models_list_the_pool_once_and_a_key_may_name_the_pool(pooled) -> None:
    limited = openai.OpenAI(base_url=f"{pooled.url}/v1", api_key=LIMITED, max_retries=0)
    assert [model.id for model in limited.models.list()] == ["caller"]
    assert chat(limited, "caller")[0] == "Echo: Hello pool"
    with pytest.raises(openai.NotFoundError):
        chat(limited, "caller-east")
    everyone = openai.OpenAI(base_url=f"{pooled.url}/v1", api_key=CALLER, max_retries=0)
    ids = [model.id for model in everyone.models.list()]
    assert ids.count("throttled") == 1 and "throttled-east" in ids


def test_responses_route_by_model_without_assistants_groups(client, sims) -> None:
    response = client.responses.create(model="caller-west", input="Hello responses")
    assert response.output_text == "Echo: Hello responses" and response.model == "caller-west"
    assert sims["west"].requests[-1].json["model"] == "chat-dep"  # the body's model became the deployment


def test_a_pooled_response_fails_over_and_later_calls_find_its_region(client, pooled, sims) -> None:
    east, west = sims["east"], sims["west"]
    east.behaviour.fail, east.behaviour.retry_after_ms = "429", 60_000
    raw = client.responses.with_raw_response.create(model="responses", input="Hello pool")
    response = raw.parse()
    assert response.output_text == "Echo: Hello pool" and response.model == "responses"
    line = access_line(pooled, raw.headers["x-request-id"])
    assert line["member"] == "responses-west" and line["failed"] == ["responses-east:429"]
    east.behaviour.fail = None
    assert client.responses.retrieve(response.id).id == response.id
    assert client.responses.input_items.list(response.id).data
    streamed = client.responses.create(model="responses", input="Again", previous_response_id=response.id, stream=True)
    assert any(event.type == "response.completed" for event in streamed)
    client.responses.delete(response.id)
    assert [(r.method, r.path) for r in east.requests] == [("POST", "/openai/responses")]  # the 429, nothing since
    assert [r.method for r in west.requests] == ["POST", "GET", "GET", "POST", "DELETE"]
