"""Chat completions (``chat/completions``): answers in the shape a model would give. A tool call when the request
asks for one (``tool_choice`` required or a named function; with ``auto``, when the last user message names a
tool), an instance of the schema for ``response_format: json_schema``, a JSON object for ``json_object``, and
otherwise the echo ``"Echo: " + last user text``; streamed as Azure streams each of them. The deployment's model
(``call.profile``) decides which parameters are refused and whether the usage counts reasoning tokens."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from ..json_schema import instance_of
from ..routing import Call
from ..streams import send_sse, stream_script
from ..wire import (
    CHOICE_FILTER,
    CHUNK_FILTER,
    PROMPT_FILTER_RESULTS,
    SYSTEM_FINGERPRINT,
    chat_usage,
    content_text,
    count_words,
    json_answer,
    last_user_text,
    next_id,
    wants_stream,
)
from .chat_params import check_chat_request


@dataclass(frozen=True, slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # JSON text, as the model writes it
    forced: bool  # tool_choice named the function: OpenAI then finishes with "stop", not "tool_calls"


async def chat_completions(call: Call) -> web.StreamResponse:
    """One choice: a tool call or content (see the module docstring), as Azure JSON or an Azure-flavoured stream.
    A reasoning model's usage counts its reasoning tokens (``models.REASONING_TOKENS``, by effort); a long prompt
    sent again, its cached tokens (``Store.cached_tokens``)."""
    checked = check_chat_request(call.body, call.profile, call.request.query.get("api-version"))
    messages = checked.messages
    tool_call = _tool_call(call.body, messages)
    answer = tool_call.arguments if tool_call is not None else _content(call.body, messages)
    texts = [content_text(m.get("content")) for m in messages]
    prompt_tokens = sum(count_words(text) for text in texts)
    cached_tokens = call.store.cached_tokens(call.model, "\n".join(texts), prompt_tokens)
    reasoning_tokens = call.profile.reasoning_tokens(checked.effort)
    usage = chat_usage(prompt_tokens, count_words(answer) + reasoning_tokens, reasoning_tokens, cached_tokens)
    response_id = next_id("chatcmpl-")
    finish_reason = "tool_calls" if tool_call is not None and not tool_call.forced else "stop"
    if wants_stream(call.body):
        if tool_call is None:
            opening_delta: dict[str, Any] = {"content": "", "refusal": None, "role": "assistant"}
            content_choice = _chat_content_choice
        else:
            opening_delta = {"content": None, "refusal": None, "role": "assistant", "tool_calls": [_opening(tool_call)]}
            content_choice = _arguments_choice
        script = stream_script(
            call,
            object_name="chat.completion.chunk",
            response_id=response_id,
            answer=answer,
            usage=usage,
            content_choice=content_choice,
            opening_choice={
                "content_filter_results": {},
                "delta": opening_delta,
                "finish_reason": None,
                "index": 0,
                "logprobs": None,
            },
            finish_choice={
                "content_filter_results": {},
                "delta": {},
                "finish_reason": finish_reason,
                "index": 0,
                "logprobs": None,
            },
            fingerprint=True,
        )
        return await send_sse(call, script)
    message: dict[str, Any] = {"content": answer, "refusal": None, "role": "assistant"}
    if tool_call is not None:
        function = {"name": tool_call.name, "arguments": tool_call.arguments}
        message.update(content=None, tool_calls=[{"id": tool_call.id, "type": "function", "function": function}])
    return json_answer(
        call.request,
        {
            "choices": [
                {
                    "content_filter_results": CHOICE_FILTER,
                    "finish_reason": finish_reason,
                    "index": 0,
                    "logprobs": None,
                    "message": message,
                }
            ],
            "created": int(time.time()),
            "id": response_id,
            "model": call.model,
            "object": "chat.completion",
            "prompt_filter_results": PROMPT_FILTER_RESULTS,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "usage": usage,
        },
    )


def _tool_call(body: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]) -> ToolCall | None:
    """The call a model would make: the named function, the first tool when one is required, the tool the last
    user message names under ``auto``; none after a tool's result (the model answers it) or with ``none``."""
    tools = {tool["function"]["name"]: tool["function"] for tool in body.get("tools") or ()}
    if not tools:
        return None
    choice = body.get("tool_choice", "auto")
    name: str | None = None
    if isinstance(choice, dict):
        name = choice["function"]["name"]
    elif choice == "required":
        name = _named(tools, last_user_text(messages)) or next(iter(tools))
    elif choice == "auto" and messages[-1].get("role") == "user":
        name = _named(tools, content_text(messages[-1].get("content")))
    if name is None:
        return None
    arguments = orjson.dumps(instance_of(tools[name].get("parameters", {"type": "object", "properties": {}})))
    return ToolCall(next_id("call_"), name, arguments.decode(), forced=isinstance(choice, dict))


def _named(tools: Mapping[str, Any], text: str) -> str | None:
    """The first tool whose name the text mentions as a word."""
    return next((name for name in tools if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text)), None)


def _content(body: Mapping[str, Any], messages: Sequence[Mapping[str, Any]]) -> str:
    """JSON for the JSON response formats, the echo otherwise."""
    echo = "Echo: " + last_user_text(messages)
    response_format = body.get("response_format")
    if not isinstance(response_format, dict):
        return echo
    kind = response_format.get("type")
    if kind == "json_schema":
        return orjson.dumps(instance_of(response_format["json_schema"].get("schema", {}))).decode()
    if kind == "json_object":
        return orjson.dumps({"answer": echo}).decode()
    return echo


def _opening(tool_call: ToolCall) -> dict[str, Any]:
    """The first delta of a streamed tool call: its index, id, type and name, with empty arguments."""
    return {"index": 0, "id": tool_call.id, "type": "function", "function": {"name": tool_call.name, "arguments": ""}}


def _arguments_choice(piece: str) -> dict[str, Any]:
    return {
        "content_filter_results": {},
        "delta": {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]},
        "finish_reason": None,
        "index": 0,
        "logprobs": None,
    }


def _chat_content_choice(piece: str) -> dict[str, Any]:
    return {
        "content_filter_results": CHUNK_FILTER,
        "delta": {"content": piece},
        "finish_reason": None,
        "index": 0,
        "logprobs": None,
    }
