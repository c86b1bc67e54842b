"""Vector stores, their files and file batches."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aiohttp import web

from ..routing import Call
from ..store import Store
from ..wire import invalid, json_answer, missing
from .common import (
    CHUNKING_STRATEGY,
    by_creation,
    deleted_answer,
    list_page,
    lookup,
    metadata_field,
    random_id,
    required_string,
    string_list,
    unix_now,
)


def _file_counts(statuses: Iterable[str]) -> dict[str, int]:
    counts = {"in_progress": 0, "completed": 0, "failed": 0, "cancelled": 0, "total": 0}
    for status in statuses:
        counts[status] += 1
        counts["total"] += 1
    return counts


def _refresh_vector_store(store: Store, vector_store_id: str) -> dict[str, Any]:
    """Recompute what a vector store reports about its files."""
    vector_store = store.vector_stores[vector_store_id]
    files = store.vector_store_files[vector_store_id].values()
    counts = _file_counts(f["status"] for f in files)
    vector_store.update(
        file_counts=counts,
        usage_bytes=sum(f["usage_bytes"] for f in files),
        status="in_progress" if counts["in_progress"] else "completed",
        last_active_at=unix_now(),
    )
    return vector_store


def _new_vector_store_file(store: Store, vector_store_id: str, file_id: str, status: str) -> dict[str, Any]:
    """A vector store file; the file itself must live in this region."""
    file = lookup(store.files, "file", file_id)
    return {
        "id": file_id,
        "object": "vector_store.file",
        "usage_bytes": file["bytes"],
        "created_at": unix_now(),
        "vector_store_id": vector_store_id,
        "status": status,
        "last_error": None,
        "chunking_strategy": CHUNKING_STRATEGY,
        "attributes": {},
    }


def _vector_store(call: Call) -> str:
    vector_store_id = call.request.match_info["vector_store_id"]
    lookup(call.store.vector_stores, "vector store", vector_store_id)
    return vector_store_id


async def create_vector_store(call: Call) -> web.StreamResponse:
    store = call.store
    now = unix_now()
    vector_store: dict[str, Any] = {
        "id": random_id("vs_"),
        "object": "vector_store",
        "created_at": now,
        "name": call.body.get("name") or "",
        "usage_bytes": 0,
        "file_counts": _file_counts(()),
        "status": "completed",
        "expires_after": call.body.get("expires_after"),
        "expires_at": None,
        "last_active_at": now,
        "metadata": metadata_field(call.body),
    }
    with store.lock:
        file_ids = string_list(call.body, "file_ids")
        files = [_new_vector_store_file(store, vector_store["id"], f, "completed") for f in file_ids]
        store.vector_stores[vector_store["id"]] = vector_store
        store.vector_store_files[vector_store["id"]] = {f["id"]: f for f in files}
        store.file_batches[vector_store["id"]] = {}
        return json_answer(call.request, _refresh_vector_store(store, vector_store["id"]))


async def list_vector_stores(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return json_answer(call.request, list_page(call.request, by_creation(call.store.vector_stores.values())))


async def get_vector_store(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return json_answer(call.request, _refresh_vector_store(call.store, _vector_store(call)))


async def modify_vector_store(call: Call) -> web.StreamResponse:
    with call.store.lock:
        vector_store = call.store.vector_stores[_vector_store(call)]
        for name in ("name", "expires_after"):
            if name in call.body:
                vector_store[name] = call.body[name]
        vector_store["metadata"] = metadata_field(call.body, vector_store["metadata"])
        return json_answer(call.request, vector_store)


async def delete_vector_store(call: Call) -> web.StreamResponse:
    store = call.store
    with store.lock:
        vector_store_id = _vector_store(call)
        for table in (store.vector_stores, store.vector_store_files, store.file_batches):
            del table[vector_store_id]
    return json_answer(call.request, deleted_answer(vector_store_id, "vector_store.deleted"))


async def create_vector_store_file(call: Call) -> web.StreamResponse:
    store = call.store
    with store.lock:
        vector_store_id = _vector_store(call)
        file = _new_vector_store_file(store, vector_store_id, required_string(call.body, "file_id"), "completed")
        if isinstance(call.body.get("attributes"), dict):
            file["attributes"] = call.body["attributes"]
        store.vector_store_files[vector_store_id][file["id"]] = file
        _refresh_vector_store(store, vector_store_id)
        return json_answer(call.request, file)


def _filtered_files(call: Call, files: Iterable[dict[str, Any]]) -> web.StreamResponse:
    status = call.request.query.get("filter")
    chosen = [f for f in files if status is None or f["status"] == status]
    return json_answer(call.request, list_page(call.request, by_creation(chosen)))


async def list_vector_store_files(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return _filtered_files(call, call.store.vector_store_files[_vector_store(call)].values())


def _vector_store_file(call: Call) -> dict[str, Any]:
    files = call.store.vector_store_files[_vector_store(call)]
    return lookup(files, "vector store file", call.request.match_info["file_id"])


async def get_vector_store_file(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return json_answer(call.request, _vector_store_file(call))


async def delete_vector_store_file(call: Call) -> web.StreamResponse:
    store = call.store
    with store.lock:
        file = _vector_store_file(call)
        del store.vector_store_files[file["vector_store_id"]][file["id"]]
        _refresh_vector_store(store, file["vector_store_id"])
    return json_answer(call.request, deleted_answer(file["id"], "vector_store.file.deleted"))


async def search_vector_store(call: Call) -> web.StreamResponse:
    """No embeddings here: a well-formed, empty result page."""
    with call.store.lock:
        _vector_store(call)
    query = call.body.get("query")
    if isinstance(query, str) and query:
        queries = [query]
    elif isinstance(query, list) and query and all(isinstance(q, str) for q in query):
        queries = query
    else:
        raise missing("query")
    page = {"object": "vector_store.search_results.page", "search_query": queries, "data": [], "has_more": False}
    return json_answer(call.request, {**page, "next_page": None})


async def create_file_batch(call: Call) -> web.StreamResponse:
    """A file batch starts ``in_progress`` and completes the next time it is looked at (so polling ends)."""
    store = call.store
    with store.lock:
        vector_store_id = _vector_store(call)
        file_ids = string_list(call.body, "file_ids", required=True)
        files = [_new_vector_store_file(store, vector_store_id, f, "in_progress") for f in file_ids]
        batch: dict[str, Any] = {
            "id": random_id("vsfb_"),
            "object": "vector_store.files_batch",
            "created_at": unix_now(),
            "vector_store_id": vector_store_id,
            "status": "in_progress",
            "file_counts": _file_counts(f["status"] for f in files),
            "file_ids": file_ids,  # internal, dropped from answers
        }
        store.vector_store_files[vector_store_id].update((f["id"], f) for f in files)
        store.file_batches[vector_store_id][batch["id"]] = batch
        _refresh_vector_store(store, vector_store_id)
        return json_answer(call.request, _public_batch(batch))


def _public_batch(batch: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in batch.items() if k != "file_ids"}


def _file_batch(call: Call, settle: bool) -> dict[str, Any]:
    store = call.store
    vector_store_id = _vector_store(call)
    batch = lookup(store.file_batches[vector_store_id], "file batch", call.request.match_info["batch_id"])
    if settle and batch["status"] == "in_progress":
        _set_batch_files(store, batch, "completed")
    return batch


def _set_batch_files(store: Store, batch: dict[str, Any], status: str) -> None:
    files = store.vector_store_files[batch["vector_store_id"]]
    for file_id in batch["file_ids"]:
        if file_id in files and files[file_id]["status"] == "in_progress":
            files[file_id]["status"] = status
    batch.update(status=status, file_counts=_file_counts(status for _ in batch["file_ids"]))
    _refresh_vector_store(store, batch["vector_store_id"])


async def get_file_batch(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return json_answer(call.request, _public_batch(_file_batch(call, settle=True)))


async def cancel_file_batch(call: Call) -> web.StreamResponse:
    with call.store.lock:
        batch = _file_batch(call, settle=False)
        if batch["status"] != "in_progress":
            raise invalid(f"Cannot cancel a batch with status '{batch['status']}'.")
        _set_batch_files(call.store, batch, "cancelled")
        return json_answer(call.request, _public_batch(batch))


async def list_file_batch_files(call: Call) -> web.StreamResponse:
    with call.store.lock:
        batch = _file_batch(call, settle=True)
        files = call.store.vector_store_files[batch["vector_store_id"]]
        return _filtered_files(call, (files[f] for f in batch["file_ids"] if f in files))
