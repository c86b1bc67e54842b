"""Azure OpenAI's wire format: model names, content types, error bodies, content filter payloads, the small
builders every answer uses (headers, JSON answers, SSE events, usage, validation errors), and ``Reject``, the error
answer a handler raises.
"""

from __future__ import annotations

import itertools
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from aiohttp import web

from .behaviour import BEHAVIOUR_KEY

CHAT_MODEL = "gpt-4o-2024-08-06"
COMPLETIONS_MODEL = "gpt-35-turbo-instruct"
EMBEDDINGS_MODEL = "text-embedding-ada-002"
SYSTEM_FINGERPRINT = "fp_sim0000000"
EMBEDDING_DIMENSIONS = 8
IMAGES_MODEL = "dall-e-3"
TRANSCRIPTION_MODEL = "whisper"
SPEECH_MODEL = "tts"
API_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")


DOWNLOAD_CHUNK = 64 * 1024  # files/{id}/content is written in pieces of this size


JSON_TYPE = "application/json"
SSE_TYPE = "text/event-stream; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
OCTET_TYPE = "application/octet-stream"
SPEECH_TYPES = {
    "mp3": "audio/mpeg",
    "opus": "audio/opus",
    "aac": "audio/aac",
    "flac": "audio/flac",
    "wav": "audio/wav",
    "pcm": "audio/pcm",
}
TRANSCRIPTION_FORMATS = frozenset({"json", "text", "verbose_json", "srt", "vtt"})

SAFE = {"filtered": False, "severity": "safe"}
NOT_DETECTED = {"filtered": False, "detected": False}
# What Azure attaches to a prompt, to a non-streamed choice and to a streamed content chunk respectively.
PROMPT_FILTER = {"hate": SAFE, "jailbreak": NOT_DETECTED, "self_harm": SAFE, "sexual": SAFE, "violence": SAFE}
CHOICE_FILTER = {
    "hate": SAFE,
    "protected_material_code": NOT_DETECTED,
    "protected_material_text": NOT_DETECTED,
    "self_harm": SAFE,
    "sexual": SAFE,
    "violence": SAFE,
}
CHUNK_FILTER = {"hate": SAFE, "self_harm": SAFE, "sexual": SAFE, "violence": SAFE}
PROMPT_FILTER_RESULTS = [{"prompt_index": 0, "content_filter_results": PROMPT_FILTER}]

DONE_EVENT = b"data: [DONE]\n\n"
NAMED_DONE_EVENT = b"event: done\ndata: [DONE]\n\n"  # how an Assistants run stream ends

ERR_NOT_FOUND = {"code": "404", "message": "Resource not found"}
ERR_API_VERSION = {"code": "BadRequest", "message": "API version not supported"}
ERR_AUTH = {
    "code": "401",
    "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
    "key for an active subscription and use a correct regional API endpoint for your resource.",
}
ERR_DEPLOYMENT = {
    "code": "DeploymentNotFound",
    "message": "The API deployment for this resource does not exist. If you created the deployment within the last "
    "5 minutes, please wait a moment and try again.",
}


def err_operation_not_supported(operation: str, model: str) -> dict[str, str]:
    """Azure's 400 for a deployment whose model does not serve the operation (a Responses-only model asked for chat
    completions; a chat model asked for legacy completions), as reported in microsoft/graphrag#1557 and
    langchain-ai/langchain-azure#228 (``chatCompletion``, gpt-5.1-codex) and
    Azure-Samples/openai-python-enterprise-logging#27 (``completion``): a code and a message, nothing else."""
    return {
        "code": "OperationNotSupported",
        "message": f"The {operation} operation does not work with the specified model, {model}. Please choose "
        "different model and try again. You can learn more about which models can be used with each operation here: "
        "https://go.microsoft.com/fwlink/?linkid=2197993.",
    }


ERR_INVALID_JSON = {
    "message": "We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
    "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)",
    "type": "invalid_request_error",
    "param": None,
    "code": None,
}
ERR_SERVER = {
    "message": "The server had an error while processing your request. Sorry about that!",
    "type": "server_error",
    "param": None,
    "code": "InternalServerError",
}
# The real payload Azure sends when the prompt is blocked (use-blocklists.md): note `innererror`,
# `content_filter_result` (singular) and `type: null`, all unlike the published schema.
ERR_CONTENT_FILTER = {
    "message": "The response was filtered due to the prompt triggering Azure OpenAI's content management policy. "
    "Please modify your prompt and retry. To learn more about our content filtering policies please read our "
    "documentation: https://go.microsoft.com/fwlink/?linkid=2198766",
    "type": None,
    "param": "prompt",
    "code": "content_filter",
    "status": 400,
    "innererror": {
        "code": "ResponsibleAIPolicyViolation",
        "content_filter_result": {
            "hate": SAFE,
            "self_harm": SAFE,
            "sexual": {"filtered": True, "severity": "high"},
            "violence": SAFE,
        },
    },
}
HTML_502 = (
    b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>"
    b"\r\n<hr><center>Microsoft-Azure-Application-Gateway/v2</center>\r\n</body>\r\n</html>\r\n"
)

_RUN_ID = os.urandom(4).hex()
_ids = itertools.count(1)


def next_id(prefix: str) -> str:
    """A unique, cheap id (no uuid4 per request): prefix + per-process salt + counter."""
    return f"{prefix}{_RUN_ID}{next(_ids):012d}"


def count_words(text: str) -> int:
    """Deterministic stand-in for a tokenizer."""
    return len(text.split())


def content_text(content: Any) -> str:
    """Text of a message's content, which may be a string, None or a list of typed parts (text parts joined)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str)
        )
    return ""


def last_user_text(messages: Sequence[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return content_text(message.get("content"))
    return ""


def split_text(text: str, pieces: int) -> list[str]:
    """Exactly ``pieces`` consecutive slices of ``text`` (some empty if the text is shorter), joining back to it."""
    n = len(text)
    return [text[i * n // pieces : (i + 1) * n // pieces] for i in range(pieces)]


def token_usage(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {
        "completion_tokens": completion_tokens,
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chat_usage(
    prompt_tokens: int, completion_tokens: int, reasoning_tokens: int = 0, cached_tokens: int = 0
) -> dict[str, Any]:
    """Azure's chat usage, keys sorted as Azure sends them; ``completion_tokens`` counts the reasoning tokens too,
    ``prompt_tokens`` the cached ones."""
    return {
        "completion_tokens": completion_tokens,
        "completion_tokens_details": {
            "accepted_prediction_tokens": 0,
            "audio_tokens": 0,
            "reasoning_tokens": reasoning_tokens,
            "rejected_prediction_tokens": 0,
        },
        "prompt_tokens": prompt_tokens,
        "prompt_tokens_details": {"audio_tokens": 0, "cached_tokens": cached_tokens},
        "total_tokens": prompt_tokens + completion_tokens,
    }


def sse_event(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


# Azure's first stream event: prompt filter results only, with empty id/object/model. Constant, so built once.
FILTER_ONLY_EVENT = sse_event(
    {"choices": [], "created": 0, "id": "", "model": "", "object": "", "prompt_filter_results": PROMPT_FILTER_RESULTS}
)


def azure_headers(request: web.Request, content_type: str) -> dict[str, str]:
    """Headers Azure puts on every answer; a gateway may pass them through or strip them."""
    request_id = next_id("")
    headers = {
        "Content-Type": content_type,
        "apim-request-id": request_id,
        "x-request-id": request_id,
        "x-ms-region": "Sim Central",
        "x-ratelimit-remaining-requests": "99",
        "x-ratelimit-remaining-tokens": "99000",
    }
    behaviour = request.get(BEHAVIOUR_KEY)
    if behaviour is not None and behaviour.remaining_tokens is not None:
        headers["x-ratelimit-remaining-tokens"] = behaviour.remaining_tokens
    client_request_id = request.headers.get("x-ms-client-request-id")
    if client_request_id is not None:
        headers["x-ms-client-request-id"] = client_request_id
    return headers


def json_answer(
    request: web.Request, obj: Any, status: int = 200, extra: Mapping[str, str] | None = None
) -> web.Response:
    headers = azure_headers(request, JSON_TYPE)
    if extra:
        headers.update(extra)
    return web.Response(body=orjson.dumps(obj), status=status, headers=headers)


def error_answer(
    request: web.Request, status: int, error: Mapping[str, Any], extra: Mapping[str, str] | None = None
) -> web.Response:
    return json_answer(request, {"error": error}, status, extra)


def bad_request(request: web.Request, message: str, param: str | None = None) -> web.Response:
    """A validation error in the OpenAI-compatible shape Azure uses for body problems."""
    error = {"message": message, "type": "invalid_request_error", "param": param, "code": None}
    return error_answer(request, 400, error)


class Reject(Exception):
    """Raised by a handler to answer ``{"error": error}`` with ``status`` (the pipeline turns it into a response)."""

    def __init__(self, status: int, error: Mapping[str, Any]) -> None:
        super().__init__(error.get("message"))
        self.status = status
        self.error = error


def invalid(message: str, param: str | None = None, code: str | None = None) -> Reject:
    return Reject(400, {"message": message, "type": "invalid_request_error", "param": param, "code": code})


def missing(param: str) -> Reject:
    return invalid(f"Missing required parameter: '{param}'.", param)


def wrong_type(name: str, expected: str, value: Any) -> Reject:
    message = f"Invalid type for '{name}': expected {expected}, but got {json_kind(value)} instead."
    return invalid(message, name, "invalid_type")


def not_one_of(value: Any, allowed: Sequence[str], param: str) -> Reject:
    return invalid(f"Invalid value: '{value}'. Supported values are: {quoted_list(allowed)}.", param, "invalid_value")


def quoted_list(values: Sequence[str]) -> str:
    """OpenAI's way of listing values in a message: "'a'", "'a' and 'b'", "'a', 'b', and 'c'"."""
    quoted = [f"'{v}'" for v in values]
    if len(quoted) <= 2:
        return " and ".join(quoted)
    return ", ".join(quoted[:-1]) + ", and " + quoted[-1]


def json_kind(value: Any) -> str:
    """How OpenAI's messages name a JSON value's type ("a string", "an array", ...)."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if value is None:
        return "null"
    return "an object"


def no_such(kind: str, object_id: str) -> Reject:
    """OpenAI's (and Azure's) answer for an id this region does not hold."""
    message = f"No {kind} found with id '{object_id}'."
    return Reject(404, {"message": message, "type": "invalid_request_error", "param": None, "code": None})


def named_event(name: str, obj: Any) -> bytes:
    """A named SSE event (Assistants and Responses streams), serialised at once so later changes do not leak in."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"


def wants_stream(body: Mapping[str, Any]) -> bool:
    return body.get("stream") is True


def wants_usage(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def text_inputs(value: Any) -> list[str | list[int]] | None:
    """A string, a token array, or a non-empty list of either, as a list of items; None if malformed."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not value:
        return None
    if all(isinstance(v, int) for v in value):
        return [value]
    if all(isinstance(v, str) or (isinstance(v, list) and all(isinstance(t, int) for t in v)) for v in value):
        return value
    return None
