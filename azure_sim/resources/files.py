"""Files (upload, list, get, delete, content)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..routing import Call
from ..streams import send_chunks
from ..wire import DOWNLOAD_CHUNK, OCTET_TYPE, json_answer, missing
from .common import by_creation, deleted_answer, list_page, lookup, random_id, required_string, unix_now


async def upload_file(call: Call) -> web.StreamResponse:
    """Multipart ``file`` + ``purpose``; Azure answers 201. The bytes are kept (once) for ``files/{id}/content``."""
    upload = call.uploads.get("file")
    if upload is None or upload.data is None:
        raise missing("file")
    purpose = required_string(call.body, "purpose")
    file: dict[str, Any] = {
        "id": random_id("file-"),
        "object": "file",
        "bytes": upload.size,
        "created_at": unix_now(),
        "filename": upload.filename,
        "purpose": purpose,
        "status": "processed",
        "status_details": None,
    }
    with call.store.lock:
        call.store.files[file["id"]] = file
        call.store.file_contents[file["id"]] = upload.data
    return json_answer(call.request, file, status=201)


async def list_files(call: Call) -> web.StreamResponse:
    purpose = call.request.query.get("purpose")
    with call.store.lock:
        files = [f for f in call.store.files.values() if purpose is None or f["purpose"] == purpose]
        return json_answer(call.request, list_page(call.request, by_creation(files)))


async def get_file(call: Call) -> web.StreamResponse:
    with call.store.lock:
        return json_answer(call.request, lookup(call.store.files, "file", call.request.match_info["file_id"]))


async def delete_file(call: Call) -> web.StreamResponse:
    file_id = call.request.match_info["file_id"]
    with call.store.lock:
        lookup(call.store.files, "file", file_id)
        del call.store.files[file_id]
        del call.store.file_contents[file_id]
    return json_answer(call.request, deleted_answer(file_id, "file"))


async def get_file_content(call: Call) -> web.StreamResponse:
    """The stored bytes as ``application/octet-stream``, in DOWNLOAD_CHUNK pieces (chunk delay between them)."""
    file_id = call.request.match_info["file_id"]
    with call.store.lock:
        lookup(call.store.files, "file", file_id)
        view = memoryview(call.store.file_contents[file_id])
    pieces = (bytes(view[i : i + DOWNLOAD_CHUNK]) for i in range(0, len(view), DOWNLOAD_CHUNK))
    return await send_chunks(call, pieces, OCTET_TYPE, length=len(view))
