"""The local upstream answers in the shape a model would, through the gateway, with the official openai SDK:
structured outputs (`parse()`), JSON mode, tool calls (streamed and not), and Azure's 400s for bad parameters."""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, Literal, cast

import openai
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from openai.types.chat import (
    ChatCompletionAssistantMessageParam,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageParam,
)
from pydantic import BaseModel, Field

from tests.support.json_values import json_object
from tests.support.standard import ALICE


class Unit(StrEnum):
    CELSIUS = "celsius"
    FAHRENHEIT = "fahrenheit"


class GetWeather(BaseModel):
    """Current weather in a city."""

    city: str
    unit: Unit
    days: int = Field(ge=1, le=7)


class Address(BaseModel):
    street: str
    postcode: str | None


class Person(BaseModel):
    name: str
    age: int
    height_m: float
    member: bool
    role: Literal["admin", "user", "guest"]
    tags: list[str]
    home: Address
    previous: list[Address]
    nickname: str | None


WEATHER_TOOL = openai.pydantic_function_tool(GetWeather, name="get_weather")
OTHER_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {"name": "lookup_order", "parameters": {"type": "object", "properties": {"id": {"type": "string"}}}},
}
ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": "What is the weather in Paris?"}]


@pytest.fixture
def client(gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=ALICE, max_retries=0)


def test_parse_returns_an_instance_of_the_pydantic_model(client: openai.OpenAI) -> None:
    completion = client.chat.completions.parse(
        model="gpt-4o", messages=[{"role": "user", "content": "Describe someone"}], response_format=Person
    )
    person = completion.choices[0].message.parsed
    assert isinstance(person, Person)
    assert person.role in ("admin", "user", "guest") and isinstance(person.home, Address)
    assert completion.choices[0].finish_reason == "stop"


def test_parse_streams_an_instance_too(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model="gpt-4o", messages=[{"role": "user", "content": "Describe someone"}], response_format=Person
    ) as stream:
        final = stream.get_final_completion()
    assert isinstance(final.choices[0].message.parsed, Person)


def test_json_mode_answers_a_json_object(client: openai.OpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Answer in JSON: hello"}]
    completion = client.chat.completions.create(
        model="gpt-4o", messages=messages, response_format={"type": "json_object"}
    )
    content = completion.choices[0].message.content
    assert content is not None and isinstance(json.loads(content), dict)
    stream = client.chat.completions.create(
        model="gpt-4o", messages=messages, response_format={"type": "json_object"}, stream=True
    )
    assert isinstance(json.loads("".join(c.choices[0].delta.content or "" for c in stream if c.choices)), dict)


def test_json_mode_needs_the_word_json_as_on_azure(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="gpt-4o", messages=ASK, response_format={"type": "json_object"})
    assert "must contain the word 'json'" in caught.value.message


@pytest.mark.parametrize("tool_choice", ["required", {"type": "function", "function": {"name": "get_weather"}}])
def test_a_tool_call_with_arguments_valid_for_the_tool_schema(client: openai.OpenAI, tool_choice) -> None:
    tools = [WEATHER_TOOL] if tool_choice == "required" else [OTHER_TOOL, WEATHER_TOOL]
    completion = client.chat.completions.create(model="gpt-4o", messages=ASK, tools=tools, tool_choice=tool_choice)
    message = completion.choices[0].message
    assert message.content is None and message.tool_calls is not None and len(message.tool_calls) == 1
    call = message.tool_calls[0]
    assert call.type == "function" and call.function.name == "get_weather" and call.id.startswith("call_")
    arguments = GetWeather.model_validate_json(call.function.arguments)
    assert 1 <= arguments.days <= 7
    assert completion.choices[0].finish_reason == ("tool_calls" if tool_choice == "required" else "stop")


def test_auto_calls_the_tool_the_prompt_names_and_answers_text_otherwise(client: openai.OpenAI) -> None:
    tools = [WEATHER_TOOL, OTHER_TOOL]
    named: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Please use lookup_order for order 42"}]
    completion = client.chat.completions.create(model="gpt-4o", messages=named, tools=tools)
    calls = completion.choices[0].message.tool_calls
    assert calls is not None
    (call,) = calls
    assert call.type == "function" and call.function.name == "lookup_order"
    assert completion.choices[0].finish_reason == "tool_calls"
    plain = client.chat.completions.create(model="gpt-4o", messages=ASK, tools=tools, tool_choice="auto")
    assert plain.choices[0].message.content == "Echo: What is the weather in Paris?"
    assert plain.choices[0].message.tool_calls is None
    # The SDK's answer sent back as the client has it, a dict: the assistant message's shape, which mypy cannot see.
    answered: list[ChatCompletionMessageParam] = [
        *named,
        cast(ChatCompletionAssistantMessageParam, completion.choices[0].message.model_dump(exclude_none=True)),
        {"role": "tool", "tool_call_id": call.id, "content": "shipped"},
    ]
    after = client.chat.completions.create(model="gpt-4o", messages=answered, tools=tools)
    assert after.choices[0].message.tool_calls is None and after.choices[0].message.content


def test_a_streamed_tool_call_comes_in_deltas(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(
        model="gpt-4o", messages=ASK, tools=[WEATHER_TOOL], tool_choice="required", stream=True
    )
    chunks = [c for c in stream if c.choices]
    calls = [tc for c in chunks for tc in c.choices[0].delta.tool_calls or []]
    functions = [tc.function for tc in calls if tc.function is not None]
    assert len(functions) == len(calls)  # each delta carries a piece of the function
    assert calls[0].id is not None and calls[0].id.startswith("call_") and functions[0].name == "get_weather"
    assert all(tc.index == 0 for tc in calls) and all(tc.id is None for tc in calls[1:])
    assert len(calls) > 2  # the arguments arrive in pieces
    GetWeather.model_validate_json("".join(f.arguments or "" for f in functions))
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


def test_the_sdk_stream_helper_parses_tool_arguments(client: openai.OpenAI) -> None:
    with client.chat.completions.stream(
        model="gpt-4o",
        messages=ASK,
        tools=[openai.pydantic_function_tool(GetWeather, name="get_weather")],
        tool_choice="required",
    ) as stream:
        final = stream.get_final_completion()
    tool_calls = final.choices[0].message.tool_calls
    assert tool_calls is not None and isinstance(tool_calls[0].function.parsed_arguments, GetWeather)


BAD_PARAMETERS = [
    (
        {"temperature": 3},
        "Invalid 'temperature': decimal above maximum value. Expected a value <= 2, but got 3 instead.",
    ),
    (
        {"temperature": -1},
        "Invalid 'temperature': decimal below minimum value. Expected a value >= 0, but got -1 instead.",
    ),
    ({"top_p": 1.5}, "Invalid 'top_p': decimal above maximum value. Expected a value <= 1, but got 1.5 instead."),
    ({"n": 0}, "Invalid 'n': integer below minimum value. Expected a value >= 1, but got 0 instead."),
    ({"max_tokens": 0}, "Invalid 'max_tokens': integer below minimum value. Expected a value >= 1, but got 0 instead."),
    ({"temperature": "hot"}, "Invalid type for 'temperature': expected a decimal, but got a string instead."),
    (
        {"messages": []},
        "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
    ),
    (
        {"messages": [{"role": "wizard", "content": "hi"}]},
        (
            # The GA 2024-10-21 predates the developer role (tests/test_azure_sim_models.py has it on newer ones).
            "Invalid value: 'wizard'. Supported values are: 'system', 'assistant', 'user', 'function', and 'tool'."
        ),
    ),
    ({"messages": ["hi"]}, "Invalid type for 'messages[0]': expected an object, but got a string instead."),
    ({"messages": [{"content": "hi"}]}, "Missing required parameter: 'messages[0].role'."),
    (
        {"tool_choice": "required"},
        "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
    ),
    (
        {"response_format": {"type": "xml"}},
        "Invalid value: 'xml'. Supported values are: 'json_object', 'json_schema', and 'text'.",
    ),
]


@pytest.mark.parametrize(("change", "message"), BAD_PARAMETERS)
def test_bad_parameters_get_azures_400(client: openai.OpenAI, change: dict[str, Any], message: str) -> None:
    body = {"model": "gpt-4o", "messages": ASK, **change}
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(**body)
    assert caught.value.status_code == 400
    error = json_object(caught.value.body)
    assert error["message"] == message and error["type"] == "invalid_request_error"


schemas = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(
                (
                    "type",
                    "properties",
                    "items",
                    "anyOf",
                    "oneOf",
                    "allOf",
                    "$ref",
                    "$defs",
                    "enum",
                    "const",
                    "minItems",
                    "maxItems",
                    "minimum",
                    "maximum",
                    "exclusiveMinimum",
                    "minLength",
                    "format",
                    "prefixItems",
                    "x",
                )
            ),
            inner | st.sampled_from(("object", "array", "string", "integer", "number", "null", "#", "#/$defs/x")),
            max_size=4,
        )
    ),
    max_leaves=16,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(schema=schemas, stream=st.booleans())
@example(schema={"type": None, "$ref": "#", "allOf": []}, stream=False)  # the simulator recursed without end
def test_any_schema_a_client_sends_gets_an_answer_not_a_crash(client: openai.OpenAI, schema, stream: bool) -> None:
    tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    response_format = {"type": "json_schema", "json_schema": {"name": "s", "schema": schema}}
    for extra in ({"tools": [tool], "tool_choice": "required"}, {"response_format": response_format}):
        try:
            answer = client.chat.completions.create(model="gpt-4o", messages=ASK, stream=stream, **extra)
            if stream:
                list(answer)
        except openai.BadRequestError:
            pass  # a parameters value that is not an object: Azure's 400, not a crash
