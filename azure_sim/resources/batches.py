"""Batches."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..routing import Call
from ..wire import invalid, json_answer
from .common import by_creation, list_page, lookup, metadata_field, random_id, required_string, unix_now


async def create_batch(call: Call) -> web.StreamResponse:
    body = call.body
    input_file_id = required_string(body, "input_file_id")
    endpoint = required_string(body, "endpoint")
    completion_window = required_string(body, "completion_window")
    now = unix_now()
    batch: dict[str, Any] = {
        "id": random_id("batch_"),
        "object": "batch",
        "endpoint": endpoint,
        "errors": None,
        "input_file_id": input_file_id,
        "completion_window": completion_window,
        "status": "validating",
        "output_file_id": None,
        "error_file_id": None,
        "created_at": now,
        "in_progress_at": None,
        "expires_at": now + 86400,
        "finalizing_at": None,
        "completed_at": None,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
        "request_counts": {"total": 0, "completed": 0, "failed": 0},
        "metadata": metadata_field(body) or None,
    }
    with call.store.lock:
        lookup(call.store.files, "file", input_file_id)
        call.store.batches[batch["id"]] = batch
    return json_answer(call.request, batch)


async def list_batches(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return json_answer(call.request, list_page(call.request, by_creation(call.store.batches.values())))


async def get_batch(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return json_answer(call.request, lookup(call.store.batches, "batch", call.request.match_info["batch_id"]))


async def cancel_batch(call: Call) -> web.StreamResponse:
    with call.store.lock:
        batch = lookup(call.store.batches, "batch", call.request.match_info["batch_id"])
        if batch["status"] not in ("validating", "in_progress", "finalizing", "cancelling"):
            raise invalid(f"Cannot cancel a batch with status '{batch['status']}'.")
        if batch["status"] != "cancelling":
            batch.update(status="cancelling", cancelling_at=unix_now())
        return json_answer(call.request, batch)
