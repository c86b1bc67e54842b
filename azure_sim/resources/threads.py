"""Threads and their messages."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from ..routing import Call
from ..store import Store
from ..wire import invalid, json_answer, missing
from .common import (
    ACTIVE_RUN_STATES,
    apply_fields,
    by_creation,
    deleted_answer,
    list_page,
    lookup,
    metadata_field,
    random_id,
    unix_now,
)


def _message_content(content: Any) -> list[dict[str, Any]]:
    """A message's content as stored: text parts become ``{"type": "text", "text": {"value", "annotations"}}``."""
    if isinstance(content, str):
        return [{"type": "text", "text": {"value": content, "annotations": []}}]
    if isinstance(content, list) and content:
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                parts.append({"type": "text", "text": {"value": part["text"], "annotations": []}})
            elif isinstance(part, dict) and part.get("type") in ("image_file", "image_url"):
                parts.append(part)
            else:
                raise invalid("Invalid 'content': expected text, image_file or image_url parts.", "content")
        return parts
    raise missing("content")


def message_text(message: Mapping[str, Any]) -> str:
    return " ".join(part["text"]["value"] for part in message["content"] if part.get("type") == "text")


def new_message(
    thread_id: str, spec: Any, *, assistant_id: str | None = None, run_id: str | None = None
) -> dict[str, Any]:
    """A message object from a create body (validated; not stored yet)."""
    if not isinstance(spec, dict):
        raise invalid("Invalid message: expected an object.", "messages")
    role = spec.get("role")
    if role not in ("user", "assistant"):
        raise invalid("Invalid 'role': must be one of 'user', 'assistant'.", "role")
    attachments = spec.get("attachments") or []
    if not isinstance(attachments, list):
        raise invalid("Invalid 'attachments': expected an array.", "attachments")
    now = unix_now()
    return {
        "id": random_id("msg_"),
        "object": "thread.message",
        "created_at": now,
        "assistant_id": assistant_id,
        "thread_id": thread_id,
        "run_id": run_id,
        "role": role,
        "content": _message_content(spec.get("content")),
        "attachments": attachments,
        "metadata": metadata_field(spec),
        "status": "completed",
        "incomplete_details": None,
        "completed_at": now,
        "incomplete_at": None,
    }


def new_thread(body: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A thread and its initial messages from a create body (validated; not stored yet)."""
    thread: dict[str, Any] = {
        "id": random_id("thread_"),
        "object": "thread",
        "created_at": unix_now(),
        "metadata": metadata_field(body),
        "tool_resources": {},
    }
    apply_fields(thread, body, ("tool_resources",))
    specs = body.get("messages") or []
    if not isinstance(specs, list):
        raise invalid("Invalid 'messages': expected an array.", "messages")
    return thread, [new_message(thread["id"], spec) for spec in specs]


def store_thread(store: Store, thread: dict[str, Any], messages: Iterable[dict[str, Any]]) -> None:
    store.threads[thread["id"]] = thread
    store.messages[thread["id"]] = {m["id"]: m for m in messages}
    store.runs[thread["id"]] = {}


async def create_thread(call: Call) -> web.StreamResponse:
    thread, messages = new_thread(call.body)
    with call.store.lock:
        store_thread(call.store, thread, messages)
    return json_answer(call.request, thread)


async def get_thread(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return json_answer(call.request, lookup(call.store.threads, "thread", call.request.match_info["thread_id"]))


async def modify_thread(call: Call) -> web.StreamResponse:
    with call.store.lock:
        thread = lookup(call.store.threads, "thread", call.request.match_info["thread_id"])
        changed = dict(thread)
        apply_fields(changed, call.body, ("metadata", "tool_resources"))
        thread.update(changed)
        return json_answer(call.request, thread)


async def delete_thread(call: Call) -> web.StreamResponse:
    thread_id = call.request.match_info["thread_id"]
    store = call.store
    with store.lock:
        lookup(store.threads, "thread", thread_id)
        del store.threads[thread_id]
        store.messages.pop(thread_id, None)
        for run_id in store.runs.pop(thread_id, {}):
            store.steps.pop(run_id, None)
    return json_answer(call.request, deleted_answer(thread_id, "thread.deleted"))


def path_thread(call: Call) -> str:
    """The path's thread id, checked to exist in this region."""
    thread_id = call.request.match_info["thread_id"]
    lookup(call.store.threads, "thread", thread_id)
    return thread_id


def active_run(store: Store, thread_id: str) -> dict[str, Any] | None:
    return next((r for r in store.runs[thread_id].values() if r["status"] in ACTIVE_RUN_STATES), None)


async def create_message(call: Call) -> web.StreamResponse:
    with call.store.lock:
        thread_id = path_thread(call)
        active = active_run(call.store, thread_id)
        if active is not None:
            raise invalid(f"Can't add messages to {thread_id} while a run {active['id']} is active.")
        message = new_message(thread_id, call.body)
        call.store.messages[thread_id][message["id"]] = message
    return json_answer(call.request, message)


async def list_messages(call: Call) -> web.StreamResponse:
    with call.store.lock:
        messages: Iterable[dict[str, Any]] = call.store.messages[path_thread(call)].values()
        run_id = call.request.query.get("run_id")
        if run_id:
            messages = [m for m in messages if m["run_id"] == run_id]
        return json_answer(call.request, list_page(call.request, by_creation(messages)))


def _message(call: Call) -> dict[str, Any]:
    messages = call.store.messages[path_thread(call)]
    return lookup(messages, "message", call.request.match_info["message_id"])


async def get_message(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return json_answer(call.request, _message(call))


async def modify_message(call: Call) -> web.StreamResponse:
    with call.store.lock:
        message = _message(call)
        message["metadata"] = metadata_field(call.body, message["metadata"])
        return json_answer(call.request, message)


async def delete_message(call: Call) -> web.StreamResponse:
    with call.store.lock:
        message = _message(call)
        del call.store.messages[message["thread_id"]][message["id"]]
    return json_answer(call.request, deleted_answer(message["id"], "thread.message.deleted"))
