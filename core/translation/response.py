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
    return _as_chat(completion, "chat.completion", choices)


def completion_chunk_to_chat_chunk(chunk: dict[str, Any], *, first: bool) -> dict[str, Any]:
    choices = []
    for i, choice in enumerate(chunk.get("choices") or []):
        delta: dict[str, Any] = {"content": choice.get("text", "")}
        if first:
            delta["role"] = "assistant"
        choices.append({"index": choice.get("index", i), "delta": delta, "finish_reason": choice.get("finish_reason")})
    return _as_chat(chunk, "chat.completion.chunk", choices)


def _as_chat(source: dict[str, Any], object_name: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
    """The completions answer's envelope (id, created, model, usage) around chat choices."""
    chat: dict[str, Any] = {
        "id": source.get("id", ""),
        "object": object_name,
        "created": source.get("created", 0),
        "model": source.get("model", ""),
        "choices": choices,
    }
    if source.get("usage") is not None:
        chat["usage"] = source["usage"]
    return chat
