"""Rewrite a whole (non-streamed) answer for the client.

Only forcePrompt needs this: the upstream answered a completions request, the
client asked for a chat completion.
"""

from __future__ import annotations

from typing import Any


def completion_to_chat(completion: dict[str, Any]) -> dict[str, Any]:
    choices = [
        {
            "index": choice.get("index", i),
            "message": {"role": "assistant", "content": choice.get("text", "")},
            "finish_reason": choice.get("finish_reason"),
            "logprobs": None,
        }
        for i, choice in enumerate(completion.get("choices") or [])
    ]
    chat: dict[str, Any] = {
        "id": completion.get("id", ""),
        "object": "chat.completion",
        "created": completion.get("created", 0),
        "model": completion.get("model", ""),
        "choices": choices,
    }
    if completion.get("usage") is not None:
        chat["usage"] = completion["usage"]
    return chat


def completion_chunk_to_chat_chunk(chunk: dict[str, Any], *, first: bool) -> dict[str, Any]:
    choices = []
    for i, choice in enumerate(chunk.get("choices") or []):
        delta: dict[str, Any] = {"content": choice.get("text", "")}
        if first:
            delta["role"] = "assistant"
        choices.append({"index": choice.get("index", i), "delta": delta, "finish_reason": choice.get("finish_reason")})
    converted: dict[str, Any] = {
        "id": chunk.get("id", ""),
        "object": "chat.completion.chunk",
        "created": chunk.get("created", 0),
        "model": chunk.get("model", ""),
        "choices": choices,
    }
    if chunk.get("usage") is not None:
        converted["usage"] = chunk["usage"]
    return converted
