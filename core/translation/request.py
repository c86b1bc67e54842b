"""Rewrite an OpenAI request body for a backend.

The common case (an Azure deployment with no addParams/dropParams/forcePrompt)
forwards the client's bytes untouched: Azure takes the deployment from the URL
and ignores the body's `model`, so re-encoding would only cost CPU.
"""

from __future__ import annotations

from typing import Any

import orjson

from core.config.model import Backend

# Parameters the legacy completions API accepts; chat-only ones (tools,
# response_format, ...) would make Azure answer 400 when forcePrompt applies.
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

# LibreChat's completion-style prompt framing (OpenAIClient.buildPrompt), so a
# forcePrompt group behaves the same behind the gateway as it does in LibreChat.
_START = "||>"
_ROLE_LABELS = {"system": "Instructions", "developer": "Instructions", "user": "User", "assistant": "Assistant"}


def upstream_operation(backend: Backend, operation: str) -> str:
    """forcePrompt turns chat requests into completions requests upstream."""
    if backend.force_prompt and operation == "chat/completions":
        return "completions"
    return operation


def asks_usage(payload: dict[str, Any]) -> bool:
    """The caller asked for a streamed answer's usage chunk."""
    options = payload.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def rewrite_body(
    backend: Backend, operation: str, raw: bytes, payload: dict[str, Any], *, ask_usage: bool = False
) -> bytes:
    """The body to send upstream for `operation` on `backend`. `ask_usage`: request the
    stream's usage chunk (Azure reports a stream's tokens only when asked)."""
    if not backend.rewrites_body and not ask_usage:
        return raw
    body = dict(payload)
    if ask_usage:
        options = body.get("stream_options")
        body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    if backend.force_prompt and operation == "chat/completions":
        body = chat_to_completions(body)
    if backend.flavor == "v1":
        body["model"] = backend.deployment  # Azure's v1 API takes the deployment in the body
    if backend.add_params:
        body.update(backend.add_params)
    for name in backend.drop_params:
        body.pop(name, None)
    return orjson.dumps(body)


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
