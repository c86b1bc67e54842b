"""The resource-scoped paths the gateway serves, matched on the raw request path.

The decoded path cannot be trusted to keep its shape: `..%2F..%2Fx` decodes to
`../../x`, and `%3F` / `%23` to a query or a fragment. So the raw (still
percent-encoded) path is split into segments first, must match one of the known
shapes with its method, and every id is decoded once and must be a plain token.
What reaches the upstream is then always the same shape with the same ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote

from core.errors import GatewayError

ID = "{id}"
# Azure's ids: `file-...`, `asst_...`, `assistant-...`, `thread_...`, `run_...`, `vs_...`, `batch_...`, `resp_...`.
# No `.`, `/`, `%`, `?` or `#`: an id can never be a dot-segment or leave its segment.
_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")

_RUN = "threads/{id}/runs/{id}"
_VECTOR_STORE = "vector_stores/{id}"
_FILE_BATCH = _VECTOR_STORE + "/file_batches/{id}"
# Every path under /v1/ the resource-scoped APIs serve, and its methods (OpenAI's API, as Azure serves it).
SHAPES: dict[str, frozenset[str]] = {
    shape: frozenset(methods.split())
    for shape, methods in {
        "assistants": "GET POST",
        "assistants/{id}": "GET POST DELETE",
        "threads": "POST",
        "threads/runs": "POST",
        "threads/{id}": "GET POST DELETE",
        "threads/{id}/messages": "GET POST",
        "threads/{id}/messages/{id}": "GET POST DELETE",
        "threads/{id}/runs": "GET POST",
        _RUN: "GET POST",
        _RUN + "/submit_tool_outputs": "POST",
        _RUN + "/cancel": "POST",
        _RUN + "/steps": "GET",
        _RUN + "/steps/{id}": "GET",
        "vector_stores": "GET POST",
        _VECTOR_STORE: "GET POST DELETE",
        _VECTOR_STORE + "/files": "GET POST",
        _VECTOR_STORE + "/files/{id}": "GET DELETE",
        _VECTOR_STORE + "/search": "POST",
        _VECTOR_STORE + "/file_batches": "POST",
        _FILE_BATCH: "GET",
        _FILE_BATCH + "/cancel": "POST",
        _FILE_BATCH + "/files": "GET",
        "files": "GET POST",
        "files/{id}": "GET DELETE",
        "files/{id}/content": "GET",
        "batches": "GET POST",
        "batches/{id}": "GET",
        "batches/{id}/cancel": "POST",
        "responses": "POST",
        "responses/{id}": "GET DELETE",
        "responses/{id}/input_items": "GET",
    }.items()
}
_SHAPE_SEGMENTS = {shape: tuple(shape.split("/")) for shape in SHAPES}


@dataclass(frozen=True, slots=True)
class ResourcePath:
    """A request path under /v1/, matched to a known shape; every id in it is a valid token."""

    shape: str  # e.g. "threads/{id}/runs"
    segments: tuple[str, ...]  # e.g. ("threads", "thread_abc", "runs")

    @property
    def family(self) -> str:
        return self.segments[0]

    @property
    def object_id(self) -> str | None:
        """The id of the object the path is about (the thread of `threads/{id}/runs`), if any."""
        return self.segments[1] if len(self.segments) > 1 and self.shape.split("/")[1] == ID else None


def is_valid_id(value: str) -> bool:
    return _ID_PATTERN.fullmatch(value) is not None


def invalid_id(param: str | None = None) -> GatewayError:
    return GatewayError(
        400,
        "Invalid object id: ids are 1 to 128 letters, digits, `_` or `-`, starting with a letter or digit.",
        param=param,
        code="invalid_id",
    )


def parse(method: str, raw_path: bytes, shown_path: str, mount: str = "v1") -> ResourcePath:
    """The path of a resource-scoped request under `mount` (core/api.py: "v1", "openai/v1" or "openai").
    A shape the gateway does not serve (or not with this method) is a 404 like any unknown route; a
    malformed id a 400."""
    raw = raw_path.decode("latin-1").removeprefix(f"/{mount}/").rstrip("/")
    segments = raw.split("/")
    for shape, pattern in _SHAPE_SEGMENTS.items():
        if method in SHAPES[shape] and _fits(pattern, segments):
            ids = [unquote(s) for s, p in zip(segments, pattern, strict=True) if p == ID]
            if not all(is_valid_id(object_id) for object_id in ids):
                raise invalid_id()
            parts = zip(segments, pattern, strict=True)
            return ResourcePath(shape, tuple(unquote(s) if p == ID else s for s, p in parts))
    raise GatewayError(404, f"Invalid URL ({method} {shown_path})", code="unknown_url")


def _fits(pattern: tuple[str, ...], segments: list[str]) -> bool:
    """Literal segments match as sent (never decoded); an id slot takes any non-empty segment."""
    return len(pattern) == len(segments) and all(
        segment != "" if part == ID else segment == part for part, segment in zip(pattern, segments, strict=True)
    )
