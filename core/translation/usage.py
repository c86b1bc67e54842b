"""Token usage from a response body or stream event, for the access log.

A regex over the bytes after the last `"usage"` key avoids parsing large bodies
(an embeddings answer can be megabytes) just to log three numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_FIELDS = {
    name: re.compile(rb'"' + name.encode() + rb'"\s*:\s*(\d+)')
    for name in ("prompt_tokens", "completion_tokens", "total_tokens", "input_tokens", "output_tokens")
}


# The answer's model: the last `"model": "..."` key (an escaped quote inside a string cannot match).
_MODEL = re.compile(rb'"model"\s*:\s*"([^"\\]{1,200})"')


@dataclass(slots=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    model: str | None = None  # the model that answered, as the answer names it


def find_usage(data: bytes) -> Usage | None:
    index = data.rfind(b'"usage"')
    if index < 0:
        return None
    tail = data[index:]
    values = {name: _first_int(pattern, tail) for name, pattern in _FIELDS.items()}
    prompt = values["prompt_tokens"] if values["prompt_tokens"] is not None else values["input_tokens"]
    completion = values["completion_tokens"] if values["completion_tokens"] is not None else values["output_tokens"]
    if prompt is None and completion is None and values["total_tokens"] is None:
        return None
    return Usage(prompt, completion, values["total_tokens"], _model(data))


def _model(data: bytes) -> str | None:
    index = data.rfind(b'"model"')
    match = _MODEL.match(data, index) if index >= 0 else None
    return match.group(1).decode(errors="replace") if match else None


def _first_int(pattern: re.Pattern[bytes], data: bytes) -> int | None:
    match = pattern.search(data)
    return int(match.group(1)) if match else None
