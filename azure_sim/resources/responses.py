"""Responses (``responses``): answers in the shape a model would give, as chat completions do.

The answer is a ``function_call`` when the request asks for one: ``tool_choice`` ``required`` (the function tool the
last user text names, else the first), a named function, or ``allowed_tools`` in ``required`` mode; under ``auto``
(the default), when the conversation's last item is a user message that names a function tool. Its arguments are an
instance of the tool's ``parameters`` schema. Otherwise it is a message: an instance of the schema for ``text.format``
``json_schema``, a JSON object for ``json_object``, else ``"Echo: " + last user text``. A ``function_call_output``
is answered with a message (unless ``tool_choice`` forces another call), and every call and output must pair up as
OpenAI requires. A reasoning model (``models``) puts a ``reasoning`` item first and counts reasoning tokens.

A conversation continues with ``previous_response_id`` (the stored responses' inputs and outputs come first) or by
sending the items back (the Agents SDK's default). A ``background`` response is answered ``queued`` (no output, no
usage) and stored done, so that the first GET finds it completed. Streams are typed events numbered by
``sequence_number``, as OpenAI documents them (``ResponseStreamEvent`` in openai/openai-openapi); they end with
``response.completed``.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from ..json_schema import instance_of
from ..models import ModelProfile, check_effort, deployed_profile
from ..routing import Call
from ..store import Store
from ..streams import SseScript, send_sse
from ..wire import (
    Reject,
    count_words,
    invalid,
    json_answer,
    missing,
    named_event,
    not_one_of,
    split_text,
    wants_stream,
    wrong_type,
)
from .common import (
    check_deployment,
    deleted_answer,
    list_page,
    lookup,
    metadata_field,
    random_id,
    required_string,
    unix_now,
)

TOOL_CHOICES = ("none", "auto", "required")
TEXT_FORMATS = ("text", "json_object", "json_schema")
NO_PARAMETERS = {"type": "object", "properties": {}}


@dataclass(frozen=True, slots=True)
class ToolChoice:
    """What ``tool_choice`` leaves the model: ``mode`` none, auto or required, among ``functions`` (by name)."""

    mode: str
    functions: Mapping[str, Mapping[str, Any]]


def _input_items(value: Any) -> list[dict[str, Any]]:
    """``input`` (a string or a list of items) as stored input items, each with an id."""
    if isinstance(value, str) and value:
        value = [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value or not all(isinstance(item, dict) for item in value):
        raise missing("input")
    items = []
    for index, item in enumerate(value):
        prefix = "msg_"
        if "role" in item:
            content = item.get("content")
            if isinstance(content, str):
                part_type = "output_text" if item["role"] == "assistant" else "input_text"
                content = [{"type": part_type, "text": content}]
            elif not isinstance(content, list):
                raise invalid("Invalid 'input': a message needs 'content'.", "input")
            item = {"type": "message", "role": item["role"], "content": content, "status": "completed"}
        elif item.get("type") == "function_call":
            prefix = "fc_"
            for name in ("call_id", "name", "arguments"):
                if not isinstance(item.get(name), str):
                    raise missing(f"input[{index}].{name}")
        elif item.get("type") == "function_call_output":
            prefix = "fco_"
            if not isinstance(item.get("call_id"), str):
                raise missing(f"input[{index}].call_id")
            if not isinstance(item.get("output"), str | list):
                raise missing(f"input[{index}].output")
        elif item.get("type") == "reasoning":
            prefix = "rs_"
        items.append({"id": item.get("id") or random_id(prefix), **item})
    return items


def _item_text(item: Mapping[str, Any]) -> str:
    """The words an item carries: a message's text parts, a call's arguments, an output's text."""
    if item.get("type") == "function_call":
        return str(item.get("arguments", ""))
    if item.get("type") == "function_call_output":
        output = item.get("output")
        return output if isinstance(output, str) else _parts_text(output)
    return _parts_text(item.get("content"))


def _parts_text(parts: Any) -> str:
    return " ".join(
        part["text"]
        for part in parts or ()
        if isinstance(part, dict)
        and part.get("type") in ("input_text", "output_text", "text")
        and isinstance(part.get("text"), str)
    )


def _history(store: Store, response_id: str) -> list[dict[str, Any]]:
    """A stored conversation's items, oldest first: each response's input, then its output (``store.lock`` held)."""
    chain: list[str] = []
    current: Any = response_id
    while isinstance(current, str) and current in store.responses and current not in chain:
        chain.append(current)
        current = store.responses[current].get("previous_response_id")
    items: list[dict[str, Any]] = []
    for earlier in reversed(chain):
        items += store.response_inputs.get(earlier, [])
        items += store.responses[earlier]["output"]
    return items


def _check_calls(conversation: Sequence[Mapping[str, Any]]) -> None:
    """Every output answers an earlier call and every call is answered, or OpenAI's 400 (seen in the wild:
    "No tool call found for function call output with call_id call_x." and "No tool output found for function call
    call_x.", ``param: input``)."""
    calls: list[str] = []
    answered: set[str] = set()
    for item in conversation:
        if item.get("type") == "function_call":
            calls.append(item["call_id"])
        elif item.get("type") == "function_call_output":
            if item["call_id"] not in calls:
                raise invalid(f"No tool call found for function call output with call_id {item['call_id']}.", "input")
            answered.add(item["call_id"])
    for call_id in calls:
        if call_id not in answered:
            raise invalid(f"No tool output found for function call {call_id}.", "input")


def _function_tools(body: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The function tools offered, by name (Responses tools are flat: ``{"type": "function", "name": ...}``; the chat
    shape, nested under ``function``, gets OpenAI's "Missing required parameter: 'tools[0].name'."). Other tool
    types (web_search, file_search, mcp, ...) are accepted and never called."""
    tools = body.get("tools")
    if tools is None:
        return {}
    if not isinstance(tools, list):
        raise wrong_type("tools", "an array of tools", tools)
    functions: dict[str, Mapping[str, Any]] = {}
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise wrong_type(where, "an object", tool)
        if not isinstance(tool.get("type"), str):
            raise missing(f"{where}.type")
        if tool["type"] != "function":
            continue
        if not isinstance(tool.get("name"), str) or not tool["name"]:
            raise missing(f"{where}.name")
        if tool.get("parameters") is not None and not isinstance(tool["parameters"], dict):
            raise wrong_type(f"{where}.parameters", "an object", tool["parameters"])
        functions[tool["name"]] = tool
    return functions


def _tool_choice(choice: Any, tools: Sequence[Any], functions: Mapping[str, Mapping[str, Any]]) -> ToolChoice:
    """``tool_choice``: a mode, a function (``{"type": "function", "name": ...}``), ``allowed_tools``, or a hosted
    tool (never called here). A tool the request does not offer gets OpenAI's "Tool choice 'web_search' not found in
    'tools' parameter." (the function's name stands in the quotes for a function)."""
    if choice is None:
        return ToolChoice("auto", functions)
    if isinstance(choice, str):
        if choice not in TOOL_CHOICES:
            raise not_one_of(choice, TOOL_CHOICES, "tool_choice")
        return ToolChoice(choice, functions)
    if not isinstance(choice, dict) or not isinstance(choice.get("type"), str):
        raise wrong_type("tool_choice", "one of an object or 'none', 'auto', or 'required'", choice)
    kind = choice["type"]
    if kind == "function":
        name = choice.get("name")
        if not isinstance(name, str):
            raise missing("tool_choice.name")
        if name not in functions:
            raise _choice_not_found(name)
        return ToolChoice("required", {name: functions[name]})
    if kind == "allowed_tools":
        mode = choice.get("mode", "auto")
        if mode not in ("auto", "required"):
            raise not_one_of(mode, ("auto", "required"), "tool_choice.mode")
        listed = [t.get("name") for t in choice.get("tools") or () if isinstance(t, dict)]
        return ToolChoice(mode, {name: functions[name] for name in functions if name in listed})
    if not any(isinstance(tool, dict) and tool.get("type") == kind for tool in tools):
        raise _choice_not_found(kind)
    return ToolChoice("none", {})


def _choice_not_found(name: str) -> Reject:
    return invalid(f"Tool choice '{name}' not found in 'tools' parameter.", "tool_choice")


def _text_format(text: Any, conversation: Sequence[Mapping[str, Any]]) -> Mapping[str, Any]:
    """``text.format`` (default ``text``), checked: a json_schema needs a name and a schema; json_object needs the
    word "json" in an input message (instructions do not count), OpenAI's rule and words."""
    if text is None:
        return {"type": "text"}
    if not isinstance(text, dict):
        raise wrong_type("text", "an object", text)
    text_format = text.get("format")
    if text_format is None:
        return {"type": "text"}
    if not isinstance(text_format, dict):
        raise wrong_type("text.format", "an object", text_format)
    kind = text_format.get("type")
    if kind not in TEXT_FORMATS:
        raise not_one_of(kind, TEXT_FORMATS, "text.format.type")
    if kind == "json_schema":
        if not isinstance(text_format.get("name"), str) or not text_format["name"]:
            raise missing("text.format.name")
        if not isinstance(text_format.get("schema"), dict):
            raise missing("text.format.schema")
    if kind == "json_object" and not any(
        item.get("type") == "message" and "json" in _item_text(item).lower() for item in conversation
    ):
        message = "Response input messages must contain the word 'json' in some form to use 'text.format' of type "
        raise invalid(message + "'json_object'.", "input")
    return text_format


def _function_call(choice: ToolChoice, conversation: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The call a model would make (see the module docstring), as a completed ``function_call`` item."""
    if choice.mode == "none" or not choice.functions:
        return None
    last = conversation[-1]
    name: str | None = None
    if choice.mode == "required":
        name = _named(choice.functions, _last_user_text(conversation)) or next(iter(choice.functions))
    elif last.get("type") == "message" and last.get("role") == "user":
        name = _named(choice.functions, _item_text(last))
    if name is None:
        return None
    parameters = choice.functions[name].get("parameters") or NO_PARAMETERS
    return {
        "type": "function_call",
        "id": random_id("fc_"),
        "call_id": random_id("call_"),
        "name": name,
        "arguments": orjson.dumps(instance_of(parameters)).decode(),
        "status": "completed",
    }


def _named(functions: Mapping[str, Any], text: str) -> str | None:
    """The first function whose name the text mentions as a word."""
    return next((name for name in functions if re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text)), None)


def _last_user_text(conversation: Sequence[Mapping[str, Any]]) -> str:
    last = next((item for item in reversed(conversation) if item.get("role") == "user"), None)
    return _item_text(last) if last is not None else ""


def _answer_text(text_format: Mapping[str, Any], conversation: Sequence[Mapping[str, Any]]) -> str:
    echo = "Echo: " + _last_user_text(conversation)
    if text_format["type"] == "json_schema":
        return orjson.dumps(instance_of(text_format["schema"])).decode()
    if text_format["type"] == "json_object":
        return orjson.dumps({"answer": echo}).decode()
    return echo


def _reasoning_field(body: Mapping[str, Any], profile: ModelProfile) -> tuple[dict[str, Any], str | None]:
    """The response's ``reasoning`` and the effort it ran at: a reasoning model's effort is checked and defaulted
    (``reasoning.effort``, as chat's ``reasoning_effort``); any other model echoes what was sent."""
    reasoning = body.get("reasoning")
    if reasoning is not None and not isinstance(reasoning, dict):
        raise wrong_type("reasoning", "an object", reasoning)
    if not profile.reasoning:
        return reasoning or {"effort": None, "summary": None}, None
    effort = check_effort((reasoning or {}).get("effort"), profile, "reasoning.effort")
    return {"effort": effort, "summary": (reasoning or {}).get("summary")}, effort


async def create_response(call: Call) -> web.StreamResponse:
    """A function call or a message (see the module docstring); stored unless ``store: false``; streamed as typed
    events."""
    body = call.body
    model = required_string(body, "model")
    check_deployment(call, model)
    profile = deployed_profile(call.models, model)
    items = _input_items(body.get("input"))
    previous = body.get("previous_response_id")
    store = call.store
    history: list[dict[str, Any]] = []
    if previous is not None:
        with store.lock:
            if not isinstance(previous, str) or previous not in store.responses:
                not_found = f"Previous response with id '{previous}' not found."
                error = {"message": not_found, "type": "invalid_request_error", "param": "previous_response_id"}
                raise Reject(404, {**error, "code": "previous_response_not_found"})
            history = _history(store, previous)
    conversation = history + items
    _check_calls(conversation)
    reasoning, effort = _reasoning_field(body, profile)
    functions = _function_tools(body)
    choice = _tool_choice(body.get("tool_choice"), body.get("tools") or (), functions)
    text_format = _text_format(body.get("text"), conversation)
    output: list[dict[str, Any]] = []
    if effort is not None and effort != "none":
        output.append({"type": "reasoning", "id": random_id("rs_"), "summary": []})
    answer = _function_call(choice, conversation)
    if answer is None:
        part = {"type": "output_text", "text": _answer_text(text_format, conversation), "annotations": []}
        answer = {"type": "message", "id": random_id("msg_"), "status": "completed", "role": "assistant"}
        answer["content"] = [part]
    output.append(answer)
    texts = [_item_text(item) for item in items]
    input_tokens = sum(count_words(text) for text in texts)
    cached_tokens = store.cached_tokens(model, "\n".join(texts), input_tokens)
    reasoning_tokens = profile.reasoning_tokens(effort)
    output_tokens = count_words(_item_text(answer)) + reasoning_tokens
    now = unix_now()
    response: dict[str, Any] = {
        "id": random_id("resp_"),
        "object": "response",
        "created_at": now,
        "status": "completed",
        "background": body.get("background") is True,
        "completed_at": now,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": previous,
        "reasoning": reasoning,
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation") or "disabled",
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": cached_tokens},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": reasoning_tokens},
            "total_tokens": input_tokens + output_tokens,
        },
        "user": body.get("user"),
        "metadata": metadata_field(body),
    }
    if body.get("store") is not False:
        with store.lock:
            store.responses[response["id"]] = response
            store.response_inputs[response["id"]] = items
    if not wants_stream(body):
        if response["background"]:  # answered at once, still queued; a later GET finds it done
            return json_answer(call.request, dict(response, status="queued", completed_at=None, output=[], usage=None))
        return json_answer(call.request, response)
    return await send_sse(call, _response_script(response, call.behaviour.chunks))


def _response_script(response: dict[str, Any], chunks: int) -> SseScript:
    """Responses stream: typed events (``event:`` = data ``type``) numbered by ``sequence_number``; no [DONE].

    Each output item is added, filled and done in turn: a reasoning item at once; a message through its content part
    and ``response.output_text.delta`` events; a function call through ``response.function_call_arguments.delta``
    events, then ``.done``. The last item's deltas are the ``content`` that ``x-sim-fail: abort`` cuts."""
    numbers = itertools.count()

    def event(event_type: str, **payload: Any) -> bytes:
        return named_event(event_type, {"type": event_type, **payload, "sequence_number": next(numbers)})

    opening = dict(response, status="in_progress", completed_at=None, output=[], usage=None)
    head = [event("response.created", response=opening), event("response.in_progress", response=opening)]
    *earlier, last = response["output"]
    for index, item in enumerate(earlier):  # reasoning: no deltas
        head.append(event("response.output_item.added", output_index=index, item=item))
        head.append(event("response.output_item.done", output_index=index, item=item))
    index = len(earlier)
    pieces = split_text(_item_text(last), chunks)
    if last["type"] == "function_call":
        where: dict[str, Any] = {"item_id": last["id"], "output_index": index}
        head.append(
            event("response.output_item.added", output_index=index, item=dict(last, arguments="", status="in_progress"))
        )
        content = [event("response.function_call_arguments.delta", **where, delta=piece) for piece in pieces]
        done = event(
            "response.function_call_arguments.done",
            item_id=last["id"],
            name=last["name"],
            output_index=index,
            arguments=last["arguments"],
        )
        tail = [done]
    else:
        part = last["content"][0]
        where = {"item_id": last["id"], "output_index": index, "content_index": 0}
        head.append(
            event("response.output_item.added", output_index=index, item=dict(last, status="in_progress", content=[]))
        )
        head.append(event("response.content_part.added", **where, part=dict(part, text="")))
        content = [event("response.output_text.delta", **where, delta=piece, logprobs=[]) for piece in pieces]
        tail = [
            event("response.output_text.done", **where, text=part["text"], logprobs=[]),
            event("response.content_part.done", **where, part=part),
        ]
    tail.append(event("response.output_item.done", output_index=index, item=last))
    tail.append(event("response.completed", response=response))
    return SseScript(head, content, tail)


def _response(call: Call) -> dict[str, Any]:
    return lookup(call.store.responses, "response", call.request.match_info["response_id"])


async def get_response(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return json_answer(call.request, _response(call))


async def delete_response(call: Call) -> web.StreamResponse:
    with call.store.lock:
        response_id = _response(call)["id"]
        del call.store.responses[response_id]
        del call.store.response_inputs[response_id]
    return json_answer(call.request, deleted_answer(response_id, "response"))


async def list_input_items(call: Call) -> web.StreamResponse:
    with call.store.lock:
        items = call.store.response_inputs[_response(call)["id"]]
        return json_answer(call.request, list_page(call.request, items))
