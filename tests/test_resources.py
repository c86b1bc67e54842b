"""Resource-scoped calls the gateway answers itself or shapes: lists aggregated over several assistants
groups (cursors, limit, has_more), which group a model's call goes to, and a pool's id on the Responses
API. Two simulators are two Azure regions; the client is httpx, so the exact JSON is checked."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from azure.core.credentials import AccessToken

from azure_sim import AzureSimulator
from tests.support.access_log import access_line
from tests.support.inprocess_gateway import InProcessGateway
from tests.support.json_values import json_object
from tests.support.standard import ALICE

REGION_KEY = "azure-key-resources-7e6d5c4b"
HEADERS = {"Authorization": f"Bearer {ALICE}"}
PREVIEW = "2025-04-01-preview"
RESOURCES_CONFIG = """
endpoints:
  azureOpenAI:
    assistants: true
    groups:
      - group: first
        apiKey: "${REGION_KEY}"
        instanceName: first
        baseURL: "${FIRST_URL}"
        version: "2025-04-01-preview"
        assistants: true
        models:
          model-first: {deploymentName: first-dep}
      - group: second
        apiKey: "${REGION_KEY}"
        instanceName: second
        baseURL: "${SECOND_URL}"
        version: "2025-04-01-preview"
        assistants: true
        models:
          model-second: {deploymentName: second-dep}
      - group: chat-only
        apiKey: "${REGION_KEY}"
        instanceName: first
        baseURL: "${FIRST_URL}"
        version: "2025-04-01-preview"
        models:
          chat-only: {deploymentName: first-dep}
      - group: serverless
        apiKey: "${REGION_KEY}"
        baseURL: "${FIRST_URL}/v1/chat/completions"
        serverless: true
        models:
          serverless-model: true
gateway:
  apiKeys: [{name: alice, key: "${ALICE_KEY}"}]
  forwardHeaders: ["x-sim-*"]
  pools:
    both: {models: [{model: model-first, priority: 1}, {model: model-second, priority: 2}]}
    with-serverless: {models: [{model: model-first}, {model: serverless-model}]}
    second-only: {models: [{model: model-second}]}
    turns-a: {models: [{model: model-first}, {model: model-second}], strategy: round-robin}
    turns-b: {models: [{model: model-first}, {model: model-second}], strategy: round-robin}
"""


@pytest.fixture(scope="module")
def regions() -> Iterator[tuple[AzureSimulator, AzureSimulator]]:
    first = AzureSimulator(name="first", api_keys={REGION_KEY}, deployments={"first-dep"}).start()
    second = AzureSimulator(name="second", api_keys={REGION_KEY}, deployments={"second-dep"}).start()
    yield first, second
    first.stop()
    second.stop()


@pytest.fixture
def first(regions: tuple[AzureSimulator, AzureSimulator]) -> AzureSimulator:
    regions[0].reset()
    return regions[0]


@pytest.fixture
def second(regions: tuple[AzureSimulator, AzureSimulator]) -> AzureSimulator:
    regions[1].reset()
    return regions[1]


@pytest.fixture(scope="module")
def env(regions) -> dict[str, str]:
    first, second = regions
    return {"REGION_KEY": REGION_KEY, "ALICE_KEY": ALICE, "FIRST_URL": first.url, "SECOND_URL": second.url}


@pytest.fixture(scope="module")
def gateway(start_gateway_session, env):
    return start_gateway_session(RESOURCES_CONFIG, env)


def create_assistants(gateway, model: str, count: int) -> list[str]:
    """`count` assistants for `model`, oldest first (a list shows the newest first)."""
    ids = []
    for _ in range(count):
        created = httpx.post(f"{gateway.url}/v1/assistants", json={"model": model}, headers=HEADERS)
        assert created.status_code == 200, created.text
        ids.append(created.json()["id"])
    return ids


def list_assistants(gateway, query: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{gateway.url}/v1/assistants?{query}", headers={**HEADERS, **headers})


def listed(gateway, query: str) -> dict[str, Any]:
    """The list's whole JSON answer, with each item reduced to its id."""
    response = list_assistants(gateway, query)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    answer = response.json()
    return {**answer, "data": [item["id"] for item in answer["data"]]}


def page(first_id: str | None, *ids: str, has_more: bool) -> dict[str, Any]:
    data = [first_id, *ids] if first_id else []
    return {
        "object": "list",
        "data": data,
        "first_id": data[0] if data else None,
        "last_id": data[-1] if data else None,
        "has_more": has_more,
    }


def list_queries(simulator: AzureSimulator) -> list[dict[str, str]]:
    """The query of each list call the region received, less its api-version."""
    return [
        {k: v for k, v in r.query.items() if k != "api-version"}
        for r in simulator.requests
        if (r.method, r.path) == ("GET", "/openai/assistants")
    ]


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return json_object(response.json()["error"])


def test_a_list_fills_its_page_from_each_group_in_turn(gateway, first, second) -> None:
    a1, a2 = create_assistants(gateway, "model-first", 2)
    b1, b2, b3 = create_assistants(gateway, "model-second", 3)

    assert listed(gateway, "limit=3") == page(a2, a1, b3, has_more=True)  # the second group has more
    assert list_queries(first) == [{"limit": "3"}] and list_queries(second) == [{"limit": "1"}]
    assert "content-type" not in second.requests[-1].headers  # a GET has no body

    first.requests.clear()
    second.requests.clear()
    assert listed(gateway, "") == page(a2, a1, b3, b2, b1, has_more=False)  # 20 by default
    assert list_queries(first) == [{"limit": "20"}] and list_queries(second) == [{"limit": "18"}]

    # A page filled exactly by one group: maybe more in the next, which is not asked yet.
    second.requests.clear()
    assert listed(gateway, "limit=2") == page(a2, a1, has_more=True)
    assert list_queries(second) == []
    # Filled exactly by the last group: nothing more anywhere.
    assert listed(gateway, "limit=5") == page(a2, a1, b3, b2, b1, has_more=False)


def test_cursors_page_on_from_the_group_holding_them(gateway, first, second) -> None:
    a1, a2 = create_assistants(gateway, "model-first", 2)
    b1, b2, b3 = create_assistants(gateway, "model-second", 3)
    first.requests.clear()
    second.requests.clear()

    # `after` in the first group: the rest of it, then the next groups from their start.
    assert listed(gateway, f"limit=3&after={a2}") == page(a1, b3, b2, has_more=True)
    assert list_queries(first) == [{"limit": "3", "after": a2}]
    assert list_queries(second) == [{"limit": "2"}]

    # `after` in the second group: the first is not listed again.
    first.requests.clear()
    second.requests.clear()
    assert listed(gateway, f"limit=3&after={b3}") == page(b2, b1, has_more=False)
    assert list_queries(first) == [] and list_queries(second) == [{"limit": "3", "after": b3}]

    # `before` pages backwards within the cursor's group only.
    assert listed(gateway, f"before={b1}") == page(b3, b2, has_more=False)
    assert listed(gateway, f"before={a1}") == page(a2, has_more=False)
    assert list_queries(first) == [{"limit": "20", "before": a1}]


def test_an_empty_list_has_no_first_or_last_id(gateway, first, second) -> None:
    assert listed(gateway, "") == page(None, has_more=False)


@pytest.mark.parametrize("cursor", ["after", "before"])
def test_a_gateway_that_never_saw_a_cursor_asks_each_group_and_remembers_what_it_lists(
    gateway, start_gateway, env, first, second, cursor: str
) -> None:
    a1, a2 = create_assistants(gateway, "model-first", 2)
    b1, b2, b3 = create_assistants(gateway, "model-second", 3)
    fresh = start_gateway(RESOURCES_CONFIG, env)  # knows none of these ids
    first.requests.clear()
    second.requests.clear()

    if cursor == "after":
        cursor_id, expected = b3, page(b2, b1, has_more=False)
    else:  # before: within the cursor's group only
        cursor_id, expected = b1, page(b3, b2, has_more=False)
    assert listed(fresh, f"limit=3&{cursor}={cursor_id}") == expected
    probe = ("GET", f"/openai/assistants/{cursor_id}")
    assert [(r.method, r.path) for r in first.requests] == [probe]  # not here
    assert [(r.method, r.path) for r in second.requests] == [probe, ("GET", "/openai/assistants")]

    assert listed(fresh, "") == page(a2, a1, b3, b2, b1, has_more=False)
    first.requests.clear()
    second.requests.clear()
    for listed_id in (a1, b2):
        assert httpx.get(f"{fresh.url}/v1/assistants/{listed_id}", headers=HEADERS).json()["id"] == listed_id
    assert len(first.requests) == len(second.requests) == 1  # listed, so known: nothing probed


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "2.5", ""])
def test_a_limit_out_of_range_is_a_400_naming_it(gateway, first, second, limit: str) -> None:
    error = error_of(list_assistants(gateway, f"limit={limit}"), 400)
    assert error == {
        "message": "limit must be an integer from 1 to 100.",
        "type": "invalid_request_error",
        "param": "limit",
        "code": "invalid_limit",
    }
    assert first.requests == [] and second.requests == []


def test_the_limits_bounds_are_allowed(gateway, first, second) -> None:
    a1, a2 = create_assistants(gateway, "model-first", 2)
    assert listed(gateway, "limit=1") == page(a2, has_more=True)
    assert listed(gateway, "limit=100") == page(a2, a1, has_more=False)


def test_a_list_logs_the_last_group_it_asked(gateway, first, second) -> None:
    create_assistants(gateway, "model-first", 1)
    create_assistants(gateway, "model-second", 1)
    response = list_assistants(gateway, "limit=2")
    assert response.status_code == 200
    assert access_line(gateway, response.headers["x-request-id"])["group"] == "second"


def test_an_upstream_error_on_a_list_is_relayed(gateway, first, second) -> None:
    create_assistants(gateway, "model-second", 1)
    response = list_assistants(gateway, "order=sideways")
    error = error_of(response, 400)
    assert error["message"] == "Invalid 'order': must be one of 'asc', 'desc'." and error["param"] == "order"
    assert access_line(gateway, response.headers["x-request-id"])["group"] == "first"
    assert list_queries(second) == []  # the first group's error ends the list


@pytest.mark.parametrize(
    ("fail", "what"),
    [
        ("bad_list", "answered with a list whose data is not a list of objects"),
        ("invalid_json", "answered with a body that is not a JSON object"),
        ("302", "answered with HTTP redirect 302, which the gateway does not relay"),
    ],
)
def test_a_list_page_no_client_could_use_is_a_502_naming_the_group(gateway, first, second, fail, what) -> None:
    error = error_of(list_assistants(gateway, "", **{"x-sim-fail": fail}), 502)
    assert error == {
        "message": f"The upstream for group `first` {what}.",
        "type": "api_error",
        "param": None,
        "code": "upstream_bad_response",
    }


@pytest.mark.parametrize(
    ("fail", "what"),
    [
        ("invalid_json", "answered with a body that is not a JSON object"),
        ("302", "answered with HTTP redirect 302, which the gateway does not relay"),
    ],
)
def test_a_resource_answer_no_client_could_use_is_a_502_naming_the_group(gateway, first, second, fail, what) -> None:
    created = httpx.post(
        f"{gateway.url}/v1/threads", json={}, headers={**HEADERS, "x-gateway-group": "second", "x-sim-fail": fail}
    )
    assert error_of(created, 502) == {
        "message": f"The upstream for group `second` {what}.",
        "type": "api_error",
        "param": None,
        "code": "upstream_bad_response",
    }


@pytest.mark.parametrize(
    ("path", "body", "what"),
    [
        ("/v1/assistants", {"model": "chat-only"}, "assistants"),
        ("/v1/responses", {"model": "serverless-model", "input": "hi"}, "the Responses API"),
        ("/v1/responses", {"model": "with-serverless", "input": "hi"}, "the Responses API"),  # a pool
        ("/v1/assistants", {"model": "both"}, "assistants"),  # a pool's id serves only chat and responses
    ],
)
def test_a_model_no_group_here_serves_is_a_400_saying_so(gateway, first, second, path, body, what) -> None:
    error = error_of(httpx.post(f"{gateway.url}{path}", json=body, headers=HEADERS), 400)
    assert error == {
        "message": f"The model `{body['model']}` is not enabled for {what} on this gateway.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_available",
    }
    assert first.requests == [] and second.requests == []


@pytest.mark.parametrize("model", ["model-second", "second-only"])  # its own id, or a pool's
def test_a_run_with_a_model_not_in_its_threads_group_is_a_400(gateway, first, second, model) -> None:
    thread = httpx.post(f"{gateway.url}/v1/threads", json={}, headers={**HEADERS, "x-gateway-group": "first"}).json()
    (assistant,) = create_assistants(gateway, "model-first", 1)
    first.requests.clear()
    run = httpx.post(
        f"{gateway.url}/v1/threads/{thread['id']}/runs",
        json={"assistant_id": assistant, "model": model},
        headers=HEADERS,
    )
    assert error_of(run, 400) == {
        "message": f"The model `{model}` is not deployed in group `first`, where this object lives.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_available",
    }
    assert first.requests == [] and second.requests == []


def respond(gateway, model: str, query: str = "", **headers: str) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/responses{query}", json={"model": model, "input": "Hi pool"}, headers={**HEADERS, **headers}
    )


def responses_created(simulator: AzureSimulator) -> list[Any]:
    return [r for r in simulator.requests if (r.method, r.path) == ("POST", "/openai/responses")]


def test_a_pools_response_goes_to_its_members_group_with_the_clients_query(gateway, first, second) -> None:
    response = respond(gateway, "both", "?trace=on")
    assert response.status_code == 200, response.text
    assert response.json()["model"] == "both" and response.json()["output"][0]["content"][0]["text"] == "Echo: Hi pool"
    (sent,) = responses_created(first)
    assert sent.query == {"trace": "on", "api-version": PREVIEW} and sent.json["model"] == "first-dep"
    assert access_line(gateway, response.headers["x-request-id"])["member"] == "model-first"


def test_a_response_continuing_another_follows_it_whatever_the_pool_would_pick(gateway, first, second) -> None:
    earlier = respond(gateway, "model-second")
    body = {"model": "both", "input": "More", "previous_response_id": earlier.json()["id"]}
    continued = httpx.post(f"{gateway.url}/v1/responses", json=body, headers=HEADERS)
    assert continued.status_code == 200, continued.text
    assert continued.json()["model"] == "both"  # the id the client sent
    assert responses_created(first) == [] and len(responses_created(second)) == 2
    assert responses_created(second)[-1].json["model"] == "second-dep"  # the pool's member in that group


def test_a_pools_answer_no_client_could_use_is_a_502_naming_the_members_group(gateway, first, second) -> None:
    error = error_of(respond(gateway, "both", **{"x-sim-fail": "302"}), 502)
    assert error["message"] == (
        "The upstream for group `first` answered with HTTP redirect 302, which the gateway does not relay."
    )


def test_each_pool_keeps_its_own_round_robin_turns_on_the_responses_api(gateway, first, second) -> None:
    members = []
    for model in ("turns-a", "turns-b", "turns-a", "turns-b"):
        response = respond(gateway, model)
        assert response.status_code == 200
        members.append(access_line(gateway, response.headers["x-request-id"])["member"])
    # Each pool starts with its first member, then takes the next.
    assert members == ["model-first", "model-first", "model-second", "model-second"]


def test_a_client_that_gives_up_on_a_pools_response_cancels_it_upstream(gateway, first, second) -> None:
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(
            f"{gateway.url}/v1/responses",
            json={"model": "both", "input": "slow"},
            headers={**HEADERS, "x-sim-delay-ms": "2000"},
            timeout=0.3,
        )
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (first.requests[-1].disconnected or first.requests[-1].completed):
        time.sleep(0.05)
    assert first.requests[-1].disconnected and not first.requests[-1].completed


def test_a_client_that_gives_up_on_a_resource_call_cancels_it_upstream(gateway, first, second) -> None:
    with pytest.raises(httpx.ReadTimeout):
        httpx.post(f"{gateway.url}/v1/threads", json={}, headers={**HEADERS, "x-sim-delay-ms": "2000"}, timeout=0.3)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (first.requests[-1].disconnected or first.requests[-1].completed):
        time.sleep(0.05)
    assert first.requests[-1].disconnected and not first.requests[-1].completed


def test_an_upload_sent_slowly_reaches_its_group_whole(gateway, first, second) -> None:
    """A file streamed upstream as it arrives, in pieces far apart, reaches its group whole."""
    boundary = "resources-test-boundary"
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="slow.txt"\r\n'
        "Content-Type: text/plain\r\n\r\n"
    ).encode()
    content = bytes(range(256)) * 1024

    tail = f"\r\n--{boundary}--\r\n".encode()

    def body() -> Iterator[bytes]:
        yield head
        for start in range(0, len(content), 65536):
            time.sleep(0.1)  # longer than the disconnect watch's grace period
            yield content[start : start + 65536]
        yield tail

    # With its length declared, the file streams upstream as it arrives.
    length = str(len(head) + len(content) + len(tail))
    headers = {**HEADERS, "content-type": f"multipart/form-data; boundary={boundary}", "content-length": length}
    uploaded = httpx.post(f"{gateway.url}/v1/files", content=body(), headers=headers, timeout=10)
    assert uploaded.status_code == 200, uploaded.text
    assert uploaded.json()["bytes"] == len(content)
    (received,) = [r for r in first.requests if r.method == "POST"]
    assert (received.upload_bytes, received.upload_sha256) == (len(content), hashlib.sha256(content).hexdigest())


def test_an_upload_its_upstream_reads_late_reaches_it_whole(gateway, first, second) -> None:
    """While the upstream leaves the file unread, what the client sends backs up in the gateway: nothing but the
    upload may take it from there (the disconnect watch, if it ran, would swallow pieces of the file)."""
    boundary = "late-reader-boundary"
    content = bytes(range(256)) * 32 * 1024  # 8 MiB: more than the sockets between gateway and upstream hold
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nassistants\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="late.bin"\r\n\r\n'
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    headers = {**HEADERS, "content-type": f"multipart/form-data; boundary={boundary}", "x-sim-read-delay-ms": "1000"}
    uploaded = httpx.post(f"{gateway.url}/v1/files", content=body, headers=headers, timeout=15)
    assert uploaded.status_code == 200, uploaded.text
    (received,) = [r for r in first.requests if r.method == "POST"]
    assert (received.upload_bytes, received.upload_sha256) == (len(content), hashlib.sha256(content).hexdigest())


def test_resource_calls_pooled_listed_or_plain_end_at_the_total_timeout(start_gateway, env, first, second) -> None:
    timeouts = "  timeouts: {total: 0.5, read: 10}\n"  # the pool's own budget is longer: the total ends the call
    pool = "    slow: {models: [{model: model-first}], timeBudget: 30}\n"
    slow = start_gateway(RESOURCES_CONFIG.replace("  pools:\n", timeouts + "  pools:\n" + pool), env)
    delayed = {"x-sim-delay-ms": "2500"}
    thread = httpx.post(f"{slow.url}/v1/threads", json={}, headers={**HEADERS, **delayed})
    for response in (respond(slow, "slow", **delayed), list_assistants(slow, "", **delayed), thread):
        assert error_of(response, 504) == {
            "message": "The upstream for group `first` did not answer in time.",
            "type": "api_error",
            "param": None,
            "code": "upstream_timeout",
        }


# Two assistants groups with no key of their own: the caller's key goes along when they are passthrough groups
# (PASSTHROUGH), or the app's token when a test makes them Entra ID groups.
KEYLESS_CONFIG = """
endpoints:
  azureOpenAI:
    assistants: true
    groups:
      - {group: first, instanceName: first, baseURL: "${FIRST_URL}", version: "2025-04-01-preview", assistants: true,
         models: {model-first: {deploymentName: first-dep}}}
      - {group: second, instanceName: second, baseURL: "${SECOND_URL}", version: "2025-04-01-preview",
         assistants: true, models: {model-second: {deploymentName: second-dep}}}
"""
PASSTHROUGH = "gateway:\n  groups: {first: {auth: passthrough}, second: {auth: passthrough}}\n"


class RegionKeyCredential:
    """An Entra ID credential whose token is one the simulators take, as Azure takes a valid token."""

    def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
        return AccessToken(REGION_KEY, int(time.time() + 3600))


def assistant_in(simulator: AzureSimulator) -> str:
    """An assistant made in the region itself, so no gateway knows where it lives."""
    created = httpx.post(
        f"{simulator.url}/openai/assistants",
        params={"api-version": PREVIEW},
        json={"model": "second-dep"},
        headers={"api-key": REGION_KEY},
    )
    assert created.status_code == 200, created.text
    return str(created.json()["id"])


def test_a_passthrough_groups_probe_carries_the_callers_key(start_gateway, env, first, second) -> None:
    gateway = start_gateway(KEYLESS_CONFIG + PASSTHROUGH, env)
    assistant = assistant_in(second)
    retrieved = httpx.get(f"{gateway.url}/v1/assistants/{assistant}", headers={"Authorization": f"Bearer {REGION_KEY}"})
    assert retrieved.status_code == 200 and retrieved.json()["id"] == assistant
    (probe,) = first.requests
    assert (probe.path, probe.headers["api-key"]) == (f"/openai/assistants/{assistant}", REGION_KEY)


def test_an_entra_groups_probe_carries_the_token(env, first, second) -> None:
    config = KEYLESS_CONFIG + 'gateway:\n  apiKeys: [{name: alice, key: "${ALICE_KEY}"}]\n'
    config += "  groups: {first: {auth: entra}, second: {auth: entra}}\n"
    assistant = assistant_in(second)
    with InProcessGateway({**env, "CONFIG_YAML": config}, credential=RegionKeyCredential()) as gateway:
        retrieved = httpx.get(f"{gateway.url}/v1/assistants/{assistant}", headers=HEADERS)
    assert retrieved.status_code == 200 and retrieved.json()["id"] == assistant
    (probe,) = first.requests
    assert (probe.path, probe.headers["authorization"]) == (f"/openai/assistants/{assistant}", f"Bearer {REGION_KEY}")
    assert "api-key" not in probe.headers


def test_a_resource_calls_access_line_names_its_model_group_and_stream(gateway, first, second) -> None:
    created = httpx.post(f"{gateway.url}/v1/assistants", json={"model": "model-first"}, headers=HEADERS)
    line = access_line(gateway, created.headers["x-request-id"])
    assert (line["model"], line["group"], line["stream"]) == ("model-first", "first", False)
    body = {"model": "model-second", "input": "Hi", "stream": True}
    with httpx.stream("POST", f"{gateway.url}/v1/responses", json=body, headers=HEADERS) as streamed:
        assert b"response.completed" in streamed.read()
    deadline = time.monotonic() + 5  # a stream writes its line as it ends
    while time.monotonic() < deadline and streamed.headers["x-request-id"] not in gateway.logs():
        time.sleep(0.05)
    line = access_line(gateway, streamed.headers["x-request-id"])
    assert (line["model"], line["group"], line["stream"]) == ("model-second", "second", True)


def test_apis_no_group_can_serve_are_a_404_saying_what_to_configure(start_gateway, env, first) -> None:
    only_serverless = """
endpoints:
  azureOpenAI:
    groups:
      - {group: serverless, apiKey: "${REGION_KEY}", baseURL: "${FIRST_URL}/v1/chat/completions", serverless: true,
         models: {serverless-model: true}}
gateway:
  apiKeys: [{name: alice, key: "${ALICE_KEY}"}]
"""
    gateway = start_gateway(only_serverless, env)
    responses = httpx.post(f"{gateway.url}/v1/responses", json={"model": "serverless-model"}, headers=HEADERS)
    assert error_of(responses, 404) == {
        "message": "No group on this gateway can serve the Responses API (serverless groups do not).",
        "type": "invalid_request_error",
        "param": None,
        "code": "not_configured",
    }
    assert error_of(list_assistants(gateway, ""), 404) == {
        "message": "The assistants, files and batches APIs are not enabled on this gateway: "
        "set `assistants: true` on the azureOpenAI endpoint and on at least one group.",
        "type": "invalid_request_error",
        "param": None,
        "code": "not_configured",
    }
    assert first.requests == []


def test_a_new_thread_or_vector_store_goes_to_the_group_holding_what_it_is_built_from(
    gateway, start_gateway, env, first, second
) -> None:
    store_file, code_file = (
        httpx.post(
            f"{gateway.url}/v1/files",
            headers={**HEADERS, "x-gateway-group": "second"},
            files={"file": (name, b"fjords")},
            data={"purpose": "assistants"},
        ).json()["id"]
        for name in ("store.txt", "code.txt")
    )
    store = httpx.post(f"{gateway.url}/v1/vector_stores", json={"file_ids": [store_file]}, headers=HEADERS).json()
    fresh = start_gateway(RESOURCES_CONFIG, env)  # must ask where each file and the store live
    second.requests.clear()
    bodies: list[dict[str, Any]] = [
        {"file_ids": [store_file]},  # a vector store from a file
        {"tool_resources": {"code_interpreter": None, "file_search": {"vector_store_ids": [store["id"]]}}},  # a thread
        {"tool_resources": {"code_interpreter": {"file_ids": [code_file]}, "file_search": {}}},
    ]
    for path, body in zip(("vector_stores", "threads", "threads"), bodies, strict=True):
        created = httpx.post(f"{fresh.url}/v1/{path}", json=body, headers=HEADERS)
        assert created.status_code == 200, created.text
        assert [(r.method, r.path) for r in second.requests][-1] == ("POST", f"/openai/{path}")
    assert [r for r in first.requests if r.method == "POST"] == []


def test_a_call_naming_an_object_in_its_body_goes_to_that_objects_group(
    gateway, start_gateway, env, first, second
) -> None:
    (assistant,) = create_assistants(gateway, "model-second", 1)
    lines = b'{"custom_id":"1","method":"POST","url":"/chat/completions","body":{"model":"second-dep","messages":[]}}\n'
    upload = {"file": ("batch.jsonl", lines)}
    hinted = {**HEADERS, "x-gateway-group": "second"}
    batch_file = httpx.post(f"{gateway.url}/v1/files", headers=hinted, files=upload, data={"purpose": "batch"})
    earlier = httpx.post(f"{gateway.url}/v1/responses", json={"model": "model-second", "input": "Hi"}, headers=HEADERS)
    fresh = start_gateway(RESOURCES_CONFIG, env)  # must ask where each object lives
    second.requests.clear()
    calls = [
        ("threads/runs", {"assistant_id": assistant}),
        (
            "batches",
            {"input_file_id": batch_file.json()["id"], "endpoint": "/v1/chat/completions", "completion_window": "24h"},
        ),
        ("responses", {"model": "model-second", "input": "More", "previous_response_id": earlier.json()["id"]}),
    ]
    for path, body in calls:
        created = httpx.post(f"{fresh.url}/v1/{path}", json=body, headers=HEADERS)
        assert created.status_code == 200, created.text
        sent = second.requests[-1]
        assert (sent.method, sent.path, sent.headers["content-type"]) == ("POST", f"/openai/{path}", "application/json")
    probes = [r for r in second.requests if r.method == "GET"]
    assert probes and all("content-type" not in r.headers for r in probes)
    assert [r for r in first.requests if r.method == "POST"] == []


def test_a_group_hint_naming_no_assistants_group_is_a_400(gateway, first, second) -> None:
    for hint in ("atlantis", "chat-only"):
        created = httpx.post(f"{gateway.url}/v1/threads", json={}, headers={**HEADERS, "x-gateway-group": hint})
        assert error_of(created, 400) == {
            "message": f"No assistants group named `{hint}`.",
            "type": "invalid_request_error",
            "param": "x-gateway-group",
            "code": "unknown_group",
        }
    assert first.requests == [] and second.requests == []


@pytest.mark.parametrize("cursor", ["after", "before"])
def test_a_malformed_list_cursor_is_a_400_naming_it_before_any_group_is_asked(gateway, first, second, cursor) -> None:
    assert error_of(list_assistants(gateway, f"{cursor}=not%2Fan%2Fid"), 400) == {
        "message": "Invalid object id: ids are 1 to 128 letters, digits, `_` or `-`, starting with a letter or digit.",
        "type": "invalid_request_error",
        "param": cursor,
        "code": "invalid_id",
    }
    assert first.requests == [] and second.requests == []


def test_a_resource_calls_access_line_names_its_api_by_the_paths_first_segment(gateway, first, second) -> None:
    for path in ("/v1/threads/thread_abc/messages", "/openai/threads/thread_abc/runs/run_abc"):
        response = httpx.get(f"{gateway.url}{path}", headers=HEADERS)
        assert access_line(gateway, response.headers["x-request-id"])["operation"] == "threads", path
