"""Azure's checks of a chat completions request, with its 400 answers (OpenAI's messages, which Azure's
deployments of OpenAI models send): the messages' shape and roles, sampling ranges, tools, tool_choice and
response_format."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..wire import content_text, invalid, missing

ROLES = ("system", "assistant", "user", "function", "tool", "developer")
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


def check_chat_request(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The request's messages, once every check passed; raises ``Reject`` (400) at the first that fails."""
    messages = _messages(body)
    for name, (low, high, integer) in RANGES.items():
        _in_range(body, name, low, high, integer)
    tools = _tools(body)
    _tool_choice(body.get("tool_choice"), tools)
    _response_format(body.get("response_format"), messages)
    return messages


def tool_names(body: Mapping[str, Any]) -> list[str]:
    """The names of the function tools offered (checked by ``check_chat_request``)."""
    return [tool["function"]["name"] for tool in body.get("tools") or ()]


def _messages(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    messages = body.get("messages")
    if messages is None:
        raise missing("messages")
    if not isinstance(messages, list):
        raise _wrong_type("messages", "an array of objects", messages)
    if not messages:
        raise invalid(
            "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            "messages",
            "empty_array",
        )
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise _wrong_type(where, "an object", message)
        role = message.get("role")
        if role is None:
            raise missing(f"{where}.role")
        if role not in ROLES:
            raise _not_one_of(role, ROLES, f"{where}.role")
        if role == "tool" and not isinstance(message.get("tool_call_id"), str):
            raise missing(f"{where}.tool_call_id")
    return messages


def _in_range(body: Mapping[str, Any], name: str, low: float, high: float | None, integer: bool) -> None:
    value = body.get(name)
    if value is None:
        return
    kind = "integer" if integer else "decimal"
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        raise _wrong_type(name, f"an {kind}" if integer else f"a {kind}", value)
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
        raise _wrong_type("tools", "an array of objects", tools)
    for index, tool in enumerate(tools):
        where = f"tools[{index}]"
        if not isinstance(tool, dict):
            raise _wrong_type(where, "an object", tool)
        if tool.get("type") != "function":
            raise _not_one_of(tool.get("type"), ("function",), f"{where}.type")
        function = tool.get("function")
        if not isinstance(function, dict):
            raise missing(f"{where}.function")
        if not isinstance(function.get("name"), str) or not function["name"]:
            raise missing(f"{where}.function.name")
        if "parameters" in function and not isinstance(function["parameters"], dict):
            raise _wrong_type(f"{where}.function.parameters", "an object", function["parameters"])
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
            raise _not_one_of(choice, TOOL_CHOICES, "tool_choice")
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
        raise _wrong_type("response_format", "an object", response_format)
    kind = response_format.get("type")
    if kind not in RESPONSE_FORMATS:
        raise _not_one_of(kind, RESPONSE_FORMATS, "response_format.type")
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


def _wrong_type(name: str, expected: str, value: Any) -> Exception:
    message = f"Invalid type for '{name}': expected {expected}, but got {_json_kind(value)} instead."
    return invalid(message, name, "invalid_type")


def _not_one_of(value: Any, allowed: tuple[str, ...], param: str) -> Exception:
    quoted = [f"'{a}'" for a in allowed]
    supported = quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + ", and " + quoted[-1]
    return invalid(f"Invalid value: '{value}'. Supported values are: {supported}.", param, "invalid_value")


def _json_kind(value: Any) -> str:
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
