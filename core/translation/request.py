"""A request body as one backend takes it: its addParams and dropParams, and the deployment in the body
where the backend's API wants it there (Azure's v1 API).

The common case (an Azure deployment with none of these) forwards the client's bytes untouched: Azure
takes the deployment from the URL and ignores the body's `model`, so re-encoding would only cost CPU.
"""

from __future__ import annotations

from typing import Any

import orjson

from core.config.model import Backend


def asks_usage(payload: dict[str, Any]) -> bool:
    """The caller asked for a streamed answer's usage chunk."""
    options = payload.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def with_usage_asked(body: dict[str, Any]) -> dict[str, Any]:
    """`body` asking for the stream's usage chunk (Azure reports a stream's tokens only when asked)."""
    options = body.get("stream_options")
    return {**body, "stream_options": {**(options if isinstance(options, dict) else {}), "include_usage": True}}


def for_backend(backend: Backend, body: dict[str, Any]) -> bytes:
    """`body` (already translated for the backend's API) with the backend's own settings applied, encoded."""
    if backend.flavor == "v1":
        body = {**body, "model": backend.deployment}  # Azure's v1 API takes the deployment in the body
    if backend.add_params:
        body = {**body, **backend.add_params}
    if backend.drop_params:
        body = {name: value for name, value in body.items() if name not in backend.drop_params}
    return orjson.dumps(body)
