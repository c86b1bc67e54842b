"""forcePrompt (LibreChat's `forcePrompt: true`): a chat completion served by a completions deployment.

The chat request goes upstream as a completions request whose `prompt` carries the conversation, framed
the way LibreChat frames it (OpenAIClient.buildPrompt), so a forcePrompt group behaves the same behind the
gateway as it does in LibreChat; the completion (whole or streamed) comes back as the chat completion the
client asked for.
"""

from __future__ import annotations

from typing import Any

import orjson

from core.translation.stream import event_json

# Parameters the legacy completions API accepts; chat-only ones (tools,
# response_format, ...) would make Azure answer 400.
_COMPLETIONS_PARAMS = frozenset(
    {
        "model",
        "prompt",
        "max_tokens",
        "temperature",
        "top_p",
        "n",
        "stream",
        "stream_options",
        "echo",
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "best_of",
        "logit_bias",
        "user",
        "seed",
        "suffix",
    }
)
_START = "||>"
_ROLE_LABELS = {"system": "Instructions", "developer": "Instructions", "user": "User", "assistant": "Assistant"}


def chat_to_completions(body: dict[str, Any]) -> dict[str, Any]:
    """A chat request as a completions request whose `prompt` carries the conversation."""
    converted = {k: v for k, v in body.items() if k in _COMPLETIONS_PARAMS}
    if "max_tokens" not in converted and "max_completion_tokens" in body:
        converted["max_tokens"] = body["max_completion_tokens"]
    converted["prompt"] = messages_to_prompt(body.get("messages") or [])
    converted.setdefault("stop", [_START])
    return converted


def messages_to_prompt(messages: list[Any]) -> str:
    parts = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = str(message.get("role", "user"))
        label = _ROLE_LABELS.get(role, role.capitalize())
        parts.append(f"{_START}{label}:\n{message_text(message.get('content'))}\n")
    parts.append(f"{_START}Assistant:\n")
    return "".join(parts)


def message_text(content: Any) -> str:
    """The text of a message whose content is a string or a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "") for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


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


class CompletionEventsAsChat:
    """A stream's completions chunks as chat.completion.chunk events, the first one carrying the role."""

    __slots__ = ("_first",)

    def __init__(self) -> None:
        self._first = True

    def convert(self, event: bytes) -> bytes:
        chunk = event_json(event)
        if chunk is None or chunk.get("object") != "text_completion":
            return event
        converted = completion_chunk_to_chat_chunk(chunk, first=self._first)
        self._first = False
        return b"data: " + orjson.dumps(converted) + b"\n\n"
