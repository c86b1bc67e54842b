"""Client-supplied values the gateway echoes (model ids, paths, the group hint, object ids)
are cut to a bounded length in responses and in log lines: a 1 MB model id must not come
back whole, nor fill the log."""

import socket

import httpx
import orjson
import pytest

from tests.support.standard import ALICE, BOB, SECRETS

HUGE = "m" * 1_000_000
# For paths and headers: about as long as httpx sends (64 KB URLs) and the local host reads whole.
LONG = "m" * 60_000
SMALL_BODY = 2_000  # an error body with a few bounded echoes stays well under this
SMALL_LOG = 3_000  # bytes the gateway logs for one refused request

ECHO_CONFIG = """
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
          gpt-4o-mini: {deploymentName: gpt-4o-mini-dep}
          text-embedding-3-small: {deploymentName: embed-dep}
      - group: gone
        apiKey: "${EASTUS_KEY}"
        instanceName: gone-instance
        baseURL: "http://127.0.0.1:${CLOSED_PORT}"
        version: "2024-10-21"
        assistants: true
        models:
          gpt-4.1: {deploymentName: gpt41-dep}
gateway:
  apiKeys:
    - {name: alice, key: "${ALICE_KEY}"}
    - {name: bob, key: "${BOB_KEY}", models: [gpt-4o, gpt-4o-mini], resources: true}
  maxBodyBytes: 4194304
  timeouts: {connect: 2, read: 5}
"""


@pytest.fixture(scope="module")
def echo_gateway(sim, start_gateway_session):
    with socket.socket() as probe:  # a port nothing listens on: the "gone" group never answers
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    return start_gateway_session(ECHO_CONFIG, {**SECRETS, "SIM_URL": sim.url, "CLOSED_PORT": str(closed_port)})


def call(gateway, method: str, path: str, key: str = ALICE, **options) -> httpx.Response:
    """One request; asserts the answer and what the gateway logged for it stay small."""
    logged = len(gateway.logs())
    headers = {"Authorization": f"Bearer {key}", **options.pop("headers", {})}
    response = httpx.request(method, f"{gateway.url}{path}", headers=headers, timeout=30, **options)
    assert_small(gateway, logged, response.status_code, response.content)
    return response


def assert_small(gateway, logged: int, status: int, body: bytes) -> None:
    assert len(body) < SMALL_BODY, body[:300]
    assert "..." in orjson.loads(body)["error"]["message"]  # cut, and visibly so
    growth = len(gateway.logs()) - logged
    assert growth < SMALL_LOG, gateway.logs()[logged : logged + 300]


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/chat/completions", {"model": HUGE, "messages": [{"role": "user", "content": "Hi"}]}),
        ("/v1/embeddings", {"model": HUGE, "input": "a"}),
        ("/v1/threads", {"model": HUGE}),
    ],
)
def test_huge_model_in_a_json_body(echo_gateway, sim, path, body) -> None:
    response = call(echo_gateway, "POST", path, json=body)
    assert response.status_code == 404 and response.json()["error"]["code"] == "model_not_found"
    assert not sim.requests


def test_long_model_in_the_path(echo_gateway) -> None:
    assert call(echo_gateway, "GET", f"/v1/models/{LONG}").status_code == 404
    assert call(echo_gateway, "POST", f"/v1/engines/{LONG}/embeddings", json={"input": "a"}).status_code == 404


def test_huge_model_in_a_form_field(echo_gateway) -> None:
    response = call(
        echo_gateway, "POST", "/v1/audio/transcriptions", data={"model": HUGE}, files={"file": ("a.wav", b"RIFF")}
    )
    assert response.status_code == 404


def test_long_unknown_path(echo_gateway) -> None:
    response = call(echo_gateway, "GET", f"/v1/{LONG}")
    assert response.status_code == 404 and response.json()["error"]["code"] == "unknown_url"


def test_huge_group_hint(echo_gateway) -> None:
    response = call(echo_gateway, "POST", "/v1/threads", json={}, headers={"X-Gateway-Group": "g" * 60_000})
    assert response.status_code == 400 and response.json()["error"]["code"] == "unknown_group"


def test_huge_object_id_is_refused_without_an_echo(echo_gateway, sim) -> None:
    logged = len(echo_gateway.logs())
    response = httpx.get(f"{echo_gateway.url}/v1/assistants/asst_{LONG}", headers={"Authorization": f"Bearer {ALICE}"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_id"
    assert len(response.content) < SMALL_BODY and len(echo_gateway.logs()) - logged < SMALL_LOG
    assert not sim.requests


def test_huge_model_for_an_existing_thread(echo_gateway) -> None:
    thread = httpx.post(f"{echo_gateway.url}/v1/threads", json={}, headers={"Authorization": f"Bearer {ALICE}"}).json()
    run = {"assistant_id": "asst_1", "model": HUGE}
    assert call(echo_gateway, "POST", f"/v1/threads/{thread['id']}/runs", json=run).status_code == 400
    assert call(echo_gateway, "POST", f"/v1/threads/{thread['id']}/runs", key=BOB, json=run).status_code == 404
