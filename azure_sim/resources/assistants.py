"""Assistants."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..routing import Call
from ..wire import json_answer
from .common import (
    apply_fields,
    by_creation,
    check_deployment,
    deleted_answer,
    list_page,
    lookup,
    random_id,
    required_string,
    unix_now,
)

ASSISTANT_FIELDS = (
    "name",
    "description",
    "instructions",
    "tools",
    "tool_resources",
    "metadata",
    "temperature",
    "top_p",
    "response_format",
)


async def create_assistant(call: Call) -> web.StreamResponse:
    model = required_string(call.body, "model")  # stored and echoed exactly as sent: a deployment name on Azure
    check_deployment(call, model)
    assistant: dict[str, Any] = {
        "id": random_id("asst_"),
        "object": "assistant",
        "created_at": unix_now(),
        "name": None,
        "description": None,
        "model": model,
        "instructions": None,
        "tools": [],
        "tool_resources": {},
        "metadata": {},
        "temperature": 1.0,
        "top_p": 1.0,
        "response_format": "auto",
    }
    apply_fields(assistant, call.body, ASSISTANT_FIELDS)
    with call.store.lock:
        call.store.assistants[assistant["id"]] = assistant
    return json_answer(call.request, assistant)


async def list_assistants(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return json_answer(call.request, list_page(call.request, by_creation(call.store.assistants.values())))


async def get_assistant(call: Call) -> web.StreamResponse:
    with call.store.lock:
        assistant = lookup(call.store.assistants, "assistant", call.request.match_info["assistant_id"])
        return json_answer(call.request, assistant)


async def modify_assistant(call: Call) -> web.StreamResponse:
    with call.store.lock:
        assistant = lookup(call.store.assistants, "assistant", call.request.match_info["assistant_id"])
        changed = dict(assistant)
        if call.body.get("model") is not None:
            changed["model"] = required_string(call.body, "model")
            check_deployment(call, changed["model"])
        apply_fields(changed, call.body, ASSISTANT_FIELDS)
        assistant.update(changed)
        return json_answer(call.request, assistant)


async def delete_assistant(call: Call) -> web.StreamResponse:
    assistant_id = call.request.match_info["assistant_id"]
    with call.store.lock:
        lookup(call.store.assistants, "assistant", assistant_id)
        del call.store.assistants[assistant_id]
    return json_answer(call.request, deleted_answer(assistant_id, "assistant.deleted"))
