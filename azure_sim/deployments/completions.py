"""Legacy completions (``completions``)."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from ..routing import Call
from ..streams import send_sse, stream_script
from ..wire import (
    CHOICE_FILTER,
    CHUNK_FILTER,
    PROMPT_FILTER_RESULTS,
    bad_request,
    count_words,
    json_answer,
    next_id,
    text_inputs,
    token_usage,
    wants_stream,
)


async def completions(call: Call) -> web.StreamResponse:
    """Legacy completions: answer ``"Echo: " + prompt`` (the last prompt when a list is sent)."""
    prompts = _prompts(call.body.get("prompt", ""))
    if prompts is None:
        return bad_request(call.request, "'prompt' must be a string, a list of strings or token arrays", "prompt")
    answer = "Echo: " + prompts[-1][0]
    usage = token_usage(sum(tokens for _, tokens in prompts), count_words(answer))
    response_id = next_id("cmpl-")
    if wants_stream(call.body):
        script = stream_script(
            call,
            object_name="text_completion",
            response_id=response_id,
            answer=answer,
            usage=usage,
            content_choice=_text_choice,
            opening_choice=None,
            finish_choice={
                "content_filter_results": {},
                "finish_reason": "stop",
                "index": 0,
                "logprobs": None,
                "text": "",
            },
            fingerprint=False,
        )
        return await send_sse(call, script)
    return json_answer(
        call.request,
        {
            "choices": [
                {
                    "content_filter_results": CHOICE_FILTER,
                    "finish_reason": "stop",
                    "index": 0,
                    "logprobs": None,
                    "text": answer,
                }
            ],
            "created": int(time.time()),
            "id": response_id,
            "model": call.model,
            "object": "text_completion",
            "prompt_filter_results": PROMPT_FILTER_RESULTS,
            "usage": usage,
        },
    )


def _text_choice(piece: str) -> dict[str, Any]:
    return {"content_filter_results": CHUNK_FILTER, "finish_reason": None, "index": 0, "logprobs": None, "text": piece}


def _prompts(prompt: Any) -> list[tuple[str, int]] | None:
    """Normalise a completions prompt to [(text, tokens)]; None if malformed."""
    items = text_inputs(prompt)
    if items is None:
        return None
    return [
        (item, count_words(item)) if isinstance(item, str) else (" ".join(map(str, item)), len(item)) for item in items
    ]
