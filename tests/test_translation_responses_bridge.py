"""Chat completions served by a Responses-only deployment: the chat request as a Responses request, the
Responses answer (whole or streamed) as the chat completion the client asked for."""

from __future__ import annotations

from typing import Any

import pytest

from core.errors import GatewayError
from core.translation.responses_bridge import (
    chat_to_responses,
    checked_response,
    response_to_chat,
)

HELLO = [{"role": "user", "content": "Hello"}]


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
    ("name", "value"),
    [
        ("n", 2),
        ("logprobs", True),
        ("top_logprobs", 3),
        ("frequency_penalty", 0.5),
        ("presence_penalty", -1),
        ("stop", ["\n\n"]),
        ("stop", "END"),
        ("logit_bias", {"50256": -100}),
        ("modalities", ["text", "audio"]),
        ("audio", {"voice": "alloy", "format": "wav"}),
        ("prediction", {"type": "content", "content": "x"}),
        ("web_search_options", {}),
        ("functions", [{"name": "f"}]),
        ("function_call", "auto"),
        ("data_sources", [{"type": "azure_search"}]),  # Azure's chat-only extension
        ("user_security_context", {"application_name": "a"}),
    ],
)
def test_what_the_responses_api_cannot_express_is_refused_naming_the_parameter(name, value) -> None:
    error = refusal({"messages": HELLO, name: value})
    assert (error.status, error.code, error.param, error.type) == (
        400,
        "unsupported_by_bridge",
        name,
        "invalid_request_error",
    )
    assert f"(`{name}`)" in error.message and "Responses API" in error.message


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"tools": [{"type": "custom", "custom": {"name": "apply_patch"}}]}, "tools[0].type"),
        ({"tool_choice": {"type": "custom", "custom": {"name": "apply_patch"}}}, "tool_choice.type"),
        (
            {
                "tool_choice": {
                    "type": "allowed_tools",
                    "allowed_tools": {"mode": "auto", "tools": [{"type": "custom"}]},
                }
            },
            "tool_choice.allowed_tools.tools[0]",
        ),
        ({"response_format": {"type": "grammar"}}, "response_format.type"),
        (
            {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "UklG"}}]}]},
            "messages[0].content[0].type",
        ),
        (
            {"messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {"url": "u"}}]}]},
            "messages[0].content[0].type",
        ),
        ({"messages": [{"role": "function", "name": "f", "content": "1"}]}, "messages[0].role"),
        ({"messages": [{"role": "assistant", "audio": {"id": "audio_1"}}]}, "messages[0].audio"),
        (
            {"messages": [{"role": "assistant", "function_call": {"name": "f", "arguments": "{}"}}]},
            "messages[0].function_call",
        ),
        (
            {
                "messages": [
                    {"role": "assistant", "tool_calls": [{"id": "c", "type": "custom", "custom": {"name": "x"}}]}
                ]
            },
            "messages[0].tool_calls[0].type",
        ),
        (
            {"messages": [{"role": "tool", "tool_call_id": "c", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0].type",
        ),
    ],
)
def test_tools_parts_and_messages_it_cannot_map_are_refused(payload, param) -> None:
    error = refusal({"messages": HELLO, **payload})
    assert (error.status, error.code, error.param) == (400, "unsupported_by_bridge", param)


@pytest.mark.parametrize(
    ("payload", "param"),
    [
        ({"messages": []}, "messages"),
        ({"messages": "Hello"}, "messages"),
        ({"messages": ["Hello"]}, "messages[0]"),
        ({"messages": [{"role": "tool", "content": "1"}]}, "messages[0].tool_call_id"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages[0].content"),
        (
            {"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": "u"}]}]},
            "messages[0].content[0].image_url",
        ),
        ({"tools": {"type": "function"}}, "tools"),
        ({"tools": [{"type": "function", "function": {"description": "no name"}}]}, "tools[0].function"),
        ({"tool_choice": "any"}, "tool_choice"),
        ({"tool_choice": 1}, "tool_choice"),
        ({"tool_choice": {"type": "function", "name": "f"}}, "tool_choice.function"),  # the Responses form
        ({"tool_choice": {"type": "allowed_tools", "mode": "auto", "tools": []}}, "tool_choice.allowed_tools"),
        ({"tools": ["get_weather"]}, "tools[0]"),
        ({"response_format": "json"}, "response_format"),
        ({"messages": [{"role": "assistant", "tool_calls": {"id": "c"}}]}, "messages[0].tool_calls"),
        ({"messages": [{"role": "assistant", "tool_calls": ["c"]}]}, "messages[0].tool_calls[0]"),
        ({"messages": [{"role": "assistant", "tool_calls": [{"type": "function"}]}]}, "messages[0].tool_calls[0]"),
        ({"messages": [{"role": "assistant", "content": {"text": "a"}}]}, "messages[0].content"),
        ({"messages": [{"role": "assistant", "content": [{"type": "refusal"}]}]}, "messages[0].content[0].refusal"),
        ({"messages": [{"role": "user", "content": ["Hello"]}]}, "messages[0].content[0]"),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": 1}]}]}, "messages[0].content[0].text"),
        ({"messages": [{"role": "user", "content": [{"type": "file", "file": "f"}]}]}, "messages[0].content[0].file"),
        ({"response_format": {"type": "json_schema", "json_schema": {"schema": {}}}}, "response_format.json_schema"),
    ],
)
def test_a_shape_the_bridge_must_read_and_cannot_is_an_invalid_request(payload, param) -> None:
    error = refusal({"messages": HELLO, **payload})
    assert (error.status, error.code, error.param) == (400, "invalid_type", param)


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
