"""Chat completions served by a Responses-only deployment: the chat request as a Responses request, the
Responses answer (whole or streamed) as the chat completion the client asked for."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any, cast

import orjson
import pytest

from core.accesslog import AccessRecord
from core.config.model import Backend
from core.errors import GatewayError
from core.models.families import family_of
from core.models.fit import Fit
from core.relay import Relay
from core.translation.responses_bridge import (
    ChatChunksFromResponseEvents,
    chat_to_responses,
    checked_response,
    response_to_chat,
)
from core.translation.translator import ChatViaResponses, ClientRequest, DeploymentTranslator, for_deployment
from core.translation.usage import Usage

BACKEND = Backend(
    group="codex",
    deployment="gpt-5-codex-dep",
    api_version="2025-04-01-preview",
    serverless=False,
    base_url="https://r.openai.azure.com/openai/deployments/gpt-5-codex-dep",
    auth="api-key",
    headers=(("api-key", "k"),),
    responses_url="https://r.openai.azure.com/openai/responses?api-version=2025-04-01-preview",
)
HELLO = [{"role": "user", "content": "Hello"}]
HELLO_ITEM = {"type": "message", "role": "user", "content": "Hello"}


def refusal(payload: dict[str, Any]) -> GatewayError:
    with pytest.raises(GatewayError) as caught:
        chat_to_responses(payload, "dep")
    return caught.value


# -- the request


def test_a_conversation_becomes_input_items_in_its_order_and_roles() -> None:
    messages = [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Use "}, {"type": "text", "text": "tools."}]},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What is in this image?"},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}},
                {"type": "file", "file": {"file_id": "file-1", "filename": None}},
                {"type": "file", "file": {"file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"}},
            ],
            "name": "alice",
        },
        {
            "role": "assistant",
            "content": "Let me look that up.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                },
                {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "12 degrees"},
        {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "noon"}]},
        {"role": "assistant", "content": None, "refusal": "I can't help with that."},
        {"role": "assistant", "content": [{"type": "text", "text": "Sure"}, {"type": "refusal", "refusal": "!"}]},
        {"role": "assistant", "content": "Here it is.", "refusal": "Not all of it."},  # the refusal only alone
        {"role": "assistant", "content": ""},  # nothing said: no item
        {"role": "user", "content": "Thanks"},
    ]
    assert chat_to_responses({"model": "gpt-5-codex", "messages": messages}, "dep")["input"] == [
        {"type": "message", "role": "system", "content": "Be brief."},
        {
            "type": "message",
            "role": "developer",
            "content": [{"type": "input_text", "text": "Use "}, {"type": "input_text", "text": "tools."}],
        },
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "What is in this image?"},
                {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "low"},
                {"type": "input_image", "image_url": "data:image/png;base64,iVBO", "detail": "auto"},
                {"type": "input_file", "file_id": "file-1"},
                {"type": "input_file", "file_data": "data:application/pdf;base64,JVBE", "filename": "a.pdf"},
            ],
        },
        {"type": "message", "role": "assistant", "content": "Let me look that up."},
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Oslo"}'},
        {"type": "function_call", "call_id": "call_2", "name": "get_time", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "12 degrees"},
        {"type": "function_call_output", "call_id": "call_2", "output": "noon"},
        {"type": "message", "role": "assistant", "content": "I can't help with that."},
        {"type": "message", "role": "assistant", "content": "Sure!"},
        {"type": "message", "role": "assistant", "content": "Here it is."},
        {"type": "message", "role": "user", "content": "Thanks"},
    ]


def test_the_parameters_map_to_their_responses_names_and_the_deployment_is_the_model() -> None:
    chat = {
        "model": "gpt-5-codex",
        "messages": HELLO,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_completion_tokens": 800,
        "max_tokens": 100,  # max_completion_tokens wins
        "reasoning_effort": "high",
        "verbosity": "low",
        "temperature": 0.5,
        "top_p": 0.9,
        "parallel_tool_calls": False,
        "metadata": {"team": "a"},
        "user": "user-1",
        "safety_identifier": "hash-1",
        "prompt_cache_key": "k",
        "service_tier": "default",
        "store": True,  # the bridge never stores
        "seed": 7,  # best effort only: dropped
        "n": 1,
        "logprobs": False,
        "frequency_penalty": 0,
        "presence_penalty": 0.0,
        "stop": None,
        "logit_bias": {},
        "modalities": ["text"],
        "audio": None,
    }
    assert chat_to_responses(chat, "gpt-5-codex-dep") == {
        "model": "gpt-5-codex-dep",
        "input": [{"type": "message", "role": "user", "content": "Hello"}],
        "stream": True,
        "max_output_tokens": 800,
        "reasoning": {"effort": "high"},
        "text": {"verbosity": "low"},
        "temperature": 0.5,
        "top_p": 0.9,
        "parallel_tool_calls": False,
        "metadata": {"team": "a"},
        "user": "user-1",
        "safety_identifier": "hash-1",
        "prompt_cache_key": "k",
        "service_tier": "default",
        "store": False,
    }
    assert chat_to_responses({"messages": HELLO, "max_tokens": 100}, "d")["max_output_tokens"] == 100


@pytest.mark.parametrize(
    ("response_format", "text"),
    [
        (
            {
                "type": "json_schema",
                "json_schema": {
                    "name": "weather",
                    "description": "A forecast",
                    "schema": {"type": "object", "properties": {"t": {"type": "number"}}},
                    "strict": True,
                },
            },
            {
                "format": {
                    "type": "json_schema",
                    "name": "weather",
                    "description": "A forecast",
                    "schema": {"type": "object", "properties": {"t": {"type": "number"}}},
                    "strict": True,
                }
            },
        ),
        (
            {"type": "json_schema", "json_schema": {"name": "n", "schema": {}}},
            {"format": {"type": "json_schema", "name": "n", "schema": {}}},
        ),
        ({"type": "json_object"}, {"format": {"type": "json_object"}}),
        ({"type": "text"}, None),
    ],
)
def test_the_response_format_becomes_the_text_format(response_format, text) -> None:
    body = chat_to_responses({"messages": HELLO, "response_format": response_format}, "d")
    assert body.get("text") == text


def test_function_tools_are_flattened_and_not_strict_unless_asked() -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "The weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            },
        },
        {"type": "function", "function": {"name": "now", "strict": True}},
    ]
    assert chat_to_responses({"messages": HELLO, "tools": tools}, "d")["tools"] == [
        {
            "type": "function",
            "name": "get_weather",
            "description": "The weather in a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
            "strict": False,
        },
        {"type": "function", "name": "now", "parameters": {"type": "object", "properties": {}}, "strict": True},
    ]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ({"type": "function", "function": {"name": "get_weather"}}, {"type": "function", "name": "get_weather"}),
        (
            {
                "type": "allowed_tools",
                "allowed_tools": {"mode": "required", "tools": [{"type": "function", "function": {"name": "a"}}]},
            },
            {"type": "allowed_tools", "mode": "required", "tools": [{"type": "function", "name": "a"}]},
        ),
    ],
)
def test_the_tool_choice_takes_the_responses_form(choice, expected) -> None:
    assert chat_to_responses({"messages": HELLO, "tool_choice": choice}, "d")["tool_choice"] == expected


@pytest.mark.parametrize(
    ("name", "value", "what"),
    [
        ("n", 2, "more than one choice"),
        ("logprobs", True, "log probabilities"),
        ("top_logprobs", 3, "log probabilities"),
        ("frequency_penalty", 0.5, "a frequency penalty"),
        ("presence_penalty", -1, "a presence penalty"),
        ("stop", ["\n\n"], "stop sequences"),
        ("stop", "END", "stop sequences"),
        ("logit_bias", {"50256": -100}, "token biases"),
        ("modalities", ["text", "audio"], "output other than text"),
        ("audio", {"voice": "alloy", "format": "wav"}, "audio output"),
        ("prediction", {"type": "content", "content": "x"}, "predicted outputs"),
        ("web_search_options", {}, "chat's web search options"),
        ("functions", [{"name": "f"}], "the legacy functions (use `tools`)"),
        ("function_call", "auto", "the legacy function_call (use `tool_choice`)"),
        ("data_sources", [{"type": "azure_search"}], "a parameter it does not know"),  # Azure's chat-only extension
        ("user_security_context", {"application_name": "a"}, "a parameter it does not know"),
    ],
)
def test_what_the_responses_api_cannot_express_is_refused_naming_the_parameter(name, value, what) -> None:
    error = refusal({"messages": HELLO, name: value})
    assert (error.status, error.code, error.param, error.type) == (
        400,
        "unsupported_by_bridge",
        name,
        "invalid_request_error",
    )
    assert error.message == (
        "This model serves only the Responses API, to which the gateway translates chat completions; it cannot "
        f"translate {what} (`{name}`)."
    )


@pytest.mark.parametrize(
    ("payload", "param", "what"),
    [
        (
            {"tools": [{"type": "custom", "custom": {"name": "apply_patch"}}]},
            "tools[0].type",
            "a tool of type `custom`",
        ),
        (
            {"tool_choice": {"type": "custom", "custom": {"name": "apply_patch"}}},
            "tool_choice.type",
            "a tool choice of type `custom`",
        ),
        (
            {
                "tool_choice": {
                    "type": "allowed_tools",
                    "allowed_tools": {"mode": "auto", "tools": [{"type": "custom"}]},
                }
            },
            "tool_choice.allowed_tools.tools[0]",
            "an allowed tool that is not a function",
        ),
        ({"response_format": {"type": "grammar"}}, "response_format.type", "a response format of type `grammar`"),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "UklG"}}]}]},
            "messages[0].content[0].type",
            "a content part of type `input_audio` here",
        ),
        (
            {"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]},
            "messages[0].content[0].type",
            "a content part of type `image_url` here",
        ),
        (
            {"messages": [{"role": "function", "name": "f", "content": "1"}]},
            "messages[0].role",
            "a message whose role is `function`",
        ),
        (
            {"messages": [{"role": "assistant", "audio": {"id": "audio_1"}}]},
            "messages[0].audio",
            "`audio` in a message whose role is assistant",
        ),
        (
            {"messages": [{"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}}]},
            "messages[0].function_call",
            "`function_call` in a message whose role is assistant",
        ),
        (
            {
                "messages": [
                    {"role": "assistant", "tool_calls": [{"id": "c", "type": "custom", "custom": {"name": "x"}}]}
                ]
            },
            "messages[0].tool_calls[0].type",
            "a tool call of type `custom`",
        ),
        (
            {"messages": [{"role": "tool", "tool_call_id": "c", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0].type",
            "a content part of type `image_url` here",
        ),
        (
            {"messages": [{"role": "user", "content": [{"text": "Hello"}]}]},
            "messages[0].content[0].type",
            "a content part of type missing here",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": 5, "text": "Hello"}]}]},
            "messages[0].content[0].type",
            "a content part of type not a string here",
        ),
        (
            {"messages": [{"role": "tool", "tool_call_id": "c", "content": ["12 degrees"]}]},
            "messages[0].content[0].type",
            "a content part of type missing here",
        ),
        (
            {"messages": [{"role": ["user"], "content": "Hello"}]},
            "messages[0].role",
            "a message whose role is not a string",
        ),
    ],
)
def test_tools_parts_and_messages_it_cannot_map_are_refused(payload, param, what) -> None:
    error = refusal({"messages": HELLO, **payload})
    assert (error.status, error.code, error.param) == (400, "unsupported_by_bridge", param)
    assert error.message == (
        "This model serves only the Responses API, to which the gateway translates chat completions; it cannot "
        f"translate {what} (`{param}`)."
    )


@pytest.mark.parametrize(
    ("payload", "param", "what"),
    [
        ({"messages": []}, "messages", "a non-empty array of messages"),
        ({"messages": "Hello"}, "messages", "a non-empty array of messages"),
        ({"messages": ["Hello"]}, "messages[0]", "a message object"),
        ({"messages": [{"role": "tool", "content": "1"}]}, "messages[0].tool_call_id", "a string"),
        (
            {"messages": [{"role": "user", "content": 5}]},
            "messages[0].content",
            "a string or an array of content parts",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "u"}]}]},
            "messages[0].content[0].image_url",
            "an object with a `url`",
        ),
        ({"tools": {"type": "function"}}, "tools", "an array of tools"),
        (
            {"tools": [{"type": "function", "function": {"description": "no name"}}]},
            "tools[0].function",
            "an object with a `name`",
        ),
        ({"tool_choice": "any"}, "tool_choice", "none, auto, required or an object"),
        ({"tool_choice": 1}, "tool_choice", "a string or an object"),
        (
            {"tool_choice": {"type": "function", "name": "f"}},
            "tool_choice.function",
            "an object with a `name`",
        ),  # the Responses form
        (
            {"tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": []}},
            "tool_choice.allowed_tools",
            "an object with `mode` and `tools`",
        ),
        ({"tools": ["get_weather"]}, "tools[0]", "a tool object"),
        ({"response_format": "json"}, "response_format", "an object"),
        (
            {"messages": [{"role": "assistant", "tool_calls": {"id": "c"}}]},
            "messages[0].tool_calls",
            "an array of tool calls",
        ),
        ({"messages": [{"role": "assistant", "tool_calls": ["c"]}]}, "messages[0].tool_calls[0]", "a tool call object"),
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"type": "function"}]}]},
            "messages[0].tool_calls[0]",
            "a function tool call with an `id` and a `function` naming it",
        ),
        (
            {"messages": [{"role": "assistant", "content": {"text": "a"}}]},
            "messages[0].content",
            "a string or an array of content parts",
        ),
        (
            {"messages": [{"role": "assistant", "content": [{"type": "refusal"}]}]},
            "messages[0].content[0].refusal",
            "a string",
        ),
        ({"messages": [{"role": "user", "content": ["Hello"]}]}, "messages[0].content[0]", "a content part object"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]},
            "messages[0].content[0].text",
            "a string",
        ),
        (
            {"messages": [{"role": "user", "content": [{"type": "file", "file": "f"}]}]},
            "messages[0].content[0].file",
            "an object",
        ),
        (
            {"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}},
            "response_format.json_schema",
            "an object with a `name`",
        ),
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"type": "function", "function": {"name": "f"}}]}]},
            "messages[0].tool_calls[0]",
            "a function tool call with an `id` and a `function` naming it",
        ),
        (
            {
                "tool_choice": {
                    "type": "allowed_tools",
                    "allowed_tools": {"mode": "auto", "tools": [{"type": "function"}]},
                }
            },
            "tool_choice.allowed_tools.tools[0].function",
            "an object with a `name`",
        ),
    ],
)
def test_a_shape_the_bridge_must_read_and_cannot_is_an_invalid_request(payload, param, what) -> None:
    error = refusal({"messages": HELLO, **payload})
    assert (error.status, error.code, error.param) == (400, "invalid_type", param)
    assert error.message == f"`{param}` must be {what}."


# -- the whole answer

USAGE = {
    "input_tokens": 36,
    "input_tokens_details": {"cached_tokens": 12},
    "output_tokens": 87,
    "output_tokens_details": {"reasoning_tokens": 64},
    "total_tokens": 123,
}
CHAT_USAGE = {
    "prompt_tokens": 36,
    "completion_tokens": 87,
    "total_tokens": 123,
    "prompt_tokens_details": {"cached_tokens": 12},
    "completion_tokens_details": {"reasoning_tokens": 64},
}


def a_response(output: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """A Responses `response` object as the spec's examples show it."""
    return {
        "id": "resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41",
        "object": "response",
        "created_at": 1741476777,
        "status": "completed",
        "error": None,
        "incomplete_details": None,
        "instructions": None,
        "max_output_tokens": None,
        "model": "gpt-5-codex",
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "reasoning": {"effort": "medium", "summary": None},
        "store": False,
        "temperature": 1.0,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [],
        "top_p": 1.0,
        "truncation": "disabled",
        "usage": USAGE,
        "user": None,
        "metadata": {},
        **fields,
    }


REASONING = {"type": "reasoning", "id": "rs_1", "summary": []}


def message(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "id": "msg_1", "status": "completed", "role": "assistant", "content": list(parts)}


def text(value: str) -> dict[str, Any]:
    return {"type": "output_text", "text": value, "annotations": []}


def function_call(call_id: str, name: str, arguments: str) -> dict[str, Any]:
    item_id = "fc_" + call_id
    return {
        "type": "function_call",
        "id": item_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": "completed",
    }


def test_a_text_answer_becomes_a_chat_completion() -> None:
    response = a_response([REASONING, message(text("Hello"), text(" there."))], service_tier="default")
    assert response_to_chat(response) == {
        "id": "resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41",
        "object": "chat.completion",
        "created": 1741476777,
        "model": "gpt-5-codex",
        "service_tier": "default",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hello there.", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": CHAT_USAGE,
    }


def test_function_calls_become_tool_calls() -> None:
    calls = [function_call("call_1", "get_weather", '{"city":"Oslo"}'), function_call("call_2", "get_time", "{}")]
    choice = response_to_chat(a_response([REASONING, *calls]))["choices"][0]
    assert choice == {
        "index": 0,
        "message": {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Oslo"}'},
                },
                {"id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}},
            ],
        },
        "logprobs": None,
        "finish_reason": "tool_calls",
    }


def test_a_refusal_is_the_messages_refusal() -> None:
    refused = message({"type": "refusal", "refusal": "I can't help with that."})
    assert response_to_chat(a_response([refused]))["choices"][0]["message"] == {
        "role": "assistant",
        "content": None,
        "refusal": "I can't help with that.",
    }


def test_text_said_beside_tool_calls_or_a_refusal_is_kept() -> None:
    response = a_response([message(text("Let me check.")), function_call("call_1", "get_weather", "{}")])
    said = response_to_chat(response)["choices"][0]["message"]
    assert said["content"] == "Let me check." and [call["id"] for call in said["tool_calls"]] == ["call_1"]
    refused = message(text("Here is part of it."), {"type": "refusal", "refusal": "Not the rest."})
    assert response_to_chat(a_response([refused]))["choices"][0]["message"] == {
        "role": "assistant",
        "content": "Here is part of it.",
        "refusal": "Not the rest.",
    }


def test_refusal_parts_are_joined_and_parts_neither_text_nor_refusal_are_skipped() -> None:
    parts = [
        {"type": "refusal", "refusal": "I can't"},
        "not a part",  # skipped, and the parts after it still read
        {"type": "reasoning_text", "text": "hmm", "refusal": "x"},  # carries both keys, is neither
        {"type": "output_text", "text": None},
        {"type": "refusal", "refusal": None},
        text("Hi"),
        {"type": "refusal", "refusal": " do that."},
    ]
    assert response_to_chat(a_response([message(*parts)]))["choices"][0]["message"] == {  # type: ignore[arg-type]
        "role": "assistant",
        "content": "Hi",
        "refusal": "I can't do that.",
    }


def test_a_function_call_that_names_no_call_id_name_or_arguments_has_them_empty() -> None:
    choice = response_to_chat(a_response([{"type": "function_call"}]))["choices"][0]
    assert choice["message"]["tool_calls"] == [
        {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
    ]
    assert choice["finish_reason"] == "tool_calls"


def test_a_response_without_id_time_or_model_answers_with_empty_ones() -> None:
    assert response_to_chat({"output": [message(text("Hi"))], "service_tier": None}) == {
        "id": "",
        "object": "chat.completion",
        "created": 0,
        "model": "",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "Hi", "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
    }


@pytest.mark.parametrize(
    ("details", "output", "reason"),
    [
        ({"reason": "max_output_tokens"}, [message(text("Hel"))], "length"),
        ({"reason": "content_filter"}, [message(text("Hel"))], "content_filter"),
        ({"reason": "max_output_tokens"}, [function_call("c", "f", '{"a":')], "length"),  # cut short first
        (None, [REASONING], "length"),
    ],
)
def test_an_incomplete_response_finishes_for_its_reason(details, output, reason) -> None:
    chat = response_to_chat(a_response(output, status="incomplete", incomplete_details=details))
    assert chat["choices"][0]["finish_reason"] == reason


def test_usage_without_details_or_total_keeps_what_there_is() -> None:
    usage = {"input_tokens": 5, "output_tokens": 2}
    chat = response_to_chat(a_response([message(text(""))], usage=usage))
    assert chat["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    assert chat["choices"][0]["message"]["content"] == ""
    assert "usage" not in response_to_chat(a_response([], usage=None))
    for usage, expected in (
        ({"output_tokens": 2}, {"prompt_tokens": None, "completion_tokens": 2, "total_tokens": None}),
        ({"total_tokens": 9}, {"prompt_tokens": None, "completion_tokens": None, "total_tokens": 9}),
        # The upstream's total as it counted it, not recomputed.
        (
            {"input_tokens": 5, "output_tokens": 2, "total_tokens": 9},
            {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 9},
        ),
    ):
        assert response_to_chat(a_response([], usage=usage))["usage"] == expected, usage


@pytest.mark.parametrize(
    ("response", "says"),
    [
        (
            a_response([], status="failed", error={"code": "server_error", "message": "The model failed."}),
            "failed the response (server_error: The model failed.)",
        ),
        (a_response([], status="failed", error=None), "failed the response"),
        (a_response([], status="in_progress"), "answered with a response whose status is `in_progress`"),
        (a_response([], status="cancelled"), "answered with a response whose status is `cancelled`"),
        (a_response({"type": "message"}), "answered with a response whose output is not a list of objects"),  # type: ignore[arg-type]
        (a_response(["text"]), "answered with a response whose output is not a list of objects"),  # type: ignore[list-item]
    ],
)
def test_a_response_that_is_not_a_finished_answer_is_a_bad_gateway(response, says) -> None:
    with pytest.raises(GatewayError) as caught:
        checked_response(response, "codex")
    assert (caught.value.status, caught.value.code) == (502, "upstream_bad_response")
    assert caught.value.message == f"The upstream for group `codex` {says}."


def test_a_finished_response_is_read() -> None:
    for response in (a_response([]), a_response([], status="incomplete"), {"output": None}):
        assert checked_response(response, "codex") is response


# -- the stream

CREATED = a_response([], status="in_progress", usage=None)


def sse(*events: dict[str, Any]) -> bytes:
    """Responses stream events as Azure sends them: `event:` names the data's type; no [DONE]."""
    return b"".join(
        b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps({**e, "sequence_number": n}) + b"\n\n"
        for n, e in enumerate(events)
    )


def text_stream(words: list[str], done: dict[str, Any]) -> bytes:
    """A text answer's events, as the simulator and the spec's examples order them."""
    where = {"item_id": "msg_1", "output_index": 1, "content_index": 0}
    whole = "".join(words)
    return sse(
        {"type": "response.created", "response": CREATED},
        {"type": "response.in_progress", "response": CREATED},
        {"type": "response.output_item.added", "output_index": 0, "item": REASONING},
        {"type": "response.output_item.done", "output_index": 0, "item": REASONING},
        {"type": "response.output_item.added", "output_index": 1, "item": {**message(), "status": "in_progress"}},
        {"type": "response.content_part.added", **where, "part": text("")},
        *({"type": "response.output_text.delta", **where, "delta": w, "logprobs": []} for w in words),
        {"type": "response.output_text.done", **where, "text": whole, "logprobs": []},
        {"type": "response.content_part.done", **where, "part": text(whole)},
        {"type": "response.output_item.done", "output_index": 1, "item": message(text(whole))},
        done,
    )


def chunks(out: bytes) -> list[Any]:
    """The chat events sent: each one `data: ` line, JSON or [DONE]."""
    events = out.split(b"\n\n")
    assert events[-1] == b""
    assert all(event.startswith(b"data: ") and b"\n" not in event for event in events[:-1])
    return [e[6:].decode() if e == b"data: [DONE]" else orjson.loads(e[6:]) for e in events[:-1]]


def fed(transform: ChatChunksFromResponseEvents, stream: bytes, piece: int = 7) -> bytes:
    """`stream` fed in small pieces, as the network may cut it."""
    return b"".join(transform.feed(stream[i : i + piece]) for i in range(0, len(stream), piece))


def deltas(events: list[Any]) -> list[Any]:
    return [event["choices"][0]["delta"] for event in events if isinstance(event, dict) and event.get("choices")]


COMPLETED = {"type": "response.completed", "response": a_response([REASONING, message(text("Hello there"))])}


def test_text_deltas_become_chat_chunks_ending_in_done() -> None:
    transform = ChatChunksFromResponseEvents("codex", include_usage=False)
    events = chunks(fed(transform, text_stream(["Hel", "lo", " there"], COMPLETED)))
    assert events[-1] == "[DONE]"
    assert all(set(e) == {"id", "object", "created", "model", "choices"} for e in events[:-1])  # no usage key
    assert {(e["id"], e["object"], e["created"], e["model"]) for e in events[:-1]} == {
        ("resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41", "chat.completion.chunk", 1741476777, "gpt-5-codex")
    }
    assert [e["choices"] for e in events[:-1]] == [
        [
            {
                "index": 0,
                "delta": {"role": "assistant", "content": "", "refusal": None},
                "logprobs": None,
                "finish_reason": None,
            }
        ],
        [{"index": 0, "delta": {"content": "Hel"}, "logprobs": None, "finish_reason": None}],
        [{"index": 0, "delta": {"content": "lo"}, "logprobs": None, "finish_reason": None}],
        [{"index": 0, "delta": {"content": " there"}, "logprobs": None, "finish_reason": None}],
        [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}],
    ]
    assert transform.splitter.done
    assert transform.finish() == b""
    assert transform.counted_usage() == (Usage(36, 87, 123, "gpt-5-codex", 12, 64), False)


def test_the_usage_chunk_comes_only_when_the_caller_asked_and_then_every_chunk_has_usage() -> None:
    transform = ChatChunksFromResponseEvents("codex", include_usage=True)
    events = chunks(transform.feed(text_stream(["Hi"], COMPLETED)))
    assert [e["usage"] for e in events[:-2]] == [None, None, None]
    assert events[-2] == {
        "id": "resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41",
        "object": "chat.completion.chunk",
        "created": 1741476777,
        "model": "gpt-5-codex",
        "choices": [],
        "usage": CHAT_USAGE,
    }
    assert events[-1] == "[DONE]"


def test_a_function_call_streams_as_tool_call_deltas() -> None:
    call = function_call("call_1", "get_weather", '{"city":"Oslo"}')
    second = function_call("call_2", "get_time", "{}")
    at = {"item_id": "fc_call_1", "output_index": 1}
    stream = sse(
        {"type": "response.created", "response": CREATED},
        {"type": "response.output_item.added", "output_index": 0, "item": REASONING},
        {
            "type": "response.output_item.added",
            "output_index": 1,
            "item": {**call, "arguments": "", "status": "in_progress"},
        },
        {"type": "response.function_call_arguments.delta", **at, "delta": '{"city":'},
        {"type": "response.function_call_arguments.delta", **at, "delta": '"Oslo"}'},
        {"type": "response.function_call_arguments.done", **at, "name": "get_weather", "arguments": '{"city":"Oslo"}'},
        {"type": "response.output_item.done", "output_index": 1, "item": call},
        {"type": "response.output_item.added", "output_index": 2, "item": {**second, "arguments": ""}},
        {"type": "response.function_call_arguments.delta", "item_id": "fc_call_2", "output_index": 2, "delta": "{}"},
        {"type": "response.output_item.done", "output_index": 2, "item": second},
        {"type": "response.completed", "response": a_response([REASONING, call, second])},
    )
    transform = ChatChunksFromResponseEvents("codex", include_usage=False)
    events = chunks(fed(transform, stream))
    assert deltas(events) == [
        {"role": "assistant", "content": "", "refusal": None},
        {
            "tool_calls": [
                {"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
            ]
        },
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '"Oslo"}'}}]},
        {
            "tool_calls": [
                {"index": 1, "id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": ""}}
            ]
        },
        {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]},
        {},
    ]
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert events[-1] == "[DONE]"


def test_function_calls_without_ids_or_names_stream_each_by_its_output_index() -> None:
    """Items and events that name no item id are matched by their output index; a call's missing name and call id
    are sent empty."""
    stream = sse(
        {"type": "response.created", "response": CREATED},
        {"type": "response.output_item.added", "output_index": 0, "item": {"type": "function_call", "arguments": ""}},
        {"type": "response.output_item.added", "output_index": 1, "item": {"type": "function_call", "arguments": ""}},
        {"type": "response.function_call_arguments.delta", "output_index": 0, "delta": '{"a":'},
        {"type": "response.function_call_arguments.delta", "output_index": 1, "delta": "{}"},
        {"type": "response.function_call_arguments.delta", "output_index": 0, "delta": "1}"},
        {
            "type": "response.output_item.done",
            "output_index": 0,
            "item": {"type": "function_call", "arguments": '{"a":1}'},
        },
        {"type": "response.output_item.done", "output_index": 1, "item": {"type": "function_call", "arguments": "{}"}},
        {"type": "response.completed", "response": a_response([])},
    )
    events = chunks(ChatChunksFromResponseEvents("codex", include_usage=False).feed(stream))
    header = {"id": "", "type": "function", "function": {"name": "", "arguments": ""}}
    assert deltas(events)[1:] == [
        {"tool_calls": [{"index": 0, **header}]},
        {"tool_calls": [{"index": 1, **header}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]},
        {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]},
        {},
    ]


def test_a_tool_call_sent_back_without_arguments_goes_with_empty_arguments() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f"}}
    conversation = [*HELLO, {"role": "assistant", "tool_calls": [call]}]
    assert chat_to_responses({"messages": conversation}, "dep")["input"][1] == {
        "type": "function_call",
        "call_id": "call_1",
        "name": "f",
        "arguments": "",
    }


def test_what_only_a_done_event_carries_is_sent_once() -> None:
    """No deltas (or fewer than the whole): the done events' whole values make up the rest."""
    call = function_call("call_1", "f", '{"a":1}')
    where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    stream = sse(
        {"type": "response.created", "response": CREATED},
        {"type": "response.output_text.delta", **where, "delta": "Hel"},
        {"type": "response.output_text.done", **where, "text": "Hello"},
        {"type": "response.refusal.done", **where, "content_index": 1, "refusal": "No."},
        {"type": "response.output_item.done", "output_index": 1, "item": call},
        {"type": "response.output_item.done", "output_index": 1, "item": call},  # repeated: nothing more
        {"type": "response.completed", "response": a_response([])},
    )
    events = chunks(ChatChunksFromResponseEvents("codex", include_usage=False).feed(stream))
    assert deltas(events) == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": "Hel"},
        {"content": "lo"},
        {"refusal": "No."},
        {"tool_calls": [{"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]},
        {"tool_calls": [{"index": 0, "function": {"arguments": '{"a":1}'}}]},
        {},
    ]
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls"


def test_a_refusal_streams_as_refusal_deltas() -> None:
    where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    refused = a_response([message({"type": "refusal", "refusal": "I can't."})])
    stream = sse(
        {"type": "response.created", "response": CREATED},
        {"type": "response.refusal.delta", **where, "delta": "I can"},
        {"type": "response.refusal.delta", **where, "delta": "'t."},
        {"type": "response.refusal.done", **where, "refusal": "I can't."},
        {"type": "response.completed", "response": refused},
    )
    events = chunks(ChatChunksFromResponseEvents("codex", include_usage=False).feed(stream))
    assert deltas(events)[1:] == [{"refusal": "I can"}, {"refusal": "'t."}, {}]
    assert events[-2]["choices"][0]["finish_reason"] == "stop"


def test_each_parts_text_is_made_up_from_its_own_deltas() -> None:
    """A done event's whole text is matched with the deltas of the same item and part only."""

    def part(item_id: str, index: int) -> dict[str, Any]:
        return {"item_id": item_id, "output_index": 0, "content_index": index}

    stream = sse(
        {"type": "response.created", "response": CREATED},
        {"type": "response.output_text.delta", **part("msg_1", 0), "delta": "Hel"},
        {"type": "response.output_text.done", **part("msg_1", 0), "text": "Hello"},
        {"type": "response.output_text.delta", **part("msg_1", 1), "delta": "Wor"},
        {"type": "response.output_text.done", **part("msg_1", 1), "text": "World"},
        {"type": "response.output_text.delta", **part("msg_2", 0), "delta": "Bye"},
        {"type": "response.output_text.done", **part("msg_2", 0), "text": "Bye!"},
        {"type": "response.completed", "response": a_response([])},
    )
    events = chunks(ChatChunksFromResponseEvents("codex", include_usage=False).feed(stream))
    assert [delta.get("content") for delta in deltas(events)[1:-1]] == ["Hel", "lo", "Wor", "ld", "Bye", "!"]


@pytest.mark.parametrize("kind", ["response.created", "response.in_progress", "response.queued"])
def test_the_first_response_event_sends_the_role_chunk_with_its_ids(kind) -> None:
    out = ChatChunksFromResponseEvents("codex", include_usage=False).feed(sse({"type": kind, "response": CREATED}))
    assert chunks(out) == [
        {
            "id": "resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41",
            "object": "chat.completion.chunk",
            "created": 1741476777,
            "model": "gpt-5-codex",
            "choices": [
                {
                    "index": 0,
                    "delta": {"role": "assistant", "content": "", "refusal": None},
                    "logprobs": None,
                    "finish_reason": None,
                }
            ],
        }
    ]


def ids(events: list[Any]) -> set[tuple[Any, Any, Any]]:
    return {(e["id"], e["created"], e["model"]) for e in events if isinstance(e, dict)}


def test_every_chunk_carries_the_first_response_events_ids_whatever_later_ones_say() -> None:
    later = {"id": "resp_other", "created_at": 1741476999, "model": "gpt-5-codex-2025-09-15"}
    stream = sse(
        {"type": "response.created", "response": CREATED},
        {"type": "response.in_progress", "response": {**CREATED, **later}},
        {"type": "response.output_text.delta", "item_id": "msg_1", "content_index": 0, "delta": "Hi"},
        {"type": "response.completed", "response": a_response([message(text("Hi"))], **later)},
    )
    events = chunks(ChatChunksFromResponseEvents("codex", include_usage=False).feed(stream))
    assert len(events) == 4 and ids(events) == {
        ("resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41", 1741476777, "gpt-5-codex")
    }


def test_a_stream_that_starts_with_its_answer_has_empty_ids_in_every_chunk() -> None:
    """No response event came first to name them: the chunks already sent cannot change, so none does."""
    stream = sse(
        {"type": "response.output_text.delta", "item_id": "msg_1", "content_index": 0, "delta": "Hi"},
        {"type": "response.completed", "response": a_response([message(text("Hi"))])},
    )
    events = chunks(ChatChunksFromResponseEvents("codex", include_usage=False).feed(stream))
    assert deltas(events) == [{"role": "assistant", "content": "", "refusal": None}, {"content": "Hi"}, {}]
    assert ids(events) == {("", 0, "")}


def test_a_stream_that_is_only_its_end_takes_its_ids_and_finish_from_the_response() -> None:
    """The function call is only in the final response's output: the answer still finishes in tool_calls."""
    completed = a_response([REASONING, function_call("call_1", "f", "{}")])
    events = chunks(
        ChatChunksFromResponseEvents("codex", include_usage=False).feed(
            sse({"type": "response.completed", "response": completed})
        )
    )
    assert deltas(events) == [{"role": "assistant", "content": "", "refusal": None}, {}]
    assert events[-2]["choices"][0]["finish_reason"] == "tool_calls" and events[-1] == "[DONE]"
    assert ids(events) == {("resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41", 1741476777, "gpt-5-codex")}


def test_an_end_event_without_its_response_still_ends_the_stream() -> None:
    transform = ChatChunksFromResponseEvents("codex", include_usage=True)
    events = chunks(transform.feed(sse({"type": "response.completed", "response": None})))
    assert deltas(events) == [{"role": "assistant", "content": "", "refusal": None}, {}]
    assert events[-2]["choices"][0]["finish_reason"] == "stop" and events[-1] == "[DONE]"
    assert ids(events) == {("", 0, "")}
    assert transform.finish() == b"" and transform.usage is None


def test_an_incomplete_response_ends_the_stream_with_its_reason() -> None:
    incomplete = a_response([], status="incomplete", incomplete_details={"reason": "max_output_tokens"})
    events = chunks(
        ChatChunksFromResponseEvents("codex", include_usage=False).feed(
            text_stream(["Hel"], {"type": "response.incomplete", "response": incomplete})
        )
    )
    assert events[-2]["choices"][0]["finish_reason"] == "length"
    assert events[-1] == "[DONE]"


def test_nothing_after_the_responses_end_is_read() -> None:
    transform = ChatChunksFromResponseEvents("codex", include_usage=False)
    late = sse({"type": "response.output_text.delta", "item_id": "m", "content_index": 0, "delta": "late"})
    out = transform.feed(text_stream(["Hi"], COMPLETED) + late)
    assert b"late" not in out and chunks(out)[-1] == "[DONE]"
    assert transform.splitter.done and transform.feed(late) == b""


@pytest.mark.parametrize(
    ("failure", "says"),
    [
        (
            {"type": "error", "code": "server_error", "message": "Something went wrong", "param": None},
            "failed the response (server_error: Something went wrong)",
        ),
        (
            {
                "type": "response.failed",
                "response": a_response(
                    [],
                    status="failed",
                    usage=None,
                    error={"code": "server_error", "message": "The model failed to generate a response."},
                ),
            },
            "failed the response (server_error: The model failed to generate a response.)",
        ),
        ({"type": "error"}, "failed the response"),
        ({"type": "response.failed", "response": None}, "failed the response"),
    ],
)
def test_a_failed_response_ends_the_stream_in_an_error_the_relay_sends(failure, says) -> None:
    transform = ChatChunksFromResponseEvents("codex", include_usage=True)
    where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    out = transform.feed(
        sse(
            {"type": "response.created", "response": CREATED},
            {"type": "response.output_text.delta", **where, "delta": "Hi"},
            failure,
        )
    )
    assert deltas(chunks(out)) == [{"role": "assistant", "content": "", "refusal": None}, {"content": "Hi"}]
    assert transform.splitter.done
    with pytest.raises(GatewayError) as caught:
        transform.finish()
    assert (caught.value.status, caught.value.code) == (502, "upstream_bad_response")
    assert caught.value.message == f"The upstream for group `codex` {says}."


def test_a_stream_that_ends_before_its_response_does_is_an_error_counted_by_estimate() -> None:
    transform = ChatChunksFromResponseEvents("codex", include_usage=False, prompt=b"x" * 40)
    where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    stream = sse(
        {"type": "response.created", "response": CREATED},
        *({"type": "response.output_text.delta", **where, "delta": w} for w in ("a", "b", "c")),
    )
    transform.feed(stream + b"event: response.output_text.delta\ndata: {")
    with pytest.raises(GatewayError) as caught:
        transform.finish()
    assert caught.value.code == "upstream_closed_connection"
    assert caught.value.message == (
        "The upstream for group `codex` closed the connection before its answer was complete."
    )
    assert transform.counted_usage() == (Usage(10, 3, 13), True)


def test_a_failed_or_incomplete_response_counts_the_usage_it_reports_whatever_its_metadata_says() -> None:
    where = {"item_id": "msg_1", "output_index": 0, "content_index": 0}
    metadata = {"usage": '{"input_tokens": 0}', "model": "not-it"}
    for kind, status in (("response.failed", "failed"), ("response.incomplete", "incomplete")):
        transform = ChatChunksFromResponseEvents("codex", include_usage=False, prompt=b"x" * 40)
        last = a_response([], status=status, metadata=metadata, error={"code": "server_error", "message": "Boom."})
        transform.feed(
            sse(
                {"type": "response.created", "response": CREATED},
                {"type": "response.output_text.delta", **where, "delta": "Hi"},
                {"type": kind, "response": last},
            )
        )
        assert transform.counted_usage() == (Usage(36, 87, 123, "gpt-5-codex", 12, 64), False), kind


# -- the translator


def bridge(payload: dict[str, Any], *, count_usage: bool = False, **overrides: Any) -> ChatViaResponses:
    client = ClientRequest("chat/completions", orjson.dumps(payload), payload, stream=payload.get("stream") is True)
    return ChatViaResponses(replace(BACKEND, **overrides), client, count_usage=count_usage, normalize_streams=True)


def test_the_translator_asks_the_deployment_through_the_resource_level_responses_api() -> None:
    translator = bridge({"model": "gpt-5-codex", "messages": HELLO, "stream": True, "seed": 1}, count_usage=True)
    assert translator.upstream_operation == "responses"
    # The Responses API lives at the resource: the URL names no deployment, the body's model does.
    assert translator.upstream_url() == "https://r.openai.azure.com/openai/responses?api-version=2025-04-01-preview"
    assert translator.adjusted == []
    # The gateway counts tokens but asks upstream for nothing: response.completed always carries the usage.
    assert orjson.loads(translator.body()) == {
        "model": "gpt-5-codex-dep",
        "input": [{"type": "message", "role": "user", "content": "Hello"}],
        "stream": True,
        "store": False,
    }
    assert translator.adjusted == ["chat/completions->responses"]  # what the caller and the access log are told


def test_drop_params_spare_the_client_a_refusal_and_add_params_go_in_the_responses_body() -> None:
    payload = {"model": "m", "messages": HELLO, "stop": ["x"], "temperature": 1}
    translator = bridge(
        payload, drop_params=frozenset({"stop", "temperature"}), add_params={"reasoning": {"summary": "auto"}}
    )
    assert orjson.loads(translator.body()) == {
        "model": "gpt-5-codex-dep",
        "input": [{"type": "message", "role": "user", "content": "Hello"}],
        "store": False,
        "reasoning": {"summary": "auto"},
    }
    with pytest.raises(GatewayError) as caught:
        bridge(payload).body()
    assert caught.value.param == "stop"


def chosen(*, fit: Fit | None, operation: str = "chat/completions", **overrides: Any) -> type:
    payload = {"model": "m", "messages": HELLO}
    client = ClientRequest(operation, orjson.dumps(payload), payload, stream=False)
    backend = replace(BACKEND, **overrides)
    return type(for_deployment(backend, client, count_usage=False, normalize_streams=True, fit=fit))


def test_the_bridge_serves_the_chat_completions_of_a_responses_only_model_that_has_a_resource() -> None:
    responses_only = Fit.of(family_of("gpt-5-codex"))
    assert responses_only.responses_only
    assert chosen(fit=responses_only) is ChatViaResponses
    assert chosen(fit=responses_only, force_prompt=True) is ChatViaResponses  # it refuses completions too
    assert chosen(fit=replace(Fit(), responses_only=True)) is ChatViaResponses  # learned from a refusal
    assert chosen(fit=Fit.of(family_of("gpt-5-mini"))) is DeploymentTranslator
    assert chosen(fit=None) is DeploymentTranslator  # fitToModel: false
    assert chosen(fit=responses_only, responses_url=None) is DeploymentTranslator  # serverless: Azure answers
    assert chosen(fit=responses_only, operation="embeddings") is DeploymentTranslator


def test_the_bridge_fits_the_request_to_the_reasoning_model_first() -> None:
    payload = {"model": "m", "messages": HELLO, "temperature": 0.2, "max_tokens": 50, "logprobs": True}
    client = ClientRequest("chat/completions", orjson.dumps(payload), payload, stream=False)
    translator = ChatViaResponses(
        BACKEND, client, count_usage=False, normalize_streams=True, fit=Fit.of(family_of("gpt-5-codex"))
    )
    body = orjson.loads(translator.body())
    # Fitted: max_tokens renamed, then mapped; what the model refuses is left out, not refused by the bridge.
    assert body == {"model": "gpt-5-codex-dep", "input": [HELLO_ITEM], "max_output_tokens": 50, "store": False}
    assert translator.adjusted == [
        "chat/completions->responses",
        "max_tokens->max_completion_tokens",
        "-temperature",
        "-logprobs",
    ]


def test_a_v1_group_gets_the_deployment_in_the_body_too() -> None:
    translator = bridge({"model": "m", "messages": HELLO}, flavor="v1", base_url="https://r.openai.azure.com/openai/v1")
    assert orjson.loads(translator.body())["model"] == "gpt-5-codex-dep"


def test_the_translator_answers_with_the_chat_completion() -> None:
    response = a_response([message(text("Hi"))])
    answer = orjson.loads(bridge({"messages": HELLO}).answer(orjson.dumps(response)))
    assert answer == response_to_chat(response)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"[]", "answered with a body that is not a JSON object"),
        (b"nope", "answered with a body that is not a JSON object"),
        (orjson.dumps(a_response([], status="failed")), "failed the response"),
    ],
)
def test_an_answer_that_is_no_finished_response_is_a_bad_gateway(body, says) -> None:
    with pytest.raises(GatewayError) as caught:
        bridge({"messages": HELLO}).answer(body)
    assert (caught.value.status, caught.value.code) == (502, "upstream_bad_response")
    assert caught.value.message == f"The upstream for group `codex` {says}."


def test_the_translator_streams_usage_only_when_the_caller_asked() -> None:
    assert bridge({"messages": HELLO}).events() is None
    silent = bridge({"messages": HELLO, "stream": True}, count_usage=True).events()
    asked = bridge({"messages": HELLO, "stream": True, "stream_options": {"include_usage": True}}).events()
    assert silent is not None and asked is not None
    assert b'"usage"' not in silent.feed(text_stream(["Hi"], COMPLETED))
    assert silent.counted_usage() == (Usage(36, 87, 123, "gpt-5-codex", 12, 64), False)  # counted all the same
    assert b'"choices":[],"usage":{' in asked.feed(text_stream(["Hi"], COMPLETED))


def test_the_translators_stream_names_its_group_when_it_fails_and_is_estimated_when_cut_short() -> None:
    failing = bridge({"messages": HELLO, "stream": True}).events()
    assert failing is not None
    failing.feed(sse({"type": "error", "code": "server_error", "message": "Boom."}))
    with pytest.raises(GatewayError) as caught:
        failing.finish()
    assert caught.value.message == "The upstream for group `codex` failed the response (server_error: Boom.)."
    cut = bridge({"messages": HELLO, "stream": True}, count_usage=True).events()
    assert cut is not None
    cut.feed(sse({"type": "response.created", "response": CREATED}))
    usage, estimated = cut.counted_usage()
    assert estimated and usage is not None and usage.completion_tokens == 0


def test_a_serverless_group_names_the_clients_model_and_none_when_it_names_none() -> None:
    """A serverless group has no deployment name: the body's `model` is the client's, or empty when it is not a
    string."""
    for payload, model in (({"model": "gpt-5-codex"}, "gpt-5-codex"), ({"model": 5}, ""), ({}, "")):
        translator = bridge({**payload, "messages": HELLO}, deployment=None)
        assert orjson.loads(translator.body())["model"] == model, payload


# -- through the relay


class Upstream:
    """The parts of an UpstreamResponse the relay uses: its body in chunks, then its end."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.released = self.closed = False

    async def next_chunk(self) -> bytes:
        return self.chunks.pop(0) if self.chunks else b""

    def release(self) -> None:
        self.released = True

    def close(self) -> None:
        self.closed = True


class Guard:
    def expect(self, *args: Any, **kwargs: Any) -> None:
        pass

    def claim(self) -> None:
        return None


def relayed(stream: bytes, *, include_usage: bool = False) -> tuple[bytes, AccessRecord, Upstream]:
    """What the relay sends the client of `stream`, the access record it fills, the upstream it read."""
    upstream = Upstream([stream[i : i + 50] for i in range(0, len(stream), 50)])
    record = AccessRecord(request_id="r", method="POST", path="/v1/chat/completions", stream=True, status=200)
    transform = ChatChunksFromResponseEvents("codex", include_usage=include_usage)
    relay = Relay(cast(Any, upstream), record, "codex", transform, ends_at=float("inf"))
    sent: list[dict[str, Any]] = []

    async def send(message: Any) -> None:
        sent.append(message)

    async def run() -> None:
        assert await relay.send_to(send, {"type": "http.response.start"}, cast(Any, Guard()))
        await relay.settle()

    asyncio.run(run())
    return b"".join(m.get("body", b"") for m in sent[1:]), record, upstream


def test_the_relay_ends_the_chat_stream_at_the_responses_end_and_counts_its_usage() -> None:
    body, record, upstream = relayed(text_stream(["Hel", "lo"], COMPLETED) + b": keep-alive\n\n", include_usage=True)
    events = chunks(body)
    assert "".join(d.get("content", "") for d in deltas(events)) == "Hello"
    assert events[-2]["usage"] == CHAT_USAGE and events[-1] == "[DONE]"
    assert (record.prompt_tokens, record.completion_tokens, record.total_tokens) == (36, 87, 123)
    assert record.response_model == "gpt-5-codex" and record.error_code is None
    assert upstream.released and not upstream.chunks  # read to its end after [DONE], for the pool


def test_the_relay_sends_a_failed_response_in_band_without_done() -> None:
    failed = a_response([], status="failed", usage=None, error={"code": "server_error", "message": "Boom."})
    body, record, _ = relayed(text_stream(["Hi"], {"type": "response.failed", "response": failed}))
    events = chunks(body)
    assert events[-1] == {
        "error": {
            "message": "The upstream for group `codex` failed the response (server_error: Boom.).",
            "type": "api_error",
            "param": None,
            "code": "upstream_bad_response",
        }
    }
    assert "[DONE]" not in events and deltas(events)[-1] == {"content": "Hi"}
    assert record.error_code == "upstream_bad_response"
