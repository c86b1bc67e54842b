"""Chat completions (``chat/completions``)."""

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
    SYSTEM_FINGERPRINT,
    bad_request,
    chat_usage,
    content_text,
    count_words,
    json_answer,
    last_user_text,
    next_id,
    wants_stream,
)


async def chat_completions(call: Call) -> web.StreamResponse:
    """Chat completions: answer ``"Echo: " + last user text``, as Azure JSON or an Azure-flavoured SSE stream."""
    messages = call.body.get("messages")
    if not isinstance(messages, list) or not messages:
        return bad_request(call.request, "'messages' is a required property", "messages")
    answer = "Echo: " + last_user_text(messages)
    prompt_tokens = sum(count_words(content_text(m.get("content"))) for m in messages if isinstance(m, dict))
    usage = chat_usage(prompt_tokens, count_words(answer))
    response_id = next_id("chatcmpl-")
    if wants_stream(call.body):
        script = stream_script(
            call,
            object_name="chat.completion.chunk",
            response_id=response_id,
            answer=answer,
            usage=usage,
            content_choice=_chat_content_choice,
            opening_choice={
                "content_filter_results": {},
                "delta": {"content": "", "refusal": None, "role": "assistant"},
                "finish_reason": None,
                "index": 0,
                "logprobs": None,
            },
            finish_choice={
                "content_filter_results": {},
                "delta": {},
                "finish_reason": "stop",
                "index": 0,
                "logprobs": None,
            },
            fingerprint=True,
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
                    "message": {"content": answer, "refusal": None, "role": "assistant"},
                }
            ],
            "created": int(time.time()),
            "id": response_id,
            "model": call.model,
            "object": "chat.completion",
            "prompt_filter_results": PROMPT_FILTER_RESULTS,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "usage": usage,
        },
    )


def _chat_content_choice(piece: str) -> dict[str, Any]:
    return {
        "content_filter_results": CHUNK_FILTER,
        "delta": {"content": piece},
        "finish_reason": None,
        "index": 0,
        "logprobs": None,
    }
