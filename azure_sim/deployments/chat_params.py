"""Azure's checks of a chat completions request, with its 400 answers (OpenAI's messages, which Azure's
deployments of OpenAI models send): the messages' shape and roles, sampling ranges, what a reasoning model refuses,
tools, tool_choice and response_format."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..models import DEFAULT_PROFILE, ModelProfile, check_effort
from ..wire import Reject, content_text, invalid, missing, not_one_of, wrong_type

ROLES = ("system", "assistant", "user", "function", "tool", "developer")
# Dated api-versions before 2024-12-01-preview know no developer role (their message schemas stop at tool and
# function); Azure answers it with the enum error (run-llama/llama_index#17544: "Invalid value: 'developer'.
# Supported values are: 'system', 'assistant', 'user', 'function', and 'tool'.").
ROLES_BEFORE_DEVELOPER = ROLES[:-1]
DEVELOPER_ROLE_SINCE = "2024-12-01"
TOOL_CHOICES = ("none", "auto", "required")
RESPONSE_FORMATS = ("json_object", "json_schema", "text")
# name -> (minimum, maximum or None, integer?)
RANGES: dict[str, tuple[float, float | None, bool]] = {
    "temperature": (0, 2, False),
    "top_p": (0, 1, False),
    "presence_penalty": (-2, 2, False),
    "frequency_penalty": (-2, 2, False),
    "n": (1, 128, True),
    "max_tokens": (1, None, True),
    "max_completion_tokens": (1, None, True),
}


# What a reasoning model refuses on chat completions, in the order it is checked (only the first offence is
# answered): the parameter, the value it accepts as if absent (its default), and whether reasoning_effort "none"
# lifts the refusal. Azure's list: "temperature, top_p, presence_penalty, frequency_penalty, logprobs, top_logprobs,
# logit_bias, max_tokens" (https://learn.microsoft.com/azure/ai-foundry/openai/how-to/reasoning, "Not Supported").
# The order is documented nowhere; reports show temperature answered before max_tokens (NousResearch/hermes-agent
# #78305) and, for gpt-5, top_p before presence_penalty before frequency_penalty; the rest follow Azure's list.
# gpt-5.1 and gpt-5.2 take the sampling parameters and logprobs at effort "none" (their default), as OpenAI's
# gpt-5.1 guide says (vercel/ai#10932 quotes it); logit_bias and max_tokens stay refused whatever the effort.
_UNSET = object()
REASONING_REFUSALS: tuple[tuple[str, Any, bool], ...] = (
    ("temperature", 1, True),
    ("top_p", 1, True),
    ("presence_penalty", 0, True),
    ("frequency_penalty", 0, True),
    ("logprobs", False, True),
    ("top_logprobs", _UNSET, True),
    ("logit_bias", _UNSET, False),
    ("max_tokens", _UNSET, False),
)


@dataclass(frozen=True, slots=True)
class ChatRequest:
    """A chat completions request that passed every check."""

    messages: list[dict[str, Any]]
    effort: str | None  # the reasoning effort it runs at (None: the model does not reason)


def check_chat_request(
    body: Mapping[str, Any], profile: ModelProfile = DEFAULT_PROFILE, api_version: str | None = None
) -> ChatRequest:
    """The request's messages and effort, once every check passed; raises ``Reject`` (400) at the first that fails.

    Types and ranges come first (schema checks), then what the deployment's model refuses, then tools and formats.
    ``api_version``: the dated version asked for (None: the v1 API's, which takes every role).
    """
    messages = _messages(body, roles_of(api_version))
    for name, (low, high, integer) in RANGES.items():
        _in_range(body, name, low, high, integer)
    effort = _reasoning(body, profile) if profile.reasoning else None
    tools = _tools(body)
    _tool_choice(body.get("tool_choice"), tools)
    _response_format(body.get("response_format"), messages)
    return ChatRequest(messages, effort)


def _reasoning(body: Mapping[str, Any], profile: ModelProfile) -> str | None:
    """The checks of a reasoning model: its effort, then the parameters it refuses (REASONING_REFUSALS)."""
    effort = check_effort(body.get("reasoning_effort"), profile, "reasoning_effort")
    for name, default, lifted_at_none in REASONING_REFUSALS:
        value = body.get(name)
        if value is None or value == default or (lifted_at_none and effort == "none"):
            continue
        raise _refused(name, value)
    return effort


def _refused(name: str, value: Any) -> Reject:
    """OpenAI's words, which Azure's deployments send: temperature (documented default 1) names the value it was
    sent (BerriAI/litellm#13390, diffbot/code-gpt-docs#445); every other parameter is refused whatever its value
    (aandrew-me/tgpt#333 and lobehub/lobehub#7479 for top_p, nextai-translator#1781 for presence_penalty); max_tokens
    adds its replacement (griptape-ai/ComfyUI-Griptape#312)."""
    if name == "temperature":
        message = (
            f"Unsupported value: 'temperature' does not support {value} with this model. "
            "Only the default (1) value is supported."
        )
        return invalid(message, name, "unsupported_value")
    message = f"Unsupported parameter: '{name}' is not supported with this model."
    if name == "max_tokens":
        message += " Use 'max_completion_tokens' instead."
    return invalid(message, name, "unsupported_parameter")


def roles_of(api_version: str | None) -> tuple[str, ...]:
    """The message roles a dated api-version's chat completions take."""
    if api_version is None or not api_version[:4].isdigit():
        return ROLES
    return ROLES_BEFORE_DEVELOPER if api_version[:10] < DEVELOPER_ROLE_SINCE else ROLES


def _messages(body: Mapping[str, Any], roles: tuple[str, ...]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if messages is None:
        raise missing("messages")
    if not isinstance(messages, list):
        raise wrong_type("messages", "an array of objects", messages)
    if not messages:
        raise invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "messages",
            "empty_array",
        )
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise wrong_type(where, "an object", message)
        role = message.get("role")
        if role is None:
            raise missing(f"{where}.role")
        if role not in roles:
            raise not_one_of(role, roles, f"{where}.role")
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise missing(f"{where}.tool_call_id")
    return messages


def _in_range(body: Mapping[str, Any], name: str, low: float, high: float | None, integer: bool) -> None:
    value = body.get(name)
    if value is None:
        return
    kind = "integer" if integer else "decimal"
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        raise wrong_type(name, f"an {kind}" if integer else f"a {kind}", value)
    if value < low:
        raise invalid(
            f"Invalid '{name}': {kind} below minimum value. Expected a value >= {low}, but got {value} instead.",
            name,
            f"{kind}_below_min_value",
        )
    if high is not None and value > high:
        raise invalid(
            f"Invalid '{name}': {kind} above maximum value. Expected a value <= {high}, but got {value} instead.",
            name,
            f"{kind}_above_max_value",
        )


def _tools(body: Mapping[str, Any]) -> list[Any]:
    tools = body.get("tools")
    if tools is None:
        return []
    if not isinstance(tools, list):
        raise wrong_type("tools", "an array of objects", tools)
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise wrong_type(where, "an object", tool)
        if tool.get("type") != "function":
            raise not_one_of(tool.get("type"), ("function",), f"{where}.type")
        function = tool.get("function")
        if not isinstance(function, dict):
            raise missing(f"{where}.function")
        if not isinstance(function.get("name"), str) or not function["name"]:
            raise missing(f"{where}.function.name")
        if "parameters" in function and not isinstance(function["parameters"], dict):
            raise wrong_type(f"{where}.function.parameters", "an object", function["parameters"])
    return tools


def _tool_choice(choice: Any, tools: list[Any]) -> None:
    if choice is None:
        return
    if not tools:
        raise invalid(
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.", "tool_choice"
        )
    if isinstance(choice, str):
        if choice not in TOOL_CHOICES:
            raise not_one_of(choice, TOOL_CHOICES, "tool_choice")
        return
    function = choice.get("function") if isinstance(choice, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(name, str):
        raise missing("tool_choice.function.name")
    if name not in [tool["function"]["name"] for tool in tools]:
        message = f"Invalid value for 'tool_choice': no function named '{name}' was specified in the 'tools' parameter."
        raise invalid(message, "tool_choice")


def _response_format(response_format: Any, messages: list[dict[str, Any]]) -> None:
    if response_format is None:
        return
    if not isinstance(response_format, dict):
        raise wrong_type("response_format", "an object", response_format)
    kind = response_format.get("type")
    if kind not in RESPONSE_FORMATS:
        raise not_one_of(kind, RESPONSE_FORMATS, "response_format.type")
    if kind == "json_schema":
        spec = response_format.get("json_schema")
        if not isinstance(spec, dict):
            raise missing("response_format.json_schema")
        if not isinstance(spec.get("name"), str) or not spec["name"]:
            raise missing("response_format.json_schema.name")
    if kind == "json_object" and not any("json" in content_text(m.get("content")).lower() for m in messages):
        raise invalid(
            "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
            "messages",
        )
