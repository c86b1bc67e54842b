"""The checks every request passes in Azure's order: api-version, the key, the body as read."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson
from aiohttp import BodyPartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from .routing import MULTIPART_BODY, OPTIONAL_JSON_BODY, Family, Route, Scope, Upload
from .wire import API_VERSION_RE, DOWNLOAD_CHUNK, ERR_API_VERSION, ERR_NOT_FOUND, OCTET_TYPE, error_answer


def check_api_version(request: web.Request, scope: Scope, family: Family | None = None) -> web.Response | None:
    """Azure's answers: missing -> 404, malformed or repeated -> 400, dated but too old (or not a preview) for the
    resource family -> 404 like an unknown route. Serverless: optional, but at most once. v1: absent, v1 or preview."""
    values = request.query.getall("api-version", ())
    if len(values) > 1:
        return error_answer(request, 400, ERR_API_VERSION)
    if not values:
        return error_answer(request, 404, ERR_NOT_FOUND) if scope.api_version_required else None
    version = values[0]
    if scope.api_versions is not None and version not in scope.api_versions:
        return error_answer(request, 400, ERR_API_VERSION)
    if scope.api_version_required:
        if not API_VERSION_RE.match(version):
            return error_answer(request, 400, ERR_API_VERSION)
        if (
            family is not None
            and family.min_preview is not None
            and (not version.endswith("-preview") or version[:10] < family.min_preview)
        ):
            return error_answer(request, 404, ERR_NOT_FOUND)
    return None


@dataclass(slots=True)
class ReadBody:
    """A request body as read before anything else: raw JSON bytes, or (multipart) fields and file parts."""

    raw: bytes = b""
    json: Any = None
    form: dict[str, str] | None = None  # None: not a multipart body
    uploads: dict[str, Upload] = field(default_factory=dict)
    error: str | None = None  # a malformed multipart body


async def read_body(request: web.Request, kind: str, keep_upload: bool = False) -> ReadBody:
    """JSON: read whole and parse. Multipart: stream each file part through sha256 (its bytes kept only when
    ``keep_upload``), so an upload is never held twice."""
    if kind == MULTIPART_BODY and request.content_type.startswith("multipart/"):
        form: dict[str, str] = {}
        read = ReadBody(form=form)
        try:
            reader = await request.multipart()
            async for part in reader:
                if not isinstance(part, BodyPartReader) or not part.name:
                    raise ValueError("nested or unnamed multipart part")
                if part.filename is None:
                    form[part.name] = await part.text()
                    continue
                digest = hashlib.sha256()
                size = 0
                data = bytearray() if keep_upload else None
                while chunk := await part.read_chunk(DOWNLOAD_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    if data is not None:
                        data += chunk
                content_type = part.headers.get("Content-Type", OCTET_TYPE)
                upload = Upload(part.name, part.filename, content_type, size, digest.hexdigest(), data)
                read.uploads.setdefault(part.name, upload)
        except (ValueError, AssertionError, LookupError, HttpProcessingError) as exc:
            read.error = f"Could not parse multipart form: {exc}".strip()
        return read
    raw = await request.read()
    parsed: Any = None
    if raw:
        try:
            parsed = orjson.loads(raw)
        except orjson.JSONDecodeError:
            parsed = None
    return ReadBody(raw=raw, json=parsed)


def request_body(route: Route, read: ReadBody) -> dict[str, Any] | None:
    """The body a handler sees, or None when it is not acceptable for the route (answered by the caller)."""
    if route.body == MULTIPART_BODY:
        return read.form if read.form is not None and read.error is None else None
    if route.body == OPTIONAL_JSON_BODY and not read.raw:
        return {}
    return read.json if isinstance(read.json, dict) else None


def request_key(request: web.Request) -> str | None:
    key = request.headers.get("api-key")
    if key:
        return key
    authorization = request.headers.get("Authorization", "")
    if authorization[:7].lower() == "bearer " and authorization[7:].strip():
        return authorization[7:].strip()
    return None
