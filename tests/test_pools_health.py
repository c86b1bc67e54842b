"""What benches a pool member, and for how long (issue 21, "Pools and health"), end to end: real
simulators as members, a real gateway, the official openai SDK with its own retries off.

Each scenario is a pool of its own members ("{scenario}-east", "{scenario}-west"), since health is
kept per member and per gateway instance. The callers steer the simulators with x-sim-* headers,
which this gateway forwards: a header stands for a prompt that makes Azure misbehave.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from azure_sim import AzureSimulator
from tests.support.access_log import access_line
from tests.support.gateways import Gateway, StartGateway
from tests.support.simulators import regional_simulators

KEY = "azure-key-health-0123"
TENANTS = {"alice": "gw-key-health-alice", "bob": "gw-key-health-bob"}
REGIONS = ("east", "west")
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Hello pool"}]
MAX_COOLDOWN = 120
# scenario -> pool settings (YAML flow mapping, less `models`); members are "{scenario}-{region}".
SCENARIOS = {
    "capped": "{}",
    "capdate": "{}",
    "caponce": "{maxAttempts: 1}",
    "hintpast": "{}",
    "hintnegative": "{}",
    "hintjunk": "{}",
    "throttled": "{}",
    "poisoned": "{}",
    "slowwhole": "{firstByteTimeout: 0.3}",
    "brokenstream": "{circuitBreaker: {minimumRequests: 2, trip: 60}}",
    "clientgone": "{circuitBreaker: {minimumRequests: 2, trip: 60}}",
    "stalledstream": "{circuitBreaker: {minimumRequests: 2, trip: 60}}",
    "remainingnegative": "{strategy: most-remaining}",
    "remainingjunk": "{strategy: most-remaining}",
}


def health_config(urls: dict[str, str]) -> str:
    lines = ["endpoints:", "  azureOpenAI:", "    groups:"]
    for region in REGIONS:
        lines += [
            f"      - group: {region}",
            f"        apiKey: {KEY}",
            f"        instanceName: {region}",
            f'        baseURL: "{urls[region]}"',
            "        version: 2024-10-21",
            "        deploymentName: chat-dep",
            "        models:",
        ]
        lines += [f"          {scenario}-{region}: true" for scenario in SCENARIOS]
    lines += ["gateway:", "  apiKeys:"]
    lines += [f"    - {{name: {name}, key: {key}}}" for name, key in TENANTS.items()]
    lines += [
        "  timeouts: {connect: 2, read: 5, idle: 1}",
        '  forwardHeaders: ["x-sim-*"]',
        f"  maxCooldown: {MAX_COOLDOWN}",
        "  pools:",
    ]
    for scenario, settings in SCENARIOS.items():
        members = ", ".join(
            f"{{model: {scenario}-{region}, priority: {rank}}}" for rank, region in enumerate(REGIONS, 1)
        )
        lines.append(f"    {scenario}: {{models: [{members}], {settings[1:-1]}}}".replace(", }", "}"))
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def sims() -> Iterator[dict[str, AzureSimulator]]:
    with regional_simulators(REGIONS, KEY, {"chat-dep"}) as started:
        yield started


@pytest.fixture(autouse=True)
def _healthy(sims: dict[str, AzureSimulator]) -> None:
    for simulator in sims.values():
        simulator.reset()


@pytest.fixture(scope="module")
def pooled(sims: dict[str, AzureSimulator], start_gateway_session: StartGateway) -> Gateway:
    return start_gateway_session(health_config({region: sim.url for region, sim in sims.items()}), {})


def client_of(pooled: Gateway, tenant: str = "alice") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{pooled.url}/v1", api_key=TENANTS[tenant], max_retries=0, timeout=10)


@pytest.fixture
def client(pooled: Gateway) -> openai.OpenAI:
    return client_of(pooled)


def calls(sim: AzureSimulator) -> int:
    return sum(1 for request in sim.requests if "/openai/deployments/" in request.path)


def chat(client: openai.OpenAI, model: str, headers: dict[str, str] | None = None) -> tuple[str, str]:
    """The answer's text and the request id the gateway gave it."""
    raw = client.chat.completions.with_raw_response.create(model=model, messages=MESSAGES, extra_headers=headers)
    return raw.parse().choices[0].message.content or "", raw.headers["x-request-id"]


# -- issue 21.2: an upstream's wait is capped, and a wait that makes no sense is no wait


@pytest.mark.parametrize(
    ("scenario", "behaviour"),
    [
        ("capped", {"retry_after_ms": 99999999999999}),
        ("capdate", {"retry_after": "Fri, 31 Dec 9999 23:59:59 GMT"}),
    ],
    ids=["retry-after-ms", "http-date"],
)
def test_a_retry_after_of_millennia_benches_for_max_cooldown_at_most(client, sims, scenario, behaviour) -> None:
    for simulator in sims.values():
        simulator.behaviour.fail = "429"
        for name, value in behaviour.items():
            setattr(simulator.behaviour, name, value)
    for _ in range(2):  # the first call benches both members; the second finds them benched
        with pytest.raises(openai.RateLimitError) as caught:
            chat(client, scenario)
        headers = caught.value.response.headers
        assert 0 <= int(headers["retry-after"]) <= MAX_COOLDOWN
        assert 0 <= int(headers["retry-after-ms"]) <= MAX_COOLDOWN * 1000
    assert [calls(simulator) for simulator in sims.values()] == [1, 1]


def test_a_relayed_429_asks_the_caller_to_wait_max_cooldown_at_most(client, sims) -> None:
    sims["east"].behaviour.fail, sims["east"].behaviour.retry_after_ms = "429", 99999999999999
    with pytest.raises(openai.RateLimitError) as caught:  # one attempt: east's own 429 is the caller's answer
        chat(client, "caponce")
    headers = caught.value.response.headers
    assert (headers["retry-after"], headers["retry-after-ms"]) == (str(MAX_COOLDOWN), str(MAX_COOLDOWN * 1000))


@pytest.mark.parametrize(
    ("scenario", "retry_after"),
    [("hintpast", "Thu, 01 Jan 2015 00:00:00 GMT"), ("hintnegative", "-5"), ("hintjunk", "soon")],
    ids=["past", "negative", "junk"],
)
def test_a_retry_after_that_names_no_wait_is_absent_and_the_cooldown_applies(
    client, pooled, sims, scenario, retry_after
) -> None:
    east, west = sims["east"], sims["west"]
    east.behaviour.fail, east.behaviour.retry_after = "429", retry_after
    text, request_id = chat(client, scenario)
    assert text == "Echo: Hello pool" and access_line(pooled, request_id)["failed"] == [f"{scenario}-east:429"]
    east.behaviour.fail = None
    chat(client, scenario)  # east sits out the pool's cooldown (10 s), not "no time at all"
    assert (calls(east), calls(west)) == (1, 2)


# -- issue 21.5: a negative or unreadable remaining count is none left, never plenty


@pytest.mark.parametrize(
    ("scenario", "remaining"),
    [("remainingnegative", "-5"), ("remainingjunk", "lots")],
    ids=["negative", "unparsable"],
)
def test_most_remaining_ranks_a_member_reporting_nothing_left_last(client, sims, scenario, remaining) -> None:
    east, west = sims["east"], sims["west"]
    east.behaviour.remaining_tokens = remaining
    for _ in range(4):
        chat(client, scenario)
    # east (first in order) answers first and says it has nothing left; from then on west, which has plenty.
    assert (calls(east), calls(west)) == (1, 3)


# -- issue 21.3: a 429 is a cooldown, never a breaker failure


def test_429s_bench_a_member_for_their_retry_after_only_never_trip_its_breaker(client, pooled, sims) -> None:
    east, west = sims["east"], sims["west"]
    east.behaviour.fail, east.behaviour.retry_after_ms = "429", 1  # back in a millisecond, each time
    for _ in range(8):  # more than the breaker's volume, all within its window
        text, request_id = chat(client, "throttled")
        assert text == "Echo: Hello pool" and access_line(pooled, request_id)["failed"] == ["throttled-east:429"]
    east.behaviour.fail = None
    text, request_id = chat(client, "throttled")
    assert access_line(pooled, request_id)["member"] == "throttled-east"
    assert (calls(east), calls(west)) == (9, 8)


# -- issue 21.1: one caller cannot bench a pool for everyone; firstByteTimeout spares whole answers

POISON = {"x-sim-fail": "500"}  # a prompt Azure answers with a 500, every time, in every region


def test_one_tenants_failing_prompts_do_not_bench_the_pool_for_the_others(pooled, sims) -> None:
    alice, bob = client_of(pooled, "alice"), client_of(pooled, "bob")
    for _ in range(12):  # past the breaker's volume (10): both members' breakers open on alice's 500s
        with pytest.raises(openai.InternalServerError):  # her own answer, each time: never a 429
            chat(alice, "poisoned", POISON)
    assert [calls(simulator) for simulator in sims.values()] == [12, 12]
    text, request_id = chat(bob, "poisoned")  # every breaker open: the members are tried anyway
    assert text == "Echo: Hello pool" and access_line(pooled, request_id)["member"] == "poisoned-east"
    for _ in range(3):
        assert chat(bob, "poisoned")[0] == "Echo: Hello pool"


def test_first_byte_timeout_does_not_give_up_on_a_whole_answer_being_generated(client, pooled, sims) -> None:
    east, west = sims["east"], sims["west"]
    east.behaviour.delay = 0.8  # a non-streamed answer's headers come once it is generated
    text, request_id = chat(client, "slowwhole")
    assert text == "Echo: Hello pool" and access_line(pooled, request_id)["member"] == "slowwhole-east"
    assert calls(west) == 0  # not asked (and billed) a second time
    stream = client.chat.completions.create(model="slowwhole", messages=MESSAGES, stream=True)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == "Echo: Hello pool"
    assert calls(west) == 1  # a stream's first event is late: the next member serves it


# -- issue 21.4: a member that breaks its streams is charged with failures; a client that leaves is not


def stream_request_id(client: openai.OpenAI, model: str) -> tuple[str, str]:
    """A streamed chat read to its end: its text and request id (the stream may end in an error event)."""
    text = ""
    with client.chat.completions.with_streaming_response.create(model=model, messages=MESSAGES, stream=True) as raw:
        request_id = raw.headers["x-request-id"]
        try:
            for chunk in raw.parse():
                text += "".join(choice.delta.content or "" for choice in chunk.choices)
        except openai.APIError:
            pass  # the in-band error event the gateway sends when the upstream breaks off
    return text, request_id


def test_a_member_that_breaks_its_streams_is_benched(client, pooled, sims) -> None:
    east, west = sims["east"], sims["west"]
    east.behaviour.fail = "abort"  # every stream east serves is cut half-way
    for _ in range(2):  # the breaker's volume: both served by east (its headers came), both broken
        _, request_id = stream_request_id(client, "brokenstream")
        line = access_line(pooled, request_id)
        assert (line["member"], line["error_code"]) == ("brokenstream-east", "upstream_closed_connection")
    east.behaviour.fail = None
    text, request_id = stream_request_id(client, "brokenstream")
    assert text == "Echo: Hello pool" and access_line(pooled, request_id)["member"] == "brokenstream-west"
    assert (calls(east), calls(west)) == (2, 1)


def test_a_member_whose_streams_stall_past_the_idle_timeout_is_benched(client, pooled, sims) -> None:
    east, west = sims["east"], sims["west"]
    east.behaviour.chunk_delay, east.behaviour.chunks = 1.5, 3  # past gateway.timeouts.idle (1 s) between events
    for _ in range(2):
        _, request_id = stream_request_id(client, "stalledstream")
        line = access_line(pooled, request_id)
        assert (line["member"], line["error_code"]) == ("stalledstream-east", "upstream_timeout")
    east.behaviour.chunk_delay = 0.0
    text, request_id = stream_request_id(client, "stalledstream")
    assert text == "Echo: Hello pool" and access_line(pooled, request_id)["member"] == "stalledstream-west"
    assert (calls(east), calls(west)) == (2, 1)


def test_a_client_that_leaves_a_stream_charges_no_member(pooled, sims) -> None:
    east, west = sims["east"], sims["west"]
    east.behaviour.chunk_delay, east.behaviour.chunks = 0.2, 20
    body = {"model": "clientgone", "messages": MESSAGES, "stream": True}
    headers = {"Authorization": f"Bearer {TENANTS['alice']}"}
    for _ in range(3):
        with httpx.stream("POST", f"{pooled.url}/v1/chat/completions", json=body, headers=headers) as response:
            request_id = response.headers["x-request-id"]
            next(response.iter_lines())  # the first event, then the client goes
        assert access_line(pooled, request_id)["error_code"] == "client_closed_request"
    east.behaviour.chunk_delay, east.behaviour.chunks = 0.0, 5
    _, request_id = stream_request_id(client_of(pooled), "clientgone")
    assert access_line(pooled, request_id)["member"] == "clientgone-east" and calls(west) == 0
