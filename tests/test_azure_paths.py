"""Clients written for Azure point at the gateway unchanged: `openai.AzureOpenAI` (Azure's dated paths,
`/openai/deployments/{model}/...` and `/openai/{files,assistants,...}`), and `OpenAI` at Azure's v1 surface
(`/openai/v1/...`). The model goes where Azure has a deployment name; every key restriction applies."""

from __future__ import annotations

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageFunctionToolCall

from tests.support.gateways import Gateway, StartGateway
from tests.support.standard import ALICE, BOB, SECRETS, STANDARD_CONFIG

WEATHER_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
POOLED = STANDARD_CONFIG.replace(
    "  forwardHeaders:",
    "  pools:\n    gpt-4o-pool: {models: [gpt-4o, gpt-4o-mini]}\n  forwardHeaders:",
)


@pytest.fixture(scope="module")
def pooled(sim, start_gateway_session: StartGateway) -> Gateway:
    return start_gateway_session(POOLED, {**SECRETS, "SIM_URL": sim.url})


def azure_client(gateway: Gateway, key: str = ALICE) -> openai.AzureOpenAI:
    # An api-version the gateway never sends on: the group's own goes upstream.
    return openai.AzureOpenAI(azure_endpoint=gateway.url, api_key=key, api_version="2099-01-01", max_retries=0)


def test_azure_openai_chat_stream_embeddings_and_a_tool_call(pooled, sim) -> None:
    client = azure_client(pooled)
    chat = client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hello Azure"}])
    assert chat.choices[0].message.content == "Echo: Hello Azure"
    upstream = sim.requests[-1]
    assert upstream.path == "/openai/deployments/gpt-4o-dep/chat/completions"
    assert upstream.query["api-version"] == "2024-10-21" and upstream.headers["api-key"] == SECRETS["EASTUS_KEY"]

    stream = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "one two"}], stream=True
    )
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == "Echo: one two"

    vectors = client.embeddings.create(model="text-embedding-3-small", input=["a", "b"])
    assert len(vectors.data) == 2 and sim.requests[-1].path == "/openai/deployments/embed-dep/embeddings"

    called = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "get_weather in Oslo"}], tools=[WEATHER_TOOL]
    )
    tool_calls = called.choices[0].message.tool_calls or []
    assert len(tool_calls) == 1 and isinstance(tool_call := tool_calls[0], ChatCompletionMessageFunctionToolCall)
    assert called.choices[0].finish_reason == "tool_calls" and tool_call.function.name == "get_weather"


def test_a_pool_id_in_the_deployment_segment_fails_over_like_on_v1(pooled, sim) -> None:
    client = azure_client(pooled)
    answer = client.chat.completions.with_raw_response.create(
        model="gpt-4o-pool", messages=[{"role": "user", "content": "Hi"}]
    )
    assert answer.http_response.status_code == 200
    member = sim.requests[-1].path  # the two members share a priority: either may serve
    assert member in {f"/openai/deployments/{d}/chat/completions" for d in ("gpt-4o-dep", "gpt-4o-mini-dep")}


def test_the_v1_surface_serves_the_same_routes(pooled) -> None:
    client = openai.OpenAI(base_url=f"{pooled.url}/openai/v1", api_key=ALICE, max_retries=0)
    assert client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "v1"}]).choices
    assert "gpt-4o" in {model.id for model in client.models.list()}
    assert client.models.retrieve("gpt-4o-mini").id == "gpt-4o-mini"


def test_key_restrictions_hold_on_every_mount(pooled) -> None:
    """bob may use gpt-4o-mini only: another model is the same 404 as an unknown one, wherever it is asked."""
    body = {"messages": [{"role": "user", "content": "Hi"}]}
    for path, extra in (
        ("/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21", {}),
        ("/openai/v1/chat/completions", {"model": "gpt-4o"}),
        ("/v1/chat/completions", {"model": "gpt-4o"}),
    ):
        for auth in ({"api-key": BOB}, {"Authorization": f"Bearer {BOB}"}):
            refused = httpx.post(f"{pooled.url}{path}", json={**body, **extra}, headers=auth)
            assert refused.status_code == 404 and refused.json()["error"]["code"] == "model_not_found", path
    allowed = httpx.post(
        f"{pooled.url}/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21",
        json=body,
        headers={"api-key": BOB},
    )
    assert allowed.status_code == 200
    unknown = httpx.post(
        f"{pooled.url}/openai/deployments/no-such-model/chat/completions", json=body, headers={"api-key": ALICE}
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    anonymous = httpx.post(f"{pooled.url}/openai/deployments/gpt-4o/chat/completions", json=body)
    assert anonymous.status_code == 401


def test_an_azure_path_the_gateway_does_not_serve_is_an_openai_404(pooled) -> None:
    for path in ("/openai/deployments/gpt-4o/rerank", "/openai/deployments/gpt-4o", "/openai/unknown"):
        answer = httpx.post(f"{pooled.url}{path}", json={}, headers={"api-key": ALICE})
        assert answer.status_code == 404 and answer.json()["error"]["code"] == "unknown_url", path


RESOURCES_CONFIG = STANDARD_CONFIG.replace("  azureOpenAI:\n", "  azureOpenAI:\n    assistants: true\n", 1).replace(
    "      - group: eastus\n", "      - group: eastus\n        assistants: true\n", 1
)


def test_azure_openai_reaches_the_resource_apis_at_their_azure_paths(sim, start_gateway) -> None:
    gateway = start_gateway(RESOURCES_CONFIG, {**SECRETS, "SIM_URL": sim.url})
    client = azure_client(gateway)
    uploaded = client.files.create(file=("notes.jsonl", b'{"a": 1}\n'), purpose="batch")
    assert sim.requests[-1].path == "/openai/files" and sim.requests[-1].query["api-version"] != "2099-01-01"
    assert uploaded.id in {listed.id for listed in client.files.list()}
    response = client.responses.create(model="gpt-4o", input="Hello responses")
    assert response.output_text == "Echo: Hello responses" and response.model == "gpt-4o"
    assert sim.requests[-1].path == "/openai/responses"
    assert client.responses.retrieve(response.id).id == response.id
    # And at Azure's v1 surface, `/openai/v1/...`.
    v1 = openai.OpenAI(base_url=f"{gateway.url}/openai/v1", api_key=ALICE, max_retries=0)
    assert uploaded.id in {listed.id for listed in v1.files.list()}
    assert v1.responses.retrieve(response.id).id == response.id


def test_litellms_azure_provider(pooled, monkeypatch) -> None:
    """litellm's `azure/` provider, as an app using it would call the gateway: chat and a stream."""
    # litellm reads its model price list from GitHub at import unless told to use the copy it ships.
    monkeypatch.setenv("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm  # imported here: it takes seconds, and only this test needs it

    options = {"api_base": pooled.url, "api_key": ALICE, "api_version": "2024-10-21", "num_retries": 0}
    messages = [{"role": "user", "content": "Hello litellm"}]
    answer = litellm.completion(model="azure/gpt-4o", messages=messages, **options)
    assert answer.choices[0].message.content == "Echo: Hello litellm"
    chunks = litellm.completion(model="azure/gpt-4o", messages=messages, stream=True, **options)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in chunks) == "Echo: Hello litellm"
