"""Image generations and edits (``images/generations``, ``images/edits``)."""

from __future__ import annotations

import base64
import hashlib
import itertools
import struct
import time
import zlib
from typing import Any

from aiohttp import web

from ..routing import Call
from ..wire import NOT_DETECTED, SAFE, invalid, json_answer, missing

# Azure attaches these to every generated image (dalleContentFilterResults / dalleFilterResults).
IMAGE_CONTENT_FILTER = {"hate": SAFE, "self_harm": SAFE, "sexual": SAFE, "violence": SAFE}
IMAGE_PROMPT_FILTER = {**IMAGE_CONTENT_FILTER, "jailbreak": NOT_DETECTED, "profanity": NOT_DETECTED}
_image_numbers = itertools.count(1)


def _png(seed: bytes) -> bytes:
    """A valid 1x1 RGB PNG whose colour depends only on ``seed``."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00" + hashlib.sha256(seed).digest()[:3])
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")


def _images_answer(prompt: str, n: Any, response_format: Any) -> dict[str, Any]:
    if isinstance(n, str) and n.isdigit():  # a multipart field
        n = int(n)
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= 10:
        raise invalid("'n' must be an integer between 1 and 10", "n")
    if response_format not in ("url", "b64_json"):
        raise invalid("'response_format' must be one of 'url', 'b64_json'", "response_format")
    data = []
    for index in range(n):
        image: dict[str, Any] = {}
        if response_format == "url":
            image["url"] = f"https://sim.invalid/img/{next(_image_numbers)}.png"
        else:
            image["b64_json"] = base64.b64encode(_png(f"{index}:{prompt}".encode())).decode()
        image["revised_prompt"] = prompt
        image["content_filter_results"] = IMAGE_CONTENT_FILTER
        image["prompt_filter_results"] = IMAGE_PROMPT_FILTER
        data.append(image)
    return {"created": int(time.time()), "data": data}


async def image_generations(call: Call) -> web.StreamResponse:
    """Images: one URL (``https://sim.invalid/img/N.png``) or a tiny base64 PNG per requested image."""
    prompt = call.body.get("prompt")
    if not isinstance(prompt, str) or not prompt:
        raise missing("prompt")
    answer = _images_answer(prompt, call.body.get("n", 1), call.body.get("response_format") or "url")
    return json_answer(call.request, answer)


async def image_edits(call: Call) -> web.StreamResponse:
    """Image edits: multipart with an ``image`` file part (``image[]`` too) and a ``prompt`` field."""
    if not any(name == "image" or name.startswith("image[") for name in call.uploads):
        raise missing("image")
    prompt = call.body.get("prompt")
    if not prompt:
        raise missing("prompt")
    answer = _images_answer(prompt, call.body.get("n", "1"), call.body.get("response_format") or "url")
    return json_answer(call.request, answer)
