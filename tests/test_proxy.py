"""What the gateway sends upstream, and how it relays what comes back."""

import socket
import time
from typing import Any

import httpx
import pytest

from tests.support.access_log import access_lines
from tests.support.standard import ALICE, SECRETS
from tests.support.streams import access_line

CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello there"}]}


def post(gateway, path: str, body: dict[str, Any], **headers: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}{path}", json=body, headers={"Authorization": f"Bearer {ALICE}", **headers}, timeout=10
    )


def test_chat_goes_to_the_deployment_with_the_server_key_and_the_clients_bytes(gateway, sim) -> None:
    raw = b'{"model":"gpt-4o",  "messages":[{"role":"user","content":"Hello there"}], "user":"u1"}'
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions?api-version=1999-01-01",
        content=raw,
        headers={"Authorization": f"Bearer {ALICE}", "content-type": "application/json"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["choices"][0]["message"]["content"] == "Echo: Hello there"
    (upstream,) = sim.requests
    assert upstream.path == "/openai/deployments/gpt-4o-dep/chat/completions"
    assert upstream.raw_query == "api-version=2024-10-21"  # exactly once, the configured one
    assert upstream.headers["api-key"] == SECRETS["EASTUS_KEY"]
    assert "authorization" not in upstream.headers
    assert ALICE not in str(upstream.headers)
    assert upstream.body == raw


def test_model_level_version_overrides_the_groups(gateway, sim) -> None:
    post(gateway, "/v1/chat/completions", {**CHAT, "model": "gpt-4o-mini"})
    assert sim.requests[0].path == "/openai/deployments/gpt-4o-mini-dep/chat/completions"
    assert sim.requests[0].query == {"api-version": "2025-04-01-preview"}


def test_hop_by_hop_and_caller_credentials_never_go_upstream(gateway, sim) -> None:
    post(
        gateway,
        "/v1/chat/completions",
        CHAT,
        **{
            "Connection": "keep-alive",
            "Proxy-Authorization": "Basic c2VjcmV0",
            "Cookie": "session=1",
            "X-Forwarded-For": "203.0.113.9",
            "Upgrade": "h2c",
            "OpenAI-Organization": "org-1",
            "api-key": ALICE,
            "OpenAI-Beta": "assistants=v2",
        },
    )
    headers = sim.requests[0].headers
    for name in ("proxy-authorization", "cookie", "x-forwarded-for", "upgrade", "authorization", "openai-organization"):
        assert name not in headers
    assert headers["api-key"] == SECRETS["EASTUS_KEY"]
    assert headers["openai-beta"] == "assistants=v2"  # allowed headers pass (tests/test_inbound_headers.py)
    assert headers["x-ms-client-request-id"]


def test_add_params_drop_params_additional_headers_and_base_url_placeholders(gateway, sim) -> None:
    body = {**CHAT, "model": "gpt-tuned", "temperature": 1.0, "top_p": 0.9, "frequency_penalty": 1, "n": 1}
    assert post(gateway, "/v1/chat/completions", body, **{"X-Custom-Header": "from-client"}).status_code == 200
    (upstream,) = sim.requests
    assert upstream.path == "/openai/deployments/tuned-dep/chat/completions"
    assert upstream.json["temperature"] == 0.2  # addParams wins over the client
    assert "top_p" not in upstream.json  # dropParams wins over addParams
    assert "frequency_penalty" not in upstream.json and upstream.json["n"] == 1
    assert [v for n, v in upstream.header_list if n == "x-custom-header"] == ["from-config"]  # config wins, once


def test_serverless_group_uses_its_endpoint_bearer_auth_and_the_model_id(gateway, sim) -> None:
    response = post(gateway, "/v1/chat/completions", {**CHAT, "model": "mistral-large"})
    assert response.status_code == 200, response.text
    (upstream,) = sim.requests
    assert upstream.path == "/v1/chat/completions" and upstream.raw_query == ""
    assert upstream.headers["authorization"] == f"Bearer {SECRETS['SERVERLESS_KEY']}"
    assert upstream.json["model"] == "mistral-large"


def test_force_prompt_sends_completions_and_answers_a_chat_completion(gateway, sim) -> None:
    response = post(gateway, "/v1/chat/completions", {**CHAT, "model": "gpt-instruct"})
    assert response.status_code == 200, response.text
    completion = response.json()
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"]["role"] == "assistant"
    assert completion["choices"][0]["message"]["content"].startswith("Echo: ")
    assert completion["usage"]["total_tokens"] > 0
    (upstream,) = sim.requests
    assert upstream.path == "/openai/deployments/instruct-dep/completions"
    assert "messages" not in upstream.json and "||>User:\nHello there\n" in upstream.json["prompt"]


def test_force_prompt_answer_keeps_the_completions_envelope(gateway) -> None:
    before = int(time.time())
    completion = post(gateway, "/v1/chat/completions", {**CHAT, "model": "gpt-instruct"}).json()
    assert completion["id"].startswith("cmpl-") and before <= completion["created"] <= time.time()
    assert completion["model"] == "gpt-35-turbo-instruct"  # the model Azure names, as for any chat answer
    (choice,) = completion["choices"]
    assert choice == {
        "index": 0,
        "message": {"role": "assistant", "content": choice["message"]["content"]},
        "finish_reason": "stop",
        "logprobs": None,
    }


@pytest.mark.parametrize(
    "fail, what",
    [
        ("invalid_json", "answered with a body that is not a JSON object"),
        ("bad_choices", "answered with a completion whose choices are not a list of objects"),
    ],
)
def test_force_prompt_answer_that_is_no_completion_is_a_502_naming_the_group(gateway, fail: str, what: str) -> None:
    response = post(gateway, "/v1/chat/completions", {**CHAT, "model": "gpt-instruct"}, **{"x-sim-fail": fail})
    assert response.status_code == 502
    assert response.json()["error"] == {
        "message": f"The upstream for group `legacy-prompt` {what}.",
        "type": "api_error",
        "param": None,
        "code": "upstream_bad_response",
    }


def test_completions_and_embeddings_routes(gateway, sim) -> None:
    completion = post(gateway, "/v1/completions", {"model": "gpt-4o", "prompt": "Say hi"}).json()
    assert completion["object"] == "text_completion" and completion["choices"][0]["text"] == "Echo: Say hi"
    embedding = post(gateway, "/v1/embeddings", {"model": "text-embedding-3-small", "input": ["a", "b"]}).json()
    assert [d["index"] for d in embedding["data"]] == [0, 1]
    legacy = post(gateway, "/v1/engines/text-embedding-3-small/embeddings", {"input": "a"}).json()
    assert legacy["object"] == "list" and len(legacy["data"]) == 1
    paths = [r.path for r in sim.requests]
    assert paths == [
        "/openai/deployments/gpt-4o-dep/completions",
        "/openai/deployments/embed-dep/embeddings",
        "/openai/deployments/embed-dep/embeddings",
    ]


def test_a_stream_answered_with_a_whole_json_body_gets_that_body(gateway) -> None:
    """An upstream that ignores `stream: true` is relayed as it answered, not rewritten."""
    response = post(
        gateway, "/v1/chat/completions", {**CHAT, "stream": True}, **{"x-sim-fail": "huge", "x-sim-huge-bytes": "80"}
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    assert response.json() == {"id": "chatcmpl-huge", "object": "chat.completion", "padding": "x" * 13}


def test_rate_limit_keeps_status_retry_after_and_code(gateway) -> None:
    response = post(gateway, "/v1/chat/completions", CHAT, **{"x-sim-fail": "429"})
    assert response.status_code == 429
    assert response.headers["retry-after"] == "7"
    # Azure's count is of the deployment's quota, which every gateway key shares: not this caller's to read.
    assert "x-ratelimit-remaining-requests" not in response.headers
    error = response.json()["error"]
    assert error["code"] == "429" and error["type"] == "rate_limit_error" and "retry after" in error["message"]


def test_only_a_caller_whose_own_azure_key_made_the_call_gets_azures_rate_limit_headers(
    sim, gateway, start_gateway
) -> None:
    own_key = start_gateway(
        f"""
endpoints:
  azureOpenAI:
    groups:
      - group: eastus
        instanceName: eastus-instance
        baseURL: "{sim.url}"
        version: "2024-10-21"
        models: {{gpt-4o: {{deploymentName: gpt-4o-dep}}}}
gateway:
  groups: {{eastus: {{auth: passthrough}}}}
  forwardHeaders: ["x-sim-*"]
"""
    )
    headers = {"api-key": SECRETS["EASTUS_KEY"], "x-sim-remaining-tokens": "1234"}
    for body, answer in (({}, {}), ({"stream": True}, {}), ({}, {"x-sim-fail": "429"})):  # whole, streamed, refused
        asked = {**CHAT, **body}
        passed = httpx.post(f"{own_key.url}/v1/chat/completions", json=asked, headers={**headers, **answer})
        assert passed.headers["x-ratelimit-remaining-tokens"] == "1234", (body, answer, passed.headers)
        keyed = post(gateway, "/v1/chat/completions", asked, **{"x-sim-remaining-tokens": "1234", **answer})
        assert keyed.status_code == passed.status_code and "x-ratelimit-remaining-tokens" not in keyed.headers


def test_content_filter_keeps_status_and_code_in_an_openai_body(gateway) -> None:
    response = post(gateway, "/v1/chat/completions", CHAT, **{"x-sim-fail": "content_filter"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "content_filter" and error["param"] == "prompt"
    assert error["type"] == "invalid_request_error"
    assert error["innererror"]["code"] == "ResponsibleAIPolicyViolation"


def test_upstream_5xx_and_html_bodies(gateway) -> None:
    server_error = post(gateway, "/v1/chat/completions", CHAT, **{"x-sim-fail": "500"})
    assert server_error.status_code == 500
    assert set(server_error.json()["error"]) >= {"message", "type", "param", "code"}
    html = post(gateway, "/v1/chat/completions", CHAT, **{"x-sim-fail": "html"})
    assert html.status_code == 502 and html.json()["error"]["message"] == "Upstream returned HTTP 502."


def test_upstream_timeout_is_504(gateway) -> None:
    mark = len(gateway.logs())
    response = post(gateway, "/v1/chat/completions", CHAT, **{"x-sim-delay-ms": "3500"})
    assert response.status_code == 504
    error = response.json()["error"]
    assert error["code"] == "upstream_timeout"
    assert error["message"] == "The upstream for group `eastus` did not answer in time."
    line = access_line(gateway, mark)
    assert line["status"] == 504 and line["group"] == "eastus"  # the group that did not answer


def test_unreachable_upstream_is_502(start_gateway) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    config = f"""
endpoints:
  azureOpenAI:
    groups:
      - group: gone
        apiKey: k
        instanceName: gone
        baseURL: "http://127.0.0.1:{closed_port}"
        deploymentName: d
        version: "2024-10-21"
        models: {{gpt-4o: true}}
gateway:
  allowAnonymous: true
"""
    gateway = start_gateway(config)
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT)
    assert response.status_code == 502
    error = response.json()["error"]
    assert error["code"] == "upstream_unreachable" and str(closed_port) not in error["message"]


def test_client_disconnect_cancels_a_non_streamed_upstream_request(gateway, sim) -> None:
    try:
        post_with_timeout = httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json=CHAT,
            headers={"Authorization": f"Bearer {ALICE}", "x-sim-delay-ms": "1500"},
            timeout=0.3,
        )
        raise AssertionError(f"expected a client timeout, got {post_with_timeout.status_code}")
    except httpx.ReadTimeout:
        pass
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (sim.requests and sim.requests[-1].disconnected):
        time.sleep(0.05)
    assert sim.requests[-1].disconnected
    # The client gave up: the line is written once the gateway has noticed.
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and access_lines(gateway.logs())[-1]["status"] != 499:
        time.sleep(0.05)
    assert access_lines(gateway.logs())[-1]["status"] == 499


def test_pass_through_serverless_group_sends_the_callers_key_both_ways(sim, start_gateway) -> None:
    config = f"""
endpoints:
  azureOpenAI:
    groups:
      - group: maas
        baseURL: "{sim.url}/v1/chat/completions"
        serverless: true
        models: {{mistral-large: true}}
gateway:
  groups: {{maas: {{auth: passthrough}}}}
"""
    gateway = start_gateway(config)
    key = SECRETS["SERVERLESS_KEY"]
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions", json={**CHAT, "model": "mistral-large"}, headers={"api-key": key}
    )
    assert response.status_code == 200, response.text
    assert sim.requests[0].headers["api-key"] == key
    assert sim.requests[0].headers["authorization"] == f"Bearer {key}"
