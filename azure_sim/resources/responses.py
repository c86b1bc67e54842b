"""Responses."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ..routing import Call
from ..streams import SseScript, send_sse
from ..wire import Reject, count_words, invalid, json_answer, missing, named_event, split_text, wants_stream
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


def _input_items(value: Any) -> list[dict[str, Any]]:
    """``input`` (a string or a list of items) as stored input items, each with an id."""
    if isinstance(value, str) and value:
        value = [{"role": "user", "content": value}]
    if not isinstance(value, list) or not value or not all(isinstance(item, dict) for item in value):
        raise missing("input")
    items = []
    for item in value:
        if "role" in item:
            content = item.get("content")
            if isinstance(content, str):
                part_type = "output_text" if item["role"] == "assistant" else "input_text"
                content = [{"type": part_type, "text": content}]
            elif not isinstance(content, list):
                raise invalid("Invalid 'input': a message needs 'content'.", "input")
            item = {"type": "message", "role": item["role"], "content": content, "status": "completed"}
        items.append({"id": item.get("id") or random_id("msg_"), **item})
    return items


def _item_text(item: Mapping[str, Any]) -> str:
    return " ".join(
        part["text"]
        for part in item.get("content") or ()
        if isinstance(part, dict)
        and part.get("type") in ("input_text", "output_text", "text")
        and isinstance(part.get("text"), str)
    )


async def create_response(call: Call) -> web.StreamResponse:
    """Answer ``"Echo: <last user text>"``; stored unless ``store: false``; streamed as typed events."""
    body = call.body
    model = required_string(body, "model")
    check_deployment(call, model)
    items = _input_items(body.get("input"))
    previous = body.get("previous_response_id")
    store = call.store
    if previous is not None:
        with store.lock:
            if not isinstance(previous, str) or previous not in store.responses:
                not_found = f"Previous response with id '{previous}' not found."
                error = {"message": not_found, "type": "invalid_request_error", "param": "previous_response_id"}
                raise Reject(404, {**error, "code": "previous_response_not_found"})
    last_user = next((item for item in reversed(items) if item.get("role") == "user"), None)
    answer = "Echo: " + (_item_text(last_user) if last_user is not None else "")
    input_tokens = sum(count_words(_item_text(item)) for item in items)
    output_tokens = count_words(answer)
    now = unix_now()
    part = {"type": "output_text", "text": answer, "annotations": []}
    message: dict[str, Any] = {"type": "message", "id": random_id("msg_"), "status": "completed", "role": "assistant"}
    message["content"] = [part]
    response: dict[str, Any] = {
        "id": random_id("resp_"),
        "object": "response",
        "created_at": now,
        "status": "completed",
        "completed_at": now,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": [message],
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": previous,
        "reasoning": body.get("reasoning") or {"effort": None, "summary": None},
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation") or "disabled",
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
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
        return json_answer(call.request, response)
    return await send_sse(call, _response_script(response, message, part, call.behaviour.chunks))


def _response_script(response: dict[str, Any], message: dict[str, Any], part: dict[str, Any], chunks: int) -> SseScript:
    """Responses stream: typed events (``event:`` = data ``type``) numbered by ``sequence_number``; no [DONE]."""
    numbers = itertools.count()

    def event(event_type: str, **payload: Any) -> bytes:
        return named_event(event_type, {"type": event_type, **payload, "sequence_number": next(numbers)})

    opening = dict(response, status="in_progress", completed_at=None, output=[], usage=None)
    where = {"item_id": message["id"], "output_index": 0, "content_index": 0}
    head = [
        event("response.created", response=opening),
        event("response.in_progress", response=opening),
        event("response.output_item.added", output_index=0, item=dict(message, status="in_progress", content=[])),
        event("response.content_part.added", **where, part=dict(part, text="")),
    ]
    pieces = split_text(part["text"], chunks)
    content = [event("response.output_text.delta", **where, delta=piece, logprobs=[]) for piece in pieces]
    tail = [
        event("response.output_text.done", **where, text=part["text"], logprobs=[]),
        event("response.content_part.done", **where, part=part),
        event("response.output_item.done", output_index=0, item=message),
        event("response.completed", response=response),
    ]
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
