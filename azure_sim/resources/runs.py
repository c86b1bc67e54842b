"""Runs and run steps (an answer is a message that echoes the thread's last user message)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiohttp import web

from ..routing import Call
from ..store import Store
from ..streams import SseScript, send_sse
from ..wire import (
    NAMED_DONE_EVENT,
    count_words,
    invalid,
    json_answer,
    missing,
    named_event,
    split_text,
    token_usage,
    wants_stream,
)
from .common import (
    ACTIVE_RUN_STATES,
    apply_fields,
    by_creation,
    check_deployment,
    list_page,
    lookup,
    metadata_field,
    random_id,
    required_string,
    unix_now,
)
from .threads import active_run, message_text, new_message, new_thread, path_thread, store_thread


def _new_run(call: Call, thread_id: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """A queued run (validated; not stored yet): the assistant must live in this region, ``model`` may override."""
    assistant_id = required_string(body, "assistant_id")
    assistant = lookup(call.store.assistants, "assistant", assistant_id)
    model = assistant["model"]
    if body.get("model") is not None:
        model = required_string(body, "model")
        check_deployment(call, model)
    instructions = body.get("instructions")
    if instructions is None:
        instructions = assistant["instructions"]
    if isinstance(body.get("additional_instructions"), str):
        instructions = f"{instructions or ''}{body['additional_instructions']}"
    now = unix_now()
    run: dict[str, Any] = {
        "id": random_id("run_"),
        "object": "thread.run",
        "created_at": now,
        "assistant_id": assistant_id,
        "thread_id": thread_id,
        "status": "queued",
        "started_at": None,
        "expires_at": now + 600,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": None,
        "required_action": None,
        "last_error": None,
        "model": model,
        "instructions": instructions,
        "tools": assistant["tools"],
        "tool_resources": assistant["tool_resources"],
        "metadata": {},
        "temperature": assistant["temperature"],
        "top_p": assistant["top_p"],
        "max_prompt_tokens": None,
        "max_completion_tokens": None,
        "truncation_strategy": {"type": "auto", "last_messages": None},
        "incomplete_details": None,
        "usage": None,
        "response_format": assistant["response_format"],
        "tool_choice": "auto",
        "parallel_tool_calls": True,
    }
    apply_fields(
        run,
        body,
        (
            "tools",
            "metadata",
            "temperature",
            "top_p",
            "max_prompt_tokens",
            "max_completion_tokens",
            "truncation_strategy",
            "response_format",
            "tool_choice",
            "parallel_tool_calls",
        ),
    )
    return run


def _new_step(run: Mapping[str, Any], step_type: str, details: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": random_id("step_"),
        "object": "thread.run.step",
        "created_at": unix_now(),
        "run_id": run["id"],
        "assistant_id": run["assistant_id"],
        "thread_id": run["thread_id"],
        "type": step_type,
        "status": "in_progress",
        "cancelled_at": None,
        "completed_at": None,
        "expired_at": None,
        "failed_at": None,
        "last_error": None,
        "step_details": details,
        "usage": None,
        "metadata": {},
    }


def _start_run(store: Store, run: dict[str, Any], chunks: int, prelude: list[bytes]) -> SseScript:
    """Store a queued run and take it as far as it goes at once: ``requires_action`` when it has a function tool
    (one tool call), else ``completed``. Returns its event stream; the stored objects end in their final state."""
    thread_id, run_id = run["thread_id"], run["id"]
    store.runs[thread_id][run_id] = run
    store.steps[run_id] = {}
    head = [*prelude, named_event("thread.run.created", run), named_event("thread.run.queued", run)]
    run.update(status="in_progress", started_at=unix_now())
    head.append(named_event("thread.run.in_progress", run))
    function = next((t.get("function") or {} for t in run["tools"] if t.get("type") == "function"), None)
    if function is None:
        return _finish_run(store, run, chunks, head)
    name = function.get("name", "")
    tool_call = {"id": random_id("call_"), "type": "function", "function": {"name": name, "arguments": "{}"}}
    step_call = {**tool_call, "function": {"name": name, "arguments": "{}", "output": None}}
    step = _new_step(run, "tool_calls", {"type": "tool_calls", "tool_calls": [step_call]})
    store.steps[run_id][step["id"]] = step
    head += [named_event("thread.run.step.created", step), named_event("thread.run.step.in_progress", step)]
    run.update(
        status="requires_action",
        required_action={"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": [tool_call]}},
    )
    return SseScript(head, [], [named_event("thread.run.requires_action", run), NAMED_DONE_EVENT])


def _finish_run(store: Store, run: dict[str, Any], chunks: int, head: list[bytes]) -> SseScript:
    """Complete an in-progress run: an assistant message ``"Echo: <last user text>"`` and its message_creation
    step, streamed as created / in_progress / deltas / completed events."""
    thread_id, run_id = run["thread_id"], run["id"]
    messages = store.messages[thread_id].values()
    last_user = next((m for m in reversed(by_creation(messages)) if m["role"] == "user"), None)
    answer = "Echo: " + (message_text(last_user) if last_user is not None else "")
    usage = token_usage(sum(count_words(message_text(m)) for m in messages), count_words(answer))
    message = new_message(
        thread_id, {"role": "assistant", "content": answer}, assistant_id=run["assistant_id"], run_id=run_id
    )
    details = {"type": "message_creation", "message_creation": {"message_id": message["id"]}}
    step = _new_step(run, "message_creation", details)
    opening = dict(message, status="in_progress", content=[], completed_at=None)
    head += [
        named_event("thread.run.step.created", step),
        named_event("thread.run.step.in_progress", step),
        named_event("thread.message.created", opening),
        named_event("thread.message.in_progress", opening),
    ]
    content = [
        named_event(
            "thread.message.delta",
            {
                "id": message["id"],
                "object": "thread.message.delta",
                "delta": {"content": [{"index": 0, "type": "text", "text": {"value": piece, "annotations": []}}]},
            },
        )
        for piece in split_text(answer, chunks)
    ]
    now = unix_now()
    step.update(status="completed", completed_at=now, usage=usage)
    store.messages[thread_id][message["id"]] = message
    store.steps[run_id][step["id"]] = step
    run.update(status="completed", completed_at=now, expires_at=None, required_action=None, usage=usage)
    tail = [
        named_event("thread.message.completed", message),
        named_event("thread.run.step.completed", step),
        named_event("thread.run.completed", run),
        NAMED_DONE_EVENT,
    ]
    return SseScript(head, content, tail)


async def _answer_run(call: Call, run: dict[str, Any], script: SseScript) -> web.StreamResponse:
    if wants_stream(call.body):
        return await send_sse(call, script)
    return json_answer(call.request, run)


async def create_run(call: Call) -> web.StreamResponse:
    store = call.store
    with store.lock:
        thread_id = path_thread(call)
        active = active_run(store, thread_id)
        if active is not None:
            raise invalid(f"Thread {thread_id} already has an active run {active['id']}.")
        run = _new_run(call, thread_id, call.body)
        extra = call.body.get("additional_messages") or []
        if not isinstance(extra, list):
            raise invalid("Invalid 'additional_messages': expected an array.", "additional_messages")
        for message in [new_message(thread_id, spec) for spec in extra]:
            store.messages[thread_id][message["id"]] = message
        script = _start_run(store, run, call.behaviour.chunks, [])
    return await _answer_run(call, run, script)


async def create_thread_and_run(call: Call) -> web.StreamResponse:
    spec = call.body.get("thread") or {}
    if not isinstance(spec, dict):
        raise invalid("Invalid 'thread': expected an object.", "thread")
    store = call.store
    with store.lock:
        thread, messages = new_thread(spec)
        run = _new_run(call, thread["id"], call.body)
        store_thread(store, thread, messages)
        script = _start_run(store, run, call.behaviour.chunks, [named_event("thread.created", thread)])
    return await _answer_run(call, run, script)


def _run(call: Call) -> dict[str, Any]:
    runs = call.store.runs[path_thread(call)]
    return lookup(runs, "run", call.request.match_info["run_id"])


async def list_runs(call: Call) -> web.StreamResponse:
    with call.store.lock:
        runs = call.store.runs[path_thread(call)].values()
        return json_answer(call.request, list_page(call.request, by_creation(runs)))


async def get_run(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return json_answer(call.request, _run(call))


async def modify_run(call: Call) -> web.StreamResponse:
    with call.store.lock:
        run = _run(call)
        run["metadata"] = metadata_field(call.body, run["metadata"])
        return json_answer(call.request, run)


async def submit_tool_outputs(call: Call) -> web.StreamResponse:
    """Answer the pending tool call(s): the tool step completes, then the run completes like any other."""
    store = call.store
    with store.lock:
        run = _run(call)
        if run["status"] != "requires_action":
            raise invalid(f'Runs in status "{run["status"]}" do not accept tool outputs.')
        outputs = call.body.get("tool_outputs")
        if not isinstance(outputs, list) or not all(isinstance(o, dict) for o in outputs):
            raise missing("tool_outputs")
        given = {o.get("tool_call_id"): o.get("output") for o in outputs}
        pending = [c["id"] for c in run["required_action"]["submit_tool_outputs"]["tool_calls"]]
        if sorted(given, key=str) != sorted(pending):
            message = f"Expected tool outputs for call_ids {pending}, got {sorted(given, key=str)}"
            raise invalid(message, "tool_outputs")
        step = next(
            s for s in store.steps[run["id"]].values() if s["type"] == "tool_calls" and s["status"] == "in_progress"
        )
        for tool_call in step["step_details"]["tool_calls"]:
            tool_call["function"]["output"] = given[tool_call["id"]]
        step.update(status="completed", completed_at=unix_now())
        run.update(status="queued", required_action=None)
        head = [named_event("thread.run.step.completed", step), named_event("thread.run.queued", run)]
        run["status"] = "in_progress"
        head.append(named_event("thread.run.in_progress", run))
        script = _finish_run(store, run, call.behaviour.chunks, head)
    return await _answer_run(call, run, script)


async def cancel_run(call: Call) -> web.StreamResponse:
    """Answers ``cancelling``; the stored run (what a later GET sees) is ``cancelled``."""
    store = call.store
    with store.lock:
        run = _run(call)
        if run["status"] not in ACTIVE_RUN_STATES:
            raise invalid(f"Cannot cancel run with status '{run['status']}'.")
        now = unix_now()
        run.update(status="cancelled", cancelled_at=now, expires_at=None, required_action=None)
        for step in store.steps[run["id"]].values():
            if step["status"] == "in_progress":
                step.update(status="cancelled", cancelled_at=now)
        return json_answer(call.request, dict(run, status="cancelling"))


async def list_run_steps(call: Call) -> web.StreamResponse:
    with call.store.lock:
        steps = call.store.steps[_run(call)["id"]].values()
        return json_answer(call.request, list_page(call.request, by_creation(steps)))


async def get_run_step(call: Call) -> web.StreamResponse:
    with call.store.lock:
        steps = call.store.steps[_run(call)["id"]]
        return json_answer(call.request, lookup(steps, "run step", call.request.match_info["step_id"]))
