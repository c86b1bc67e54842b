"""The simulator plays the model each deployment runs: its name (and version) in answers, the operations it serves,
what a reasoning model refuses, and the Responses API's tools and structured outputs, over real sockets with the
official openai SDK where it fits."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionMessageParam
from openai.types.responses import ResponseFunctionToolCall, ToolParam
from pydantic import BaseModel

from azure_sim import AzureSimulator
from azure_sim.models import profile_of
from tests.support.json_values import json_object

KEY = "sim-key"
GA = "?api-version=2024-10-21"
PREVIEW = "?api-version=2025-04-01-preview"
MODELS = {"chat": "gpt-5-mini", "legacy-name": "gpt-4o", "pinned": "o3-2025-04-16", "agent": "gpt-5.1-codex"}
MESSAGES: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]
RESPONSES_ONLY = ["gpt-5-codex", "codex-mini", "gpt-5-pro", "o3-pro", "o1-pro", "computer-use-preview", "agent"]


def not_supported(operation: str, model: str) -> dict[str, Any]:
    message = (
        f"The {operation} operation does not work with the specified model, {model}. Please choose different model "
        "and try again. You can learn more about which models can be used with each operation here: "
        "https://go.microsoft.com/fwlink/?linkid=2197993."
    )
    return {"error": {"code": "OperationNotSupported", "message": message}}


@pytest.fixture(scope="module")
def _server() -> Iterator[AzureSimulator]:
    with AzureSimulator(api_keys={KEY}, models=MODELS) as sim:
        yield sim


@pytest.fixture
def sim(_server: AzureSimulator) -> Iterator[AzureSimulator]:
    _server.reset()
    yield _server


@pytest.fixture
def client(sim: AzureSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, headers={"api-key": KEY}, timeout=5) as c:
        yield c


@pytest.fixture
def sdk(sim: AzureSimulator) -> openai.OpenAI:
    """The SDK against Azure's v1 scheme, where ``model`` names the deployment."""
    return openai.OpenAI(base_url=f"{sim.url}/openai/v1", api_key=KEY, max_retries=0)


def chat(client: httpx.Client, deployment: str, version: str = GA, /, **body: Any) -> httpx.Response:
    return client.post(
        f"/openai/deployments/{deployment}/chat/completions{version}", json={"messages": MESSAGES, **body}
    )


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    return json_object(response.json())


# ----------------------------------------------------------------------------------------------- which model


@pytest.mark.parametrize(
    "deployment, model",
    [
        ("gpt-5-mini", "gpt-5-mini-2025-08-07"),
        ("o4-mini", "o4-mini-2025-04-16"),
        ("o3", "o3-2025-04-16"),
        ("gpt-5.1", "gpt-5.1-2025-11-13"),
        ("gpt-5.2", "gpt-5.2-2025-12-11"),
        ("chat", "gpt-5-mini-2025-08-07"),  # models= names what the deployment runs
        ("pinned", "o3-2025-04-16"),  # a dated model name keeps its date
        ("gpt-4o", "gpt-4o-2024-08-06"),  # today's answer for any other deployment
        ("my-deployment", "gpt-4o-2024-08-06"),
        ("legacy-name", "gpt-4o-2024-08-06"),
    ],
)
def test_an_answer_names_the_model_the_deployment_runs(client: httpx.Client, deployment: str, model: str) -> None:
    assert ok(chat(client, deployment))["model"] == model
    streamed = client.post(
        f"/openai/deployments/{deployment}/chat/completions{GA}", json={"messages": MESSAGES, "stream": True}
    )
    chunks = [line for line in streamed.text.splitlines() if line.startswith("data: {")]
    assert all(f'"model":"{model}"' in line or '"model":""' in line for line in chunks)  # "": the filter event
    assert sum(f'"model":"{model}"' in line for line in chunks) >= 3


def test_the_v1_scheme_names_a_known_model_and_echoes_any_other_deployment(sdk: openai.OpenAI) -> None:
    assert sdk.chat.completions.create(model="chat", messages=MESSAGES).model == "gpt-5-mini-2025-08-07"
    assert sdk.chat.completions.create(model="o3", messages=MESSAGES).model == "o3-2025-04-16"
    assert sdk.chat.completions.create(model="my-gpt-4o", messages=MESSAGES).model == "my-gpt-4o"  # as today


@pytest.mark.parametrize("deployment", RESPONSES_ONLY)
def test_responses_only_models_refuse_chat_completions_and_completions(client: httpx.Client, deployment: str) -> None:
    model = MODELS.get(deployment, deployment)
    for body in ({"messages": MESSAGES}, {"messages": MESSAGES, "stream": True}):
        r = client.post(f"/openai/deployments/{deployment}/chat/completions{GA}", json=body)
        assert (r.status_code, r.json()) == (400, not_supported("chatCompletion", model))
        assert r.headers["content-type"].startswith("application/json")
    r = client.post(f"/openai/deployments/{deployment}/completions{GA}", json={"prompt": "hi"})
    assert (r.status_code, r.json()) == (400, not_supported("completion", model))


def test_the_sdk_sees_operation_not_supported_as_a_bad_request(sdk: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(model="gpt-5-codex", messages=MESSAGES)
    assert refused.value.code == "OperationNotSupported"
    assert refused.value.body == not_supported("chatCompletion", "gpt-5-codex")["error"]


@pytest.mark.parametrize("deployment", ["o3", "gpt-5", "gpt-5.1", "chat"])
def test_reasoning_models_refuse_legacy_completions(client: httpx.Client, deployment: str) -> None:
    model = MODELS.get(deployment, deployment)
    r = client.post(f"/openai/deployments/{deployment}/completions{GA}", json={"prompt": "hi"})
    assert (r.status_code, r.json()) == (400, not_supported("completion", model))


def test_other_deployments_behave_as_before(client: httpx.Client) -> None:
    """gpt-4o-like: sampling parameters, max_tokens, logprobs taken; no reasoning tokens; completions served."""
    body = {"temperature": 0.7, "top_p": 0.5, "max_tokens": 5, "logprobs": True, "top_logprobs": 2, "logit_bias": {}}
    for deployment in ("gpt-4o", "my-deployment", "legacy-name", "gpt-4.1"):
        answer = ok(chat(client, deployment, presence_penalty=1, frequency_penalty=-1, **body))
        assert answer["choices"][0]["message"]["content"] == "Echo: hello there"
        assert answer["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0
        assert answer["usage"]["completion_tokens"] == 3
        completion = ok(client.post(f"/openai/deployments/{deployment}/completions{GA}", json={"prompt": "hi"}))
        assert (completion["choices"][0]["text"], completion["model"]) == ("Echo: hi", "gpt-35-turbo-instruct")


def test_the_cli_takes_a_model_per_deployment() -> None:
    root = Path(__file__).resolve().parent.parent
    command = [sys.executable, "-m", "azure_sim", "--port", "0", "--model", "chat=gpt-5-mini", "--model", "x=o3"]
    with subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, text=True) as server:
        try:
            assert server.stdout is not None
            url = server.stdout.readline().split()[-1] + "/openai/deployments"
            auth = {"api-key": "k"}
            r = httpx.post(f"{url}/chat/chat/completions{GA}", json={"messages": MESSAGES}, headers=auth)
            assert r.json()["model"] == "gpt-5-mini-2025-08-07"
            r = httpx.post(f"{url}/x/completions{GA}", json={"prompt": "hi"}, headers=auth)
            assert r.json() == not_supported("completion", "o3")
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=10)
    refused = subprocess.run([*command[:3], "--model", "chat"], cwd=root, capture_output=True, text=True, timeout=30)
    assert refused.returncode == 2 and "expected DEPLOYMENT=MODEL, got 'chat'" in refused.stderr


# ----------------------------------------------------------------------------- reasoning models, chat completions


def refusal(param: str, message: str, code: str = "unsupported_parameter") -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


def unsupported(param: str) -> dict[str, Any]:
    return refusal(param, f"Unsupported parameter: '{param}' is not supported with this model.")


def temperature_refused(value: str) -> dict[str, Any]:
    message = f"Unsupported value: 'temperature' does not support {value} with this model. "
    return refusal("temperature", message + "Only the default (1) value is supported.", "unsupported_value")


MAX_TOKENS_REFUSED = refusal(
    "max_tokens",
    "Unsupported parameter: 'max_tokens' is not supported with this model. Use 'max_completion_tokens' instead.",
)
REFUSALS = [
    ({"temperature": 0.7}, temperature_refused("0.7")),
    ({"temperature": 0}, temperature_refused("0")),
    ({"temperature": 0.0}, temperature_refused("0.0")),
    ({"top_p": 0.9}, unsupported("top_p")),
    ({"presence_penalty": 0.5}, unsupported("presence_penalty")),
    ({"frequency_penalty": -1}, unsupported("frequency_penalty")),
    ({"logprobs": True}, unsupported("logprobs")),
    ({"top_logprobs": 2}, unsupported("top_logprobs")),
    ({"logit_bias": {"50256": -100}}, unsupported("logit_bias")),
    ({"max_tokens": 100}, MAX_TOKENS_REFUSED),
]
REASONING = ["o1", "o3-mini", "o3", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-5.1-chat", "chat", "pinned"]


@pytest.mark.parametrize("deployment", REASONING)
@pytest.mark.parametrize("body, error", REFUSALS)
def test_reasoning_models_refuse_what_azure_refuses(
    client: httpx.Client, deployment: str, body: dict[str, Any], error: dict[str, Any]
) -> None:
    r = chat(client, deployment, **body)
    assert (r.status_code, r.json()) == (400, error)
    streamed = chat(client, deployment, stream=True, **body)
    assert (streamed.status_code, streamed.json()) == (400, error)


def test_only_the_first_refusal_is_answered_in_the_order_azure_checks() -> None:
    """Reported orders: temperature before max_tokens; top_p before presence_penalty before frequency_penalty."""
    body: dict[str, Any] = {
        "max_tokens": 9,
        "logit_bias": {"1": 1},
        "top_logprobs": 1,
        "logprobs": True,
        "frequency_penalty": 1,
        "presence_penalty": 1,
        "top_p": 0.5,
        "temperature": 0.5,
    }
    answered = []
    with AzureSimulator() as sim, httpx.Client(base_url=sim.url, headers={"api-key": KEY}) as client:
        while (r := chat(client, "gpt-5", **body)).status_code == 400:
            answered.append(r.json()["error"]["param"])
            del body[answered[-1]]
        assert r.status_code == 200
        # schema checks (types, ranges) come before what the model refuses
        assert chat(client, "o3", temperature=3, max_tokens=5).json()["error"]["code"] == "decimal_above_max_value"
        assert chat(client, "o3", max_tokens=0).json()["error"]["code"] == "integer_below_min_value"
    expected = ["temperature", "top_p", "presence_penalty", "frequency_penalty", "logprobs", "top_logprobs"]
    assert answered == [*expected, "logit_bias", "max_tokens"]


@pytest.mark.parametrize("deployment", REASONING)
def test_reasoning_models_take_defaults_developer_messages_and_their_own_parameters(
    client: httpx.Client, deployment: str
) -> None:
    messages = [
        {"role": "developer", "content": "be brief"},
        {"role": "system", "content": "be kind"},
        {"role": "user", "content": "hello there"},
    ]
    defaults = {"temperature": 1, "top_p": 1.0, "presence_penalty": 0, "frequency_penalty": 0.0, "logprobs": False}
    answer = ok(chat(client, deployment, PREVIEW, messages=messages, max_completion_tokens=500, **defaults))
    assert answer["choices"][0]["message"]["content"] == "Echo: hello there"
    usage = answer["usage"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 64  # medium, every one of these models' default
    assert (usage["completion_tokens"], usage["prompt_tokens"], usage["total_tokens"]) == (67, 6, 73)
    assert usage["prompt_tokens_details"] == {"audio_tokens": 0, "cached_tokens": 0}


def test_a_dated_api_version_before_the_developer_role_refuses_it_with_the_role_enum(client: httpx.Client) -> None:
    messages = [{"role": "developer", "content": "be brief"}, {"role": "user", "content": "hello there"}]
    old = chat(client, "gpt-4o", messages=messages)
    message = "Invalid value: 'developer'. Supported values are: 'system', 'assistant', 'user', 'function', and 'tool'."
    assert (old.status_code, old.json()) == (400, refusal("messages[0].role", message, "invalid_value"))
    assert ok(chat(client, "gpt-4o", "?api-version=2024-12-01-preview", messages=messages))
    assert ok(chat(client, "o4-mini", "?api-version=2025-04-01-preview", messages=messages))
    v1 = client.post("/openai/v1/chat/completions", json={"model": "gpt-4o", "messages": messages})
    assert ok(v1)


@pytest.mark.parametrize("deployment", ["gpt-5.1", "gpt-5.2"])
def test_gpt_5_1_and_gpt_5_2_take_sampling_and_logprobs_only_without_reasoning(
    client: httpx.Client, deployment: str
) -> None:
    sampling = {"temperature": 0.2, "top_p": 0.5, "presence_penalty": 1, "frequency_penalty": 1, "logprobs": True}
    for effort in ({}, {"reasoning_effort": "none"}):  # none is their default
        answer = ok(chat(client, deployment, top_logprobs=2, **sampling, **effort))
        assert answer["usage"]["completion_tokens_details"]["reasoning_tokens"] == 0
    r = chat(client, deployment, reasoning_effort="low", **sampling)
    assert (r.status_code, r.json()) == (400, temperature_refused("0.2"))
    r = chat(client, deployment, reasoning_effort="high", top_p=0.5)
    assert (r.status_code, r.json()) == (400, unsupported("top_p"))
    assert chat(client, deployment, logit_bias={"1": 1}).json() == unsupported("logit_bias")  # whatever the effort
    assert chat(client, deployment, max_tokens=5).json() == MAX_TOKENS_REFUSED
    reasoned = ok(chat(client, deployment, reasoning_effort="high", max_completion_tokens=99))
    assert reasoned["usage"]["completion_tokens_details"]["reasoning_tokens"] == 128


@pytest.mark.parametrize(
    "deployment, effort, supported",
    [
        ("gpt-5.1", "minimal", "'none', 'low', 'medium', and 'high'"),
        ("gpt-5", "none", "'minimal', 'low', 'medium', and 'high'"),
        ("chat", "xhigh", "'minimal', 'low', 'medium', and 'high'"),
        ("o3", "minimal", "'low', 'medium', and 'high'"),
        ("gpt-5.1-chat", "high", "'medium'"),
    ],
)
def test_an_effort_the_model_does_not_take_is_refused(
    client: httpx.Client, deployment: str, effort: str, supported: str
) -> None:
    model = MODELS.get(deployment, deployment)
    message = f"Unsupported value: '{effort}' is not supported with the '{model}' model. Supported values are: "
    error = refusal("reasoning_effort", f"{message}{supported}.", "unsupported_value")
    r = chat(client, deployment, reasoning_effort=effort)
    assert (r.status_code, r.json()) == (400, error)


def test_an_effort_no_model_knows_is_a_schema_error_and_other_models_ignore_it(client: httpx.Client) -> None:
    r = chat(client, "o4-mini", reasoning_effort="max")
    message = "Invalid value: 'max'. Supported values are: 'none', 'minimal', 'low', 'medium', 'high', and 'xhigh'."
    assert (r.status_code, r.json()) == (400, refusal("reasoning_effort", message, "invalid_value"))
    usage = ok(chat(client, "gpt-4o", reasoning_effort="max"))["usage"]  # gpt-4o-like: as before, not checked
    assert usage["completion_tokens_details"]["reasoning_tokens"] == 0


def test_the_sdk_gets_reasoning_usage_in_answers_and_streams(sdk: openai.OpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "developer", "content": "be brief"},
        {"role": "user", "content": "hello there"},
    ]
    completion = sdk.chat.completions.create(
        model="o4-mini", messages=messages, max_completion_tokens=500, reasoning_effort="low"
    )
    assert completion.model == "o4-mini-2025-04-16"
    usage = completion.usage
    assert usage is not None and usage.completion_tokens_details is not None and usage.prompt_tokens_details
    assert (usage.completion_tokens_details.reasoning_tokens, usage.completion_tokens) == (16, 19)
    assert usage.prompt_tokens_details.cached_tokens == 0
    stream = sdk.chat.completions.create(
        model="o4-mini",
        messages=messages,
        max_completion_tokens=500,
        reasoning_effort="low",
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: hello there"
    assert chunks[-1].usage == usage and {c.model for c in chunks if c.id} == {"o4-mini-2025-04-16"}
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.chat.completions.create(model="o4-mini", messages=messages, max_tokens=10)
    assert (refused.value.code, refused.value.param) == ("unsupported_parameter", "max_tokens")
    assert refused.value.body == MAX_TOKENS_REFUSED["error"]


# ------------------------------------------------------------------------------ the Responses API: tools, formats

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city",
    "strict": True,
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city", "unit"],
        "additionalProperties": False,
    },
}
TIME = {"type": "function", "name": "get_time", "parameters": {"type": "object", "properties": {}}}
TOOLS: list[ToolParam] = [cast(ToolParam, WEATHER), cast(ToolParam, TIME)]


class Forecast(BaseModel):
    city: str
    days: list[Day]


class Day(BaseModel):
    date: str
    celsius: float
    sunny: bool


Forecast.model_rebuild()


def responses(client: httpx.Client, **body: Any) -> httpx.Response:
    return client.post("/openai/v1/responses", json=body)


def sse_events(response: httpx.Response) -> list[dict[str, Any]]:
    """Each named event's data, checked to carry its name as ``type``."""
    assert response.status_code == 200, response.text
    parsed = []
    for block in response.text.split("\n\n"):
        if block:
            name, data = block.split("\n")
            payload = json_object(orjson.loads(data.removeprefix("data: ")))
            assert name == f"event: {payload['type']}"
            parsed.append(payload)
    assert [p["sequence_number"] for p in parsed] == list(range(len(parsed)))
    return parsed


def test_a_function_call_when_the_user_names_a_tool_then_a_message_for_its_output(sdk: openai.OpenAI) -> None:
    first = sdk.responses.create(model="gpt-4o", input="What is the weather? Ask get_weather.", tools=TOOLS)
    (call,) = first.output  # a model that does not reason: no reasoning item
    assert isinstance(call, ResponseFunctionToolCall)
    assert (call.type, call.name, call.status) == ("function_call", "get_weather", "completed")
    assert call.id is not None and call.id.startswith("fc_") and call.call_id.startswith("call_")
    assert orjson.loads(call.arguments) == {"city": "city", "unit": "c"}  # an instance of the parameters schema
    assert first.usage is not None and first.usage.output_tokens == 1  # the arguments, one "word"
    second = sdk.responses.create(
        model="gpt-4o",
        previous_response_id=first.id,
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 21 C"}],
        tools=TOOLS,
    )
    assert [item.type for item in second.output] == ["message"]
    assert second.output_text == "Echo: What is the weather? Ask get_weather."
    listed = sdk.responses.input_items.list(second.id)
    assert [(item.type, getattr(item, "call_id", None)) for item in listed.data] == [
        ("function_call_output", call.call_id)
    ]


def test_the_agents_sdk_way_sends_the_items_back_instead_of_a_previous_response(sdk: openai.OpenAI) -> None:
    question: dict[str, Any] = {"role": "user", "content": "Use get_time, please"}
    first = sdk.responses.create(model="o4-mini", input=[cast(Any, question)], tools=TOOLS, store=False)
    assert [item.type for item in first.output] == ["reasoning", "function_call"]
    call = first.output[-1]
    assert isinstance(call, ResponseFunctionToolCall) and (call.name, call.arguments) == ("get_time", "{}")
    replay = [question, *(item.model_dump(exclude_none=True) for item in first.output)]
    replay.append({"type": "function_call_output", "call_id": call.call_id, "output": "12:00"})
    second = sdk.responses.create(model="o4-mini", input=cast(Any, replay), tools=TOOLS, store=False)
    assert [item.type for item in second.output] == ["reasoning", "message"]
    assert second.output_text == "Echo: Use get_time, please"
    with pytest.raises(openai.NotFoundError):  # store: false keeps nothing
        sdk.responses.retrieve(second.id)


@pytest.mark.parametrize(
    "tool_choice, text, called",
    [
        ("auto", "hello there", None),  # auto: only when the user names a tool
        (None, "what does get_time say", "get_time"),  # auto is the default
        ("none", "ask get_time", None),
        ("required", "hello there", "get_weather"),  # the first tool when none is named
        ("required", "ask get_time", "get_time"),
        ({"type": "function", "name": "get_time"}, "ask get_weather", "get_time"),
        (
            {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "get_time"}]},
            "hi",
            "get_time",
        ),
        (
            {"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "get_time"}]},
            "get_weather?",
            None,
        ),
    ],
)
def test_tool_choice_decides_the_call(client: httpx.Client, tool_choice: Any, text: str, called: str | None) -> None:
    body: dict[str, Any] = {"model": "gpt-4o", "input": text, "tools": [WEATHER, TIME]}
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    answer = ok(responses(client, **body))
    (item,) = answer["output"]
    assert item["type"] == ("message" if called is None else "function_call")
    assert item.get("name") == called
    assert answer["tool_choice"] == body.get("tool_choice", "auto") and answer["tools"] == [WEATHER, TIME]


def test_required_calls_again_after_an_output_and_auto_answers_it(client: httpx.Client) -> None:
    first = ok(responses(client, model="gpt-4o", input="ask get_time", tools=[TIME]))
    output = [{"type": "function_call_output", "call_id": first["output"][0]["call_id"], "output": "noon"}]
    answered = ok(responses(client, model="gpt-4o", input=output, tools=[TIME], previous_response_id=first["id"]))
    assert answered["output"][0]["type"] == "message"
    body = {"input": output, "tools": [TIME], "tool_choice": "required", "previous_response_id": first["id"]}
    forced = ok(responses(client, model="gpt-4o", **body))
    assert forced["output"][0]["type"] == "function_call"  # as OpenAI: required forces a call every turn


def error_body(message: str, param: str | None, code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}


def test_calls_and_outputs_must_pair_up(client: httpx.Client) -> None:
    orphan = [{"type": "function_call_output", "call_id": "call_nope", "output": "x"}]
    r = responses(client, model="gpt-4o", input=orphan)
    message = "No tool call found for function call output with call_id call_nope."
    assert (r.status_code, r.json()) == (400, error_body(message, "input"))
    first = ok(responses(client, model="gpt-4o", input="ask get_time", tools=[TIME]))
    r = responses(client, model="gpt-4o", input="never mind", previous_response_id=first["id"])
    message = f"No tool output found for function call {first['output'][0]['call_id']}."
    assert (r.status_code, r.json()) == (400, error_body(message, "input"))


def test_tools_and_tool_choice_are_checked(client: httpx.Client) -> None:
    chat_shaped = {"type": "function", "function": {"name": "get_time", "parameters": {}}}
    r = responses(client, model="gpt-4o", input="hi", tools=[chat_shaped])
    assert (r.status_code, r.json()) == (
        400,
        error_body("Missing required parameter: 'tools[0].name'.", "tools[0].name"),
    )
    r = responses(client, model="gpt-4o", input="hi", tools=[TIME], tool_choice={"type": "web_search"})
    message = "Tool choice 'web_search' not found in 'tools' parameter."
    assert (r.status_code, r.json()) == (400, error_body(message, "tool_choice"))
    r = responses(client, model="gpt-4o", input="hi", tools=[TIME], tool_choice={"type": "function", "name": "x"})
    assert (r.status_code, r.json()) == (
        400,
        error_body("Tool choice 'x' not found in 'tools' parameter.", "tool_choice"),
    )
    r = responses(client, model="gpt-4o", input="hi", tools=[TIME], tool_choice="always")
    message = "Invalid value: 'always'. Supported values are: 'none', 'auto', and 'required'."
    assert (r.status_code, r.json()) == (400, error_body(message, "tool_choice", "invalid_value"))
    hosted = ok(
        responses(client, model="gpt-4o", input="search", tools=[{"type": "web_search"}], tool_choice="required")
    )
    assert hosted["output"][0]["type"] == "message"  # a hosted tool is accepted, never run here


def test_text_format_json_schema_parses_into_the_pydantic_model(sdk: openai.OpenAI) -> None:
    parsed = sdk.responses.parse(model="gpt-5-mini", input="the forecast, please", text_format=Forecast)
    assert parsed.output_parsed == Forecast(city="city", days=[Day(date="date", celsius=0.0, sunny=True)])
    assert [item.type for item in parsed.output] == ["reasoning", "message"]
    assert parsed.text is not None and parsed.text.format is not None and parsed.text.format.type == "json_schema"
    with sdk.responses.stream(model="gpt-4o", input="the forecast, please", text_format=Forecast) as stream:
        assert stream.get_final_response().output_parsed == parsed.output_parsed


def test_text_format_json_object_and_its_checks(client: httpx.Client) -> None:
    answer = ok(responses(client, model="gpt-4o", input="reply in JSON", text={"format": {"type": "json_object"}}))
    assert orjson.loads(answer["output"][0]["content"][0]["text"]) == {"answer": "Echo: reply in JSON"}
    r = responses(
        client, model="gpt-4o", input="hi", instructions="answer in json", text={"format": {"type": "json_object"}}
    )
    message = "Response input messages must contain the word 'json' in some form to use 'text.format' of type "
    assert (r.status_code, r.json()) == (400, error_body(message + "'json_object'.", "input"))
    unnamed = {"format": {"type": "json_schema", "schema": {"type": "object"}}}
    r = responses(client, model="gpt-4o", input="hi", text=unnamed)
    assert (r.status_code, r.json()) == (
        400,
        error_body("Missing required parameter: 'text.format.name'.", "text.format.name"),
    )


@pytest.mark.parametrize(
    "deployment, effort, reasoning_tokens",
    [
        ("gpt-5-codex", None, 64),
        ("codex-mini", "high", 128),
        ("gpt-5-pro", None, 128),  # high, its only effort
        ("o3-pro", "low", 16),
        ("agent", None, 64),  # gpt-5.1-codex
        ("gpt-5", "minimal", 8),
        ("gpt-5.2", None, 0),  # none: no reasoning, no reasoning item
    ],
)
def test_responses_only_and_reasoning_models_serve_the_responses_api(
    sdk: openai.OpenAI, deployment: str, effort: Any, reasoning_tokens: int
) -> None:
    reasoning = {"effort": effort} if effort else openai.omit
    answer = sdk.responses.create(model=deployment, input="hello there", reasoning=cast(Any, reasoning))
    assert answer.output_text == "Echo: hello there" and answer.model == deployment
    assert [item.type for item in answer.output] == (["reasoning"] if reasoning_tokens else []) + ["message"]
    assert answer.usage is not None and answer.usage.output_tokens_details.reasoning_tokens == reasoning_tokens
    assert answer.usage.output_tokens == 3 + reasoning_tokens and answer.usage.input_tokens_details.cached_tokens == 0
    assert answer.reasoning is not None and answer.reasoning.effort == (
        effort or profile_of(MODELS.get(deployment, deployment)).default_effort
    )


def test_a_model_that_does_not_reason_echoes_reasoning_and_counts_none(client: httpx.Client) -> None:
    answer = ok(responses(client, model="gpt-4o", input="hello there"))
    assert answer["reasoning"] == {"effort": None, "summary": None}
    assert answer["usage"]["output_tokens_details"] == {"reasoning_tokens": 0}
    r = responses(client, model="gpt-5.1", input="hi", reasoning={"effort": "minimal"})
    message = "Unsupported value: 'minimal' is not supported with the 'gpt-5.1' model. Supported values are: "
    error = error_body(message + "'none', 'low', 'medium', and 'high'.", "reasoning.effort", "unsupported_value")
    assert (r.status_code, r.json()) == (400, error)


def test_a_streamed_function_call_is_the_events_openai_documents(sim: AzureSimulator, client: httpx.Client) -> None:
    streamed = client.post(
        "/openai/v1/responses",
        json={"model": "o3", "input": "ask get_weather", "tools": [WEATHER], "stream": True},
        headers={"x-sim-chunks": "3"},
    )
    events = sse_events(streamed)
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",  # the reasoning item
        "response.output_item.done",
        "response.output_item.added",  # the function call, arguments still empty
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    completed = events[-1]["response"]
    reasoning, call = completed["output"]
    assert reasoning == {"type": "reasoning", "id": reasoning["id"], "summary": []} and events[2]["item"] == reasoning
    assert (events[2]["output_index"], events[4]["output_index"]) == (0, 1)
    assert events[4]["item"] == {**call, "arguments": "", "status": "in_progress"}
    deltas = events[5:8]
    assert all(d.keys() == {"type", "item_id", "output_index", "delta", "sequence_number"} for d in deltas)
    assert {(d["item_id"], d["output_index"]) for d in deltas} == {(call["id"], 1)}
    assert "".join(d["delta"] for d in deltas) == call["arguments"] == '{"city":"city","unit":"c"}'
    assert events[8] == {
        "type": "response.function_call_arguments.done",
        "item_id": call["id"],
        "name": "get_weather",
        "output_index": 1,
        "arguments": call["arguments"],
        "sequence_number": 8,
    }
    assert events[9]["item"] == call and events[9]["output_index"] == 1
    assert (events[0]["response"]["status"], events[0]["response"]["usage"], completed["status"]) == (
        "in_progress",
        None,
        "completed",
    )
    assert completed["usage"]["output_tokens_details"] == {"reasoning_tokens": 64}
    with pytest.raises(httpx.RemoteProtocolError):  # x-sim-fail: abort cuts the stream after two argument deltas
        client.post(
            "/openai/v1/responses",
            json={"model": "o3", "input": "ask get_weather", "tools": [WEATHER], "stream": True},
            headers={"x-sim-fail": "abort"},
        )
    assert sim.requests[-1].aborted


def test_the_sdk_streams_function_calls_and_messages(sdk: openai.OpenAI) -> None:
    with sdk.responses.stream(model="gpt-5-mini", input="ask get_weather", tools=TOOLS) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds.count("response.function_call_arguments.delta") == 5  # x-sim-chunks' default
    call = final.output[-1]
    assert isinstance(call, ResponseFunctionToolCall) and call.name == "get_weather"
    assert orjson.loads(call.arguments) == {"city": "city", "unit": "c"}
    with sdk.responses.stream(model="gpt-5-mini", input="hello there") as stream:
        text = "".join(event.delta for event in stream if event.type == "response.output_text.delta")
        final = stream.get_final_response()
    assert text == final.output_text == "Echo: hello there" and [o.type for o in final.output] == [
        "reasoning",
        "message",
    ]
