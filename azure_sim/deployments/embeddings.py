"""Embeddings (``embeddings``)."""

from __future__ import annotations

import base64
import hashlib
import struct
from typing import Any

import orjson
from aiohttp import web

from ..routing import Call
from ..wire import EMBEDDING_DIMENSIONS, bad_request, count_words, json_answer, text_inputs


async def embeddings(call: Call) -> web.StreamResponse:
    """Embeddings: deterministic vectors derived from each input's bytes (float list or base64 float32)."""
    items = text_inputs(call.body.get("input"))
    if items is None:
        return bad_request(call.request, "'input' must be a string, a list of strings or token arrays", "input")
    dimensions = call.body.get("dimensions")
    if not isinstance(dimensions, int) or dimensions < 1:
        dimensions = EMBEDDING_DIMENSIONS
    as_base64 = call.body.get("encoding_format") == "base64"  # the openai SDK asks for base64 by default
    data = []
    tokens = 0
    for index, item in enumerate(items):
        if isinstance(item, str):
            tokens += count_words(item)
            vector = _vector(item.encode(), dimensions)
        else:
            tokens += len(item)
            vector = _vector(orjson.dumps(item), dimensions)
        embedding: Any = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode() if as_base64 else vector
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return json_answer(
        call.request,
        {
            "object": "list",
            "data": data,
            "model": call.model,
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        },
    )


def _vector(seed: bytes, dimensions: int) -> list[float]:
    """``dimensions`` floats in [-1, 1) that depend only on ``seed``."""
    raw = struct.unpack(f"<{dimensions}I", hashlib.shake_128(seed).digest(4 * dimensions))
    return [round(v / 2147483648.0 - 1.0, 6) for v in raw]
