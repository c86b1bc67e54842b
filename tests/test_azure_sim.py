"""The Azure simulator itself: the gateway's tests trust it, so its wire format and fault knobs are checked here."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from azure_sim import AzureSimulator

KEY = "sim-key"
CHAT = "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello there world"}]


@pytest.fixture(scope="module")
def _server() -> Iterator[AzureSimulator]:
    with AzureSimulator(api_keys={KEY}, deployments={"gpt-4o", "ada"}) as sim:
        yield sim


@pytest.fixture
def sim(_server: AzureSimulator) -> Iterator[AzureSimulator]:
    _server.reset()
    yield _server
    _server.reset()


@pytest.fixture
def client(sim: AzureSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, headers={"api-key": KEY}, timeout=5) as c:
        yield c


def _events(lines: Iterator[str]) -> Iterator[tuple[float, bytes]]:
    """(arrival time, payload) of each SSE data line."""
    for line in lines:
        if line.startswith("data: "):
            yield time.monotonic(), line[6:].encode()


def test_auth_is_required_and_checked(client: httpx.Client) -> None:
    for headers in ({"api-key": "wrong"}, {"api-key": ""}, {"api-key": "", "Authorization": "Bearer wrong"}):
        r = client.post(CHAT, json={"messages": MESSAGES}, headers=headers)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "401"
    r = client.post(CHAT, json={"messages": MESSAGES}, headers={"api-key": "", "Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200


def test_api_version_missing_malformed_or_repeated(client: httpx.Client, sim: AzureSimulator) -> None:
    base = "/openai/deployments/gpt-4o/chat/completions"
    r = client.post(base, json={"messages": MESSAGES})
    assert (r.status_code, r.json()) == (404, {"error": {"code": "404", "message": "Resource not found"}})
    for query in ("?api-version=latest", "?api-version=2024-10-21&api-version=2024-10-21"):
        r = client.post(base + query, json={"messages": MESSAGES})
        assert r.status_code == 400
        assert r.json()["error"] == {"code": "BadRequest", "message": "API version not supported"}
    assert sim.requests[-1].raw_query == "api-version=2024-10-21&api-version=2024-10-21"
    assert client.post(base + "?api-version=2025-04-01-preview", json={"messages": MESSAGES}).status_code == 200


def test_unknown_deployment(client: httpx.Client) -> None:
    r = client.post("/openai/deployments/nope/chat/completions?api-version=2024-10-21", json={"messages": MESSAGES})
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "DeploymentNotFound"


def test_chat_echo_is_azure_shaped_and_recorded(client: httpx.Client, sim: AzureSimulator) -> None:
    parts = [
        {"type": "text", "text": "hello"},
        {"type": "image_url", "image_url": {"url": "x"}},
        {"type": "text", "text": "world"},
    ]
    r = client.post(CHAT, json={"messages": [{"role": "user", "content": parts}]}, headers={"X-Trace": "t1"})
    assert r.status_code == 200
    body = r.json()
    assert list(body) == sorted(body)  # Azure sorts keys
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert body["choices"][0]["message"] == {"content": "Echo: hello world", "refusal": None, "role": "assistant"}
    assert body["prompt_filter_results"][0]["prompt_index"] == 0
    assert body["usage"]["total_tokens"] == body["usage"]["prompt_tokens"] + body["usage"]["completion_tokens"]
    seen = sim.requests[-1]
    assert (seen.method, seen.path) == ("POST", "/openai/deployments/gpt-4o/chat/completions")
    assert seen.query == {"api-version": "2024-10-21"}
    assert seen.headers["api-key"] == KEY and seen.headers["x-trace"] == "t1"
    assert seen.json["messages"][0]["content"] == parts and orjson.loads(seen.body) == seen.json
    assert seen.completed and not seen.disconnected


def test_stream_is_paced_and_ordered_like_azure(client: httpx.Client) -> None:
    body = {"messages": MESSAGES, "stream": True}
    with client.stream("POST", CHAT, json=body, headers={"x-sim-chunk-delay-ms": "40"}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        events = list(_events(r.iter_lines()))
    payloads = [p for _, p in events]
    assert payloads[-1] == b"[DONE]"
    chunks = [orjson.loads(p) for p in payloads[:-1]]
    first, role, *content, finish = chunks
    assert first["id"] == "" and first["choices"] == [] and first["prompt_filter_results"]
    assert role["choices"][0]["delta"] == {"content": "", "refusal": None, "role": "assistant"}
    assert len(content) == 5
    assert "".join(c["choices"][0]["delta"]["content"] for c in content) == "Echo: hello there world"
    assert finish["choices"][0]["finish_reason"] == "stop" and "usage" not in finish
    times = [t for t, _ in events]
    assert times == sorted(times)
    assert times[-1] - times[0] > 0.15  # 8 gaps of 40 ms: the events were not sent in one burst


def test_include_usage_adds_a_final_usage_chunk(client: httpx.Client) -> None:
    body = {"messages": MESSAGES, "stream": True, "stream_options": {"include_usage": True}}
    r = client.post(CHAT, json=body)
    payloads = [p for _, p in _events(iter(r.text.splitlines()))]
    usage_chunk = orjson.loads(payloads[-2])
    assert payloads[-1] == b"[DONE]"
    assert usage_chunk["choices"] == [] and usage_chunk["id"].startswith("chatcmpl-")
    assert usage_chunk["usage"]["completion_tokens"] == 4  # "Echo: hello there world"


def test_429_with_retry_after(client: httpx.Client, sim: AzureSimulator) -> None:
    r = client.post(CHAT, json={"messages": MESSAGES}, headers={"x-sim-fail": "429"})
    assert r.status_code == 429
    assert r.headers["retry-after"] == "7" and r.headers["x-ratelimit-remaining-requests"] == "0"
    assert r.json()["error"]["code"] == "429" and "retry after 7 seconds" in r.json()["error"]["message"]
    sim.behaviour.fail = "429"  # the same through the shared behaviour, undone by reset()
    assert client.post(CHAT, json={"messages": MESSAGES}).status_code == 429
    sim.reset()
    assert client.post(CHAT, json={"messages": MESSAGES}).status_code == 200


def test_content_filter_body_is_the_real_azure_payload(client: httpx.Client) -> None:
    r = client.post(CHAT, json={"messages": MESSAGES, "stream": True}, headers={"x-sim-fail": "content_filter"})
    assert r.status_code == 400 and r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert (error["code"], error["type"], error["param"], error["status"]) == ("content_filter", None, "prompt", 400)
    assert error["innererror"]["code"] == "ResponsibleAIPolicyViolation"
    assert error["innererror"]["content_filter_result"]["sexual"] == {"filtered": True, "severity": "high"}


def test_client_disconnect_is_recorded(client: httpx.Client, sim: AzureSimulator) -> None:
    headers = {"x-sim-chunk-delay-ms": "200"}
    with client.stream("POST", CHAT, json={"messages": MESSAGES, "stream": True}, headers=headers) as r:
        next(r.iter_lines())  # the filter-only event, then walk away
    deadline = time.monotonic() + 3
    while not sim.requests[-1].disconnected and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sim.requests[-1].disconnected and not sim.requests[-1].completed


def test_client_timeout_during_header_delay_is_recorded(client: httpx.Client, sim: AzureSimulator) -> None:
    with pytest.raises(httpx.ReadTimeout):
        client.post(CHAT, json={"messages": MESSAGES}, headers={"x-sim-delay-ms": "1500"}, timeout=0.2)
    deadline = time.monotonic() + 3
    while not sim.requests[-1].disconnected and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sim.requests[-1].disconnected and not sim.requests[-1].completed


def test_abort_drops_the_stream_after_two_content_events(client: httpx.Client, sim: AzureSimulator) -> None:
    payloads: list[bytes] = []
    with pytest.raises(httpx.RemoteProtocolError):
        body = {"messages": MESSAGES, "stream": True}
        with client.stream("POST", CHAT, json=body, headers={"x-sim-fail": "abort"}) as r:
            payloads.extend(p for _, p in _events(r.iter_lines()))
    assert len(payloads) == 4 and b"[DONE]" not in payloads  # filter event, role, 2 content
    assert sim.requests[-1].aborted and not sim.requests[-1].disconnected


@pytest.mark.parametrize(
    ("path", "body", "check"),
    [
        (
            "/openai/deployments/gpt-4o/completions?api-version=2024-10-21",
            {"prompt": "say hi"},
            lambda j: j["object"] == "text_completion" and j["choices"][0]["text"] == "Echo: say hi",
        ),
        (
            "/openai/deployments/ada/embeddings?api-version=2024-10-21",
            {"input": ["a", [1, 2]]},
            lambda j: [len(d["embedding"]) for d in j["data"]] == [8, 8] and j["model"] == "text-embedding-ada-002",
        ),
        (
            "/v1/chat/completions",
            {"model": "Phi-4", "messages": MESSAGES},
            lambda j: j["model"] == "Phi-4" and j["choices"][0]["message"]["content"] == "Echo: hello there world",
        ),
        ("/embeddings", {"model": "m", "input": "x"}, lambda j: j["model"] == "m" and j["usage"]["prompt_tokens"] == 1),
    ],
)
def test_other_operations_and_serverless_routes(
    client: httpx.Client, path: str, body: dict[str, Any], check: Callable[[dict[str, Any]], bool]
) -> None:
    r = client.post(path, json=body, headers={"api-key": "", "Authorization": f"Bearer {KEY}"})
    assert r.status_code == 200, r.text
    assert check(r.json())
