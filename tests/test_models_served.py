"""Chat completions reach the model behind each deployment as it takes them (core/models/ through the gateway):
a reasoning model's requests fitted up front, an unknown model's repaired as Azure teaches and remembered, and a
Responses-only model's served through its resource's Responses API. The upstream is the simulator playing each
deployment's model over a real socket; the client is the official openai SDK."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest
from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from openai.types.chat import ChatCompletionFunctionToolParam, ChatCompletionMessageFunctionToolCall
from pydantic import BaseModel

from azure_sim import AzureSimulator
from tests.support.access_log import access_line
from tests.support.gateways import Gateway, StartGateway
from tests.support.json_values import json_object

AZURE_KEY = "azure-key-models-0123456789"
CALLER = "gw-key-models-abcdef"
MODELS = {  # deployment -> the model the simulator runs behind it
    "mini-dep": "gpt-5-mini",
    "house-dep": "o4-mini",
    "codex-dep": "gpt-5-codex",
    "agent-dep": "gpt-5.1-codex",
    "raw-dep": "o4-mini",
    "v1-codex-dep": "gpt-5-codex",
}
CONFIG = """
endpoints:
  azureOpenAI:
    groups:
      - group: east
        apiKey: "${AZURE_KEY}"
        instanceName: east
        baseURL: "${SIM_URL}"
        version: "2024-10-21"
        models:
          gpt-5-mini: {deploymentName: mini-dep}
          house-model: {deploymentName: house-dep}
          codex: {deploymentName: codex-dep, baseModel: gpt-5-codex}
          mystery-agent: {deploymentName: agent-dep}
          raw: {deploymentName: raw-dep, fitToModel: false}
      - group: fresh
        apiKey: "${AZURE_KEY}"
        instanceName: fresh
        baseURL: "${SIM_URL}"
        version: "2024-10-21"
        models:
          gpt-5-codex: {deploymentName: v1-codex-dep}
gateway:
  apiKeys:
    - {name: alice, key: "${CALLER_KEY}"}
  groups:
    fresh: {api: v1}
  forwardHeaders: ["x-sim-*"]  # the tests steer the simulator through the gateway
"""
HELLO: list[Any] = [{"role": "user", "content": "Hello"}]
WEATHER: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


@pytest.fixture(scope="module")
def upstream() -> Iterator[AzureSimulator]:
    with AzureSimulator(api_keys={AZURE_KEY}, models=MODELS) as simulator:
        yield simulator


@pytest.fixture(scope="module")
def gateway(upstream: AzureSimulator, start_gateway_session: StartGateway) -> Gateway:
    return start_gateway_session(CONFIG, {"AZURE_KEY": AZURE_KEY, "CALLER_KEY": CALLER, "SIM_URL": upstream.url})


@pytest.fixture
def sim(upstream: AzureSimulator) -> AzureSimulator:
    upstream.reset()
    return upstream


@pytest.fixture
def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=CALLER, max_retries=0)


def test_a_reasoning_model_gets_its_request_fitted_in_one_upstream_call(gateway, sim, client) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="gpt-5-mini", messages=HELLO, max_tokens=50, temperature=0.3, top_p=1
    )
    answer = raw.parse()
    assert answer.choices[0].message.content == "Echo: Hello" and answer.model == "gpt-5-mini-2025-08-07"
    (sent,) = sim.requests
    assert sent.path == "/openai/deployments/mini-dep/chat/completions"
    # max_tokens renamed, the non-default temperature left out, the default top_p kept: Azure takes it.
    assert {name: sent.json.get(name) for name in ("max_tokens", "max_completion_tokens", "temperature", "top_p")} == {
        "max_tokens": None,
        "max_completion_tokens": 50,
        "temperature": None,
        "top_p": 1,
    }
    assert raw.headers["x-gateway-adjusted"] == "max_tokens->max_completion_tokens, -temperature"
    line = access_line(gateway, raw.headers["x-request-id"])
    assert line["adjusted"] == ["max_tokens->max_completion_tokens", "-temperature"]
    usage = answer.usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert line["reasoning_tokens"] == usage.completion_tokens_details.reasoning_tokens > 0


def test_a_request_that_needs_no_fitting_goes_as_it_came(sim, client) -> None:
    raw = client.chat.completions.with_raw_response.create(model="gpt-5-mini", messages=HELLO, max_completion_tokens=9)
    assert raw.http_response.status_code == 200 and "x-gateway-adjusted" not in raw.headers
    assert sim.requests[-1].json == {"model": "gpt-5-mini", "messages": HELLO, "max_completion_tokens": 9}


def test_a_developer_message_reaches_a_group_whose_api_version_predates_it_as_a_system_message(sim, client) -> None:
    messages: list[Any] = [{"role": "developer", "content": "Be brief."}, *HELLO]
    raw = client.chat.completions.with_raw_response.create(model="gpt-5-mini", messages=messages)
    assert raw.parse().choices[0].message.content == "Echo: Hello"
    (sent,) = sim.requests
    assert sent.query["api-version"] == "2024-10-21" and sent.json["messages"][0]["role"] == "system"
    assert raw.headers["x-gateway-adjusted"] == "developer->system"
    # Unfitted, Azure's own answer: the version knows no developer role.
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="raw", messages=messages)
    assert json_object(refused.value.body)["param"] == "messages[0].role"


def test_an_unknown_model_is_repaired_as_azure_teaches_and_the_repair_is_remembered(gateway, sim, client) -> None:
    asked: dict[str, Any] = {"temperature": 0.3, "top_p": 0.5, "max_tokens": 20}
    raw = client.chat.completions.with_raw_response.create(model="house-model", messages=HELLO, **asked)
    assert raw.parse().choices[0].message.content == "Echo: Hello"
    # Azure names one refused parameter at a time: each is repaired and the call sent again.
    assert [sorted(set(asked) & set(request.json)) for request in sim.requests] == [
        ["max_tokens", "temperature", "top_p"],
        ["max_tokens", "top_p"],
        ["max_tokens"],
        [],
    ]
    assert sim.requests[-1].json["max_completion_tokens"] == 20
    assert raw.headers["x-gateway-adjusted"] == "max_tokens->max_completion_tokens, -temperature, -top_p"
    assert access_line(gateway, raw.headers["x-request-id"])["status"] == 200

    sim.reset()
    again = client.chat.completions.with_raw_response.create(model="house-model", messages=HELLO, **asked)
    assert again.http_response.status_code == 200
    assert len(sim.requests) == 1  # remembered: the next call goes fitted, once


def test_a_model_the_operator_keeps_unfitted_gets_azures_refusal(sim, client) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        client.chat.completions.create(model="raw", messages=HELLO, temperature=0.3)
    error = json_object(refused.value.body)
    assert error["code"] == "unsupported_value" and error["param"] == "temperature"
    assert len(sim.requests) == 1  # fitToModel: false: sent as it came, never repaired


def test_a_responses_only_model_answers_chat_completions_through_its_resources_responses_api(sim, client) -> None:
    raw = client.chat.completions.with_raw_response.create(
        model="codex", messages=[{"role": "system", "content": "Be brief."}, *HELLO], max_tokens=30, temperature=0.5
    )
    answer = raw.parse()
    assert answer.object == "chat.completion" and answer.choices[0].message.content == "Echo: Hello"
    assert answer.choices[0].finish_reason == "stop"
    usage = answer.usage
    assert usage is not None and usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens
    (sent,) = sim.requests  # known from the table: no chat completion is tried first
    assert sent.path == "/openai/responses" and sent.query["api-version"] >= "2025-03-01-preview"
    assert sent.json == {
        "model": "codex-dep",
        "input": [
            {"type": "message", "role": "system", "content": "Be brief."},
            {"type": "message", "role": "user", "content": "Hello"},
        ],
        "max_output_tokens": 30,
        "store": False,
    }
    assert raw.headers["x-gateway-adjusted"] == (
        "chat/completions->responses, max_tokens->max_completion_tokens, -temperature"
    )


def test_the_bridge_streams_chat_chunks_and_tool_calls(sim, client) -> None:
    stream = client.chat.completions.create(
        model="codex", messages=HELLO, stream=True, stream_options={"include_usage": True}
    )
    chunks = list(stream)
    assert {chunk.object for chunk in chunks} == {"chat.completion.chunk"}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: Hello"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None and chunks[-1].usage.total_tokens > 0
    assert sim.requests[-1].json["stream"] is True

    called = client.chat.completions.create(
        model="codex", messages=[{"role": "user", "content": "get_weather in Oslo"}], tools=[WEATHER]
    )
    (call,) = called.choices[0].message.tool_calls or []
    assert isinstance(call, ChatCompletionMessageFunctionToolCall) and call.function.name == "get_weather"
    assert called.choices[0].finish_reason == "tool_calls"
    # The tool's answer goes back as chat sends it; the bridge pairs it with the call for the Responses API.
    followed = client.chat.completions.create(
        model="codex",
        messages=[
            {"role": "user", "content": "get_weather in Oslo"},
            {"role": "assistant", "tool_calls": [call.model_dump()]},
            {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
        ],
        tools=[WEATHER],
    )
    assert followed.choices[0].message.content == "Echo: get_weather in Oslo"


def test_a_deployment_that_refuses_chat_completions_is_asked_again_through_the_bridge(gateway, sim, client) -> None:
    raw = client.chat.completions.with_raw_response.create(model="mystery-agent", messages=HELLO)
    assert raw.parse().choices[0].message.content == "Echo: Hello"
    assert [request.path for request in sim.requests] == [
        "/openai/deployments/agent-dep/chat/completions",  # OperationNotSupported: nothing generated
        "/openai/responses",
    ]
    assert raw.headers["x-gateway-adjusted"] == "chat/completions->responses"

    sim.reset()
    streamed = client.chat.completions.create(model="mystery-agent", messages=HELLO, stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in streamed if c.choices) == "Echo: Hello"
    assert [request.path for request in sim.requests] == ["/openai/responses"]  # remembered


def test_a_v1_group_asks_the_v1_responses_api(sim, client) -> None:
    answer = client.chat.completions.create(model="gpt-5-codex", messages=HELLO)
    assert answer.choices[0].message.content == "Echo: Hello"
    sent = sim.requests[-1]
    assert sent.path == "/openai/v1/responses" and "api-version" not in sent.query
    assert sent.json["model"] == "v1-codex-dep"


def test_what_the_bridge_cannot_express_is_refused_before_anything_is_sent(sim, client) -> None:
    asked_for: list[dict[str, Any]] = [{"n": 2}, {"stop": ["\n"]}, {"prediction": {"type": "content", "content": "x"}}]
    for asked in asked_for:
        with pytest.raises(openai.BadRequestError) as refused:
            client.chat.completions.create(model="codex", messages=HELLO, **asked)
        error = json_object(refused.value.body)
        assert error["code"] == "unsupported_by_bridge" and error["param"] == next(iter(asked))
    assert sim.requests == []


def test_azures_own_client_reaches_the_bridge_by_deployment_path(gateway, sim) -> None:
    client = openai.AzureOpenAI(azure_endpoint=gateway.url, api_key=CALLER, api_version="2099-01-01", max_retries=0)
    answer = client.chat.completions.create(model="codex", messages=HELLO)
    assert answer.choices[0].message.content == "Echo: Hello" and sim.requests[-1].path == "/openai/responses"


def test_a_bridged_stream_that_the_upstream_cuts_ends_with_the_relays_error_event(gateway, sim) -> None:
    body = {"model": "codex", "messages": HELLO, "stream": True}
    headers = {"authorization": f"Bearer {CALLER}", "x-sim-fail": "abort"}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, headers=headers, timeout=10) as r:
        assert r.status_code == 200
        events = [json_object(orjson.loads(line[6:])) for line in r.iter_lines() if line.startswith("data: {")]
        request_id = r.headers["x-request-id"]
    assert events[0]["object"] == "chat.completion.chunk"  # what came before the cut reached the client
    # No response.completed: the client is told, never left with a stream that only looks finished.
    assert events[-1]["error"]["code"] == "upstream_closed_connection"
    line = access_line(gateway, request_id)
    assert line["error_code"] == "upstream_closed_connection" and line["adjusted"] == ["chat/completions->responses"]


class Forecast(BaseModel):
    city: str
    answer: str


def test_an_openai_agents_sdk_agent_runs_its_tools_through_the_gateway(gateway, sim) -> None:
    # The Agents SDK's default: the Responses API, function tools, the conversation's items sent back each turn.
    set_tracing_disabled(True)  # its traces would go to api.openai.com
    ran: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The weather in a city."""
        ran.append(city)
        return "sunny"

    async def run() -> tuple[Any, Any]:
        async with openai.AsyncOpenAI(base_url=f"{gateway.url}/v1", api_key=CALLER, max_retries=0) as client:
            model = OpenAIResponsesModel(model="codex", openai_client=client)
            tools = Agent(name="forecaster", instructions="Answer briefly.", tools=[get_weather], model=model)
            answered = await Runner.run(tools, "get_weather in Oslo")
            structured = Agent(name="structured", instructions="Answer in JSON.", output_type=Forecast, model=model)
            return answered.final_output, (await Runner.run(structured, "Oslo?")).final_output

    answer, forecast = asyncio.run(run())
    assert len(ran) == 1 and answer == "Echo: get_weather in Oslo"
    paths = [request.path for request in sim.requests]
    assert paths == ["/openai/responses"] * 3  # the tool's turn, the answer's, the structured one
    outputs = [item for item in sim.requests[1].json["input"] if item.get("type") == "function_call_output"]
    assert [item["output"] for item in outputs] == ["sunny"]
    assert isinstance(forecast, Forecast)
    assert sim.requests[-1].json["text"]["format"]["type"] == "json_schema"
