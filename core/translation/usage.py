"""Token usage from a response body or stream event, for the access log.

A regex over the bytes after the last `"usage"` key avoids parsing large bodies
(an embeddings answer can be megabytes) just to log three numbers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A count after its key: `"prompt_tokens": 12`. Keys are found with bytes.find, far quicker than a regex
# that tries each position.
_NUMBER = re.compile(rb"\s*:\s*(\d+)")


# The answer's model: the last `"model": "..."` key (an escaped quote inside a string cannot match).
_MODEL = re.compile(rb'"model"\s*:\s*"([^"\\]{1,200})"')


@dataclass(slots=True)
class Usage:
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    model: str | None = None  # the model that answered, as the answer names it
    # Of the prompt, the tokens read from Azure's prompt cache; of the completion, those spent reasoning.
    cached_tokens: int | None = None
    reasoning_tokens: int | None = None


def find_usage(data: bytes) -> Usage | None:
    index = data.rfind(b'"usage"')
    if index < 0:
        return None
    prompt = _count(data, b'"prompt_tokens"', index)
    if prompt is None:
        prompt = _count(data, b'"input_tokens"', index)  # the Responses API's names
    completion = _count(data, b'"completion_tokens"', index)
    if completion is None:
        completion = _count(data, b'"output_tokens"', index)
    total = _count(data, b'"total_tokens"', index)
    if prompt is None and completion is None and total is None:
        return None
    # prompt_tokens_details / input_tokens_details, completion_tokens_details / output_tokens_details.
    cached, reasoning = _count(data, b'"cached_tokens"', index), _count(data, b'"reasoning_tokens"', index)
    return Usage(prompt, completion, total, _model(data), cached, reasoning)


def _count(data: bytes, key: bytes, start: int) -> int | None:
    """The first count under `key` after `start`."""
    at = data.find(key, start)
    while at >= 0:
        match = _NUMBER.match(data, at + len(key))
        if match:
            return int(match.group(1))
        at = data.find(key, at + len(key))
    return None


def _model(data: bytes) -> str | None:
    index = data.rfind(b'"model"')
    match = _MODEL.match(data, index) if index >= 0 else None
    return match.group(1).decode(errors="replace") if match else None
