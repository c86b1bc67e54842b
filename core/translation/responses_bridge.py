"""Chat completions served by a Responses-only deployment (gpt-5-codex, gpt-5-pro, codex-mini: Azure refuses
their chat completions with `OperationNotSupported`): the mapping that core/translation/translator.py's
ChatViaResponses applies.

The client's chat request goes upstream as a Responses API request: to the resource's `/openai/responses`
(a resource-level URL: it names no deployment, so the body's `model` does), never stored (`store: false`:
each request carries the whole conversation, as a chat request does). The response, whole or streamed, comes
back as the `chat.completion`, or the `chat.completion.chunk` events ending in `data: [DONE]`, the client
asked for. Whatever the bridge cannot express faithfully is refused with a 400 before anything goes upstream,
so a client never gets an answer to a request other than the one it sent.

Request, chat → Responses:
    messages                              input: one or more items per message, in order (below)
    model                                 model: the deployment's name
    max_completion_tokens, max_tokens     max_output_tokens (max_completion_tokens when both are given)
    reasoning_effort                      reasoning.effort
    response_format json_schema           text.format {type: json_schema, name, description, schema, strict}
    response_format json_object           text.format {type: json_object}
    response_format text                  nothing (the Responses API's default)
    verbosity                             text.verbosity
    tools, function tools                 tools [{type: function, name, description, parameters, strict}]:
                                          flattened; `strict` false when not given (chat's default, where
                                          the Responses API's is true); no `parameters`: an empty object schema
    tool_choice none, auto, required      tool_choice, the same
    tool_choice {type: function, function: {name}}            {type: function, name}
    tool_choice {type: allowed_tools, allowed_tools: {mode, tools}}    {type: allowed_tools, mode, tools}
    stream, temperature, top_p, parallel_tool_calls, metadata, user, safety_identifier, prompt_cache_key,
    prompt_cache_retention, prompt_cache_options, service_tier, moderation: the same name (both APIs share
    these schemas; `user` stays `user`, as deprecated in one API as in the other)
    (always)                              store: false

Messages → input items:
    system, developer   {type: message, role: system|developer, content: text | input_text parts}, where the
                        client put it. The Responses API documents `instructions` as "a system (or developer)
                        message inserted into the model's context" and takes system and developer messages as
                        input items with the same precedence over user messages; items keep each one's role
                        and place, where `instructions` would join them and move them first.
    user                {type: message, role: user, content: text | parts}: text → input_text, image_url →
                        input_image {image_url, detail (auto when not given)}, file → input_file {file_id,
                        file_data, filename}
    assistant           {type: message, role: assistant, content: its text} (text and refusal parts joined; a
                        `refusal` alone stands as the text), then {type: function_call, call_id, name,
                        arguments} per tool call; an assistant message with neither makes no item
    tool                {type: function_call_output, call_id: tool_call_id, output: its text}

Answer, Responses → chat (`response_to_chat`):
    id, created_at, model, service_tier   id, created, model, service_tier
    output message output_text parts      choices[0].message.content, joined (null when there are none and
                                          the answer is tool calls or a refusal)
    output message refusal parts          choices[0].message.refusal, joined
    output function_call items            choices[0].message.tool_calls [{id: call_id, type: function,
                                          function: {name, arguments}}]
    status incomplete                     finish_reason content_filter (incomplete_details.reason
                                          content_filter) or length (any other reason)
    function_call items                   finish_reason tool_calls; else stop
    usage input_tokens, output_tokens, total_tokens, input_tokens_details.cached_tokens,
    output_tokens_details.reasoning_tokens
                                          usage prompt_tokens, completion_tokens, total_tokens,
                                          prompt_tokens_details.cached_tokens,
                                          completion_tokens_details.reasoning_tokens
    reasoning and other items             nothing (chat has no place for them)
    status failed, queued, in_progress, cancelled: 502

Stream, Responses events → chat chunks (`ChatChunksFromResponseEvents`): response.created gives the id,
created and model every chunk carries and the first chunk (delta role assistant); response.output_text.delta
and response.refusal.delta → delta content, refusal; response.output_item.added of a function_call → delta
tool_calls [{index, id, type, function: {name, arguments: ""}}], the index counting the answer's function
calls; response.function_call_arguments.delta → delta tool_calls [{index, function: {arguments}}]; a done
event (output_text, refusal, output_item) whose whole value extends what its deltas sent → the rest;
response.completed or response.incomplete → the chunk with finish_reason, the usage chunk (choices [])
when the caller asked (stream_options.include_usage, and then every chunk carries `"usage": null`), and
`data: [DONE]`. response.failed and error → the relay's in-band error event (`data: {"error": ...}`), as
for any stream that fails; so does an upstream that ends before its response.completed.

Dropped silently, since nothing the client gets depends on them: any parameter given as null; `seed` (best
effort only: no answer promises to honour it); `store` (the bridge never stores; a stored chat completion
could not be read back through the gateway anyway); `stream_options` (the bridge itself honours
include_usage; include_obfuscation pads events the bridge re-encodes); a message's `name`; parameters the
backend's dropParams names; and these at their default value: n 1, logprobs false, frequency_penalty and
presence_penalty 0, stop [], logit_bias {}, modalities ["text"].

Refused (400, code unsupported_by_bridge, `param` naming it): n above 1, logprobs, top_logprobs,
frequency_penalty and presence_penalty other than 0, stop, logit_bias, audio, modalities other than text,
prediction, web_search_options, the legacy functions and function_call, custom tools (in tools, tool_choice
or an assistant's tool calls), response_format types other than text, json_object and json_schema, input_audio
and other content parts the bridge cannot map, function-role and unknown-role messages, an assistant
message's audio or function_call, and every parameter not listed here (Azure's chat-only extensions such
as data_sources and user_security_context among them). A request whose shape the bridge must read and
cannot (messages not a list of objects, a tool without a name...) gets a 400 invalid_type.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from core.errors import GatewayError, truncated, upstream_bad_response, upstream_closed
from core.translation.sse import EventSplitter
from core.translation.stream import event_json
from core.translation.usage import Usage, estimate_prompt_tokens, response_event_usage, token_count

_UNSUPPORTED = "unsupported_by_bridge"

# Chat parameters the Responses API takes under the same name with the same schema.
_SAME = frozenset(
    {
        "stream",
        "temperature",
        "top_p",
        "parallel_tool_calls",
        "metadata",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "prompt_cache_retention",
        "prompt_cache_options",
        "service_tier",
        "moderation",
    }
)
# Chat parameters read by the mapping below.
_MAPPED = frozenset(
    {
        "messages",
        "max_completion_tokens",
        "max_tokens",
        "reasoning_effort",
        "response_format",
        "verbosity",
        "tools",
        "tool_choice",
    }
)
# Chat parameters nothing the client gets depends on (see the module's docstring).
_DROPPED = frozenset({"model", "seed", "store", "stream_options"})
# Chat parameters the Responses API cannot express: refused unless at one of their default values.
_REFUSED: dict[str, tuple[tuple[object, ...], str]] = {
    "n": ((1,), "more than one choice"),
    "logprobs": ((False,), "log probabilities"),
    "top_logprobs": ((), "log probabilities"),
    "frequency_penalty": ((0,), "a frequency penalty"),
    "presence_penalty": ((0,), "a presence penalty"),
    "stop": (([],), "stop sequences"),
    "logit_bias": (({},), "token biases"),
    "modalities": ((["text"],), "output other than text"),
    "audio": ((), "audio output"),
    "prediction": ((), "predicted outputs"),
    "web_search_options": ((), "chat's web search options"),
    "functions": ((), "the legacy functions (use `tools`)"),
    "function_call": ((), "the legacy function_call (use `tool_choice`)"),
}
_TOOL_CHOICE_MODES = frozenset({"none", "auto", "required"})
# The keys each role's message may carry (a null one counts as absent).
_MESSAGE_KEYS = {
    "system": frozenset({"role", "content", "name"}),
    "developer": frozenset({"role", "content", "name"}),
    "user": frozenset({"role", "content", "name"}),
    "assistant": frozenset({"role", "content", "name", "refusal", "tool_calls"}),
    "tool": frozenset({"role", "content", "tool_call_id"}),
}


def unsupported(param: str, what: str) -> GatewayError:
    return GatewayError(
        400,
        f"This model serves only the Responses API, to which the gateway translates chat completions; "
        f"it cannot translate {what} (`{param}`).",
        param=param,
        code=_UNSUPPORTED,
    )


def _invalid(param: str, what: str) -> GatewayError:
    return GatewayError(400, f"`{param}` must be {what}.", param=param, code="invalid_type")


# -- the request


def chat_to_responses(chat: dict[str, Any], model: str) -> dict[str, Any]:
    """A chat completions request as the Responses API request asking the same of deployment `model`;
    GatewayError 400 when the request asks for something the Responses API cannot give."""
    given = {name: value for name, value in chat.items() if value is not None}
    body: dict[str, Any] = {"model": model}
    for name, value in given.items():
        if name in _SAME:
            body[name] = value
        elif name in _REFUSED:
            defaults, what = _REFUSED[name]
            if value not in defaults:
                raise unsupported(name, what)
        elif name not in _MAPPED and name not in _DROPPED:
            raise unsupported(name, "a parameter it does not know")
    body["input"] = input_items(given.get("messages"))
    max_tokens = given.get("max_completion_tokens", given.get("max_tokens"))
    if max_tokens is not None:
        body["max_output_tokens"] = max_tokens
    if "reasoning_effort" in given:
        body["reasoning"] = {"effort": given["reasoning_effort"]}
    text = text_options(given.get("response_format"), given.get("verbosity"))
    if text:
        body["text"] = text
    if "tools" in given:
        body["tools"] = function_tools(given["tools"])
    if "tool_choice" in given:
        body["tool_choice"] = tool_choice(given["tool_choice"])
    body["store"] = False
    return body


def input_items(messages: Any) -> list[dict[str, Any]]:
    if not isinstance(messages, list) or not messages:
        raise _invalid("messages", "a non-empty array of messages")
    items: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        items.extend(message_items(message, f"messages[{i}]"))
    return items


def message_items(message: Any, where: str) -> list[dict[str, Any]]:
    """The input items one chat message becomes."""
    if not isinstance(message, dict):
        raise _invalid(where, "a message object")
    role = message.get("role")
    keys = _MESSAGE_KEYS.get(role) if isinstance(role, str) else None
    if keys is None:
        raise unsupported(f"{where}.role", f"a message whose role is {_shown(role)}")
    for key, value in message.items():
        if value is not None and key not in keys:
            raise unsupported(f"{where}.{key}", f"`{key}` in a message whose role is {role}")
    content = message.get("content")
    if role == "assistant":
        return assistant_items(message, where)
    if role == "tool":
        call_id = message.get("tool_call_id")
        if not isinstance(call_id, str):
            raise _invalid(f"{where}.tool_call_id", "a string")
        output = _text_of(content, f"{where}.content", ("text",))
        return [{"type": "function_call_output", "call_id": call_id, "output": output}]
    parts = ("text", "image_url", "file") if role == "user" else ("text",)
    return [{"type": "message", "role": role, "content": _input_content(content, f"{where}.content", parts)}]


def assistant_items(message: dict[str, Any], where: str) -> list[dict[str, Any]]:
    """An assistant's turn: its text as a message, then its tool calls as function_call items."""
    items: list[dict[str, Any]] = []
    content = message.get("content")
    text = _text_of(content, f"{where}.content", ("text", "refusal")) if content is not None else ""
    refusal = message.get("refusal")
    if not text and isinstance(refusal, str):
        text = refusal
    if text:
        items.append({"type": "message", "role": "assistant", "content": text})
    calls = message.get("tool_calls")
    if calls is None:
        return items
    if not isinstance(calls, list):
        raise _invalid(f"{where}.tool_calls", "an array of tool calls")
    for i, call in enumerate(calls):
        items.append(function_call_item(call, f"{where}.tool_calls[{i}]"))
    return items


def function_call_item(call: Any, where: str) -> dict[str, Any]:
    if not isinstance(call, dict):
        raise _invalid(where, "a tool call object")
    if call.get("type") != "function":
        raise unsupported(f"{where}.type", f"a tool call of type {_shown(call.get('type'))}")
    function = call.get("function")
    call_id = call.get("id")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not isinstance(call_id, str):
        raise _invalid(where, "a function tool call with an `id` and a `function` naming it")
    arguments = function.get("arguments")
    return {
        "type": "function_call",
        "call_id": call_id,
        "name": function["name"],
        "arguments": arguments if isinstance(arguments, str) else "",
    }


def _input_content(content: Any, where: str, allowed: tuple[str, ...]) -> str | list[dict[str, Any]]:
    """A message's content as the Responses API takes it: a string as it is, parts as input parts."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _invalid(where, "a string or an array of content parts")
    return [input_part(part, f"{where}[{i}]", allowed) for i, part in enumerate(content)]


def input_part(part: Any, where: str, allowed: tuple[str, ...]) -> dict[str, Any]:
    """One chat content part as a Responses input part."""
    if not isinstance(part, dict):
        raise _invalid(where, "a content part object")
    kind = part.get("type")
    if kind not in allowed:
        raise unsupported(f"{where}.type", f"a content part of type {_shown(kind)} here")
    if kind == "text":
        if not isinstance(part.get("text"), str):
            raise _invalid(f"{where}.text", "a string")
        return {"type": "input_text", "text": part["text"]}
    if kind == "image_url":
        image = part.get("image_url")
        if not isinstance(image, dict) or not isinstance(image.get("url"), str):
            raise _invalid(f"{where}.image_url", "an object with a `url`")
        return {"type": "input_image", "image_url": image["url"], "detail": image.get("detail") or "auto"}
    file = part.get("file")
    if not isinstance(file, dict):
        raise _invalid(f"{where}.file", "an object")
    fields = {name: file[name] for name in ("file_id", "file_data", "filename") if file.get(name) is not None}
    return {"type": "input_file", **fields}


def _text_of(content: Any, where: str, allowed: tuple[str, ...]) -> str:
    """A message's content as one text: a string as it is, text (and refusal) parts joined."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise _invalid(where, "a string or an array of content parts")
    texts = []
    for i, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allowed:
            raise unsupported(f"{where}[{i}].type", f"a content part of type {_shown(kind)} here")
        text = part.get(kind)
        if not isinstance(text, str):
            raise _invalid(f"{where}[{i}].{kind}", "a string")
        texts.append(text)
    return "".join(texts)


def text_options(response_format: Any, verbosity: Any) -> dict[str, Any]:
    """The Responses `text` parameter: the output's format and verbosity."""
    text: dict[str, Any] = {}
    if verbosity is not None:
        text["verbosity"] = verbosity
    if response_format is None:
        return text
    if not isinstance(response_format, dict):
        raise _invalid("response_format", "an object")
    kind = response_format.get("type")
    if kind == "json_object":
        text["format"] = {"type": "json_object"}
    elif kind == "json_schema":
        schema = response_format.get("json_schema")
        if not isinstance(schema, dict) or not isinstance(schema.get("name"), str):
            raise _invalid("response_format.json_schema", "an object with a `name`")
        fields = {k: schema[k] for k in ("name", "description", "schema", "strict") if schema.get(k) is not None}
        text["format"] = {"type": "json_schema", **fields}
    elif kind != "text":
        raise unsupported("response_format.type", f"a response format of type {_shown(kind)}")
    return text


def function_tools(tools: Any) -> list[dict[str, Any]]:
    """Chat's function tools as the Responses API's, their `function` object flattened into the tool."""
    if not isinstance(tools, list):
        raise _invalid("tools", "an array of tools")
    converted = []
    for i, tool in enumerate(tools):
        where = f"tools[{i}]"
        if not isinstance(tool, dict):
            raise _invalid(where, "a tool object")
        if tool.get("type") != "function":
            raise unsupported(f"{where}.type", f"a tool of type {_shown(tool.get('type'))}")
        function = tool.get("function")
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise _invalid(f"{where}.function", "an object with a `name`")
        flat: dict[str, Any] = {"type": "function", "name": function["name"]}
        if function.get("description") is not None:
            flat["description"] = function["description"]
        parameters = function.get("parameters")
        flat["parameters"] = parameters if parameters is not None else {"type": "object", "properties": {}}
        flat["strict"] = function.get("strict") is True  # chat's default is false, the Responses API's true
        converted.append(flat)
    return converted


def tool_choice(choice: Any) -> str | dict[str, Any]:
    if isinstance(choice, str):
        if choice not in _TOOL_CHOICE_MODES:
            raise _invalid("tool_choice", "none, auto, required or an object")
        return choice
    if not isinstance(choice, dict):
        raise _invalid("tool_choice", "a string or an object")
    kind = choice.get("type")
    if kind == "function":
        return {"type": "function", "name": _function_name(choice, "tool_choice")}
    if kind == "allowed_tools":
        allowed = choice.get("allowed_tools")
        if not isinstance(allowed, dict) or not isinstance(allowed.get("tools"), list):
            raise _invalid("tool_choice.allowed_tools", "an object with `mode` and `tools`")
        tools = []
        for i, tool in enumerate(allowed["tools"]):
            where = f"tool_choice.allowed_tools.tools[{i}]"
            if not isinstance(tool, dict) or tool.get("type") != "function":
                raise unsupported(where, "an allowed tool that is not a function")
            tools.append({"type": "function", "name": _function_name(tool, where)})
        return {"type": "allowed_tools", "mode": allowed.get("mode"), "tools": tools}
    raise unsupported("tool_choice.type", f"a tool choice of type {_shown(kind)}")


def _function_name(choice: dict[str, Any], where: str) -> str:
    function = choice.get("function")
    if not isinstance(function, dict) or not isinstance(function.get("name"), str):
        raise _invalid(f"{where}.function", "an object with a `name`")
    name: str = function["name"]
    return name


def _shown(value: Any) -> str:
    """A client's value as a message quotes it."""
    return f"`{truncated(value)}`" if isinstance(value, str) else "missing" if value is None else "not a string"


# -- the answer


def response_to_chat(response: dict[str, Any]) -> dict[str, Any]:
    """A Responses `response` object as the chat.completion answering the same."""
    texts: list[str] = []
    refusals: list[str] = []
    calls: list[dict[str, Any]] = []
    for item in response.get("output") or ():
        kind = item.get("type")
        if kind == "message":
            for part in item.get("content") or ():
                if not isinstance(part, dict):
                    continue
                if part.get("type") == "output_text" and isinstance(part.get("text"), str):
                    texts.append(part["text"])
                elif part.get("type") == "refusal" and isinstance(part.get("refusal"), str):
                    refusals.append(part["refusal"])
        elif kind == "function_call":
            function = {"name": item.get("name", ""), "arguments": item.get("arguments", "")}
            calls.append({"id": item.get("call_id", ""), "type": "function", "function": function})
    refusal = "".join(refusals) if refusals else None
    message: dict[str, Any] = {
        "role": "assistant",
        "content": "".join(texts) if texts or not (calls or refusals) else None,
        "refusal": refusal,
    }
    if calls:
        message["tool_calls"] = calls
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason(response, bool(calls))}
    chat = _envelope(response, "chat.completion", [choice])
    usage = chat_usage(response.get("usage"))
    if usage is not None:
        chat["usage"] = usage
    return chat


def _envelope(response: dict[str, Any], object_name: str, choices: list[dict[str, Any]]) -> dict[str, Any]:
    chat: dict[str, Any] = {
        "id": response.get("id", ""),
        "object": object_name,
        "created": response.get("created_at", 0),
        "model": response.get("model", ""),
        "choices": choices,
    }
    if isinstance(response.get("service_tier"), str):
        chat["service_tier"] = response["service_tier"]
    return chat


def finish_reason(response: dict[str, Any], called: bool) -> str:
    """Why the answer ended, in chat's words: cut short (by its token limit or the content filter) before
    anything else, then tool calls, else a natural stop."""
    if response.get("status") == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if called else "stop"


def chat_usage(usage: Any) -> dict[str, Any] | None:
    """The Responses API's usage in chat's names; None when there is none."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = token_count(usage.get("input_tokens")), token_count(usage.get("output_tokens"))
    total = token_count(usage.get("total_tokens"))
    if total is None and prompt is not None and completion is not None:
        total = prompt + completion
    chat: dict[str, Any] = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}
    cached = _detail(usage, "input_tokens_details", "cached_tokens")
    if cached is not None:
        chat["prompt_tokens_details"] = {"cached_tokens": cached}
    reasoning = _detail(usage, "output_tokens_details", "reasoning_tokens")
    if reasoning is not None:
        chat["completion_tokens_details"] = {"reasoning_tokens": reasoning}
    return chat


def _detail(usage: dict[str, Any], group: str, name: str) -> int | None:
    details = usage.get(group)
    return token_count(details.get(name)) if isinstance(details, dict) else None


def checked_response(response: dict[str, Any], group: str) -> dict[str, Any]:
    """`response` when it is a finished answer with a list of output items; GatewayError 502 otherwise."""
    status = response.get("status")
    if status == "failed":
        raise failed_response(group, response.get("error"))
    if status not in (None, "completed", "incomplete"):
        raise upstream_bad_response(group, f"answered with a response whose status is {_shown(status)}")
    output = response.get("output")
    if output is not None and not (isinstance(output, list) and all(isinstance(item, dict) for item in output)):
        raise upstream_bad_response(group, "answered with a response whose output is not a list of objects")
    return response


def failed_response(group: str, error: Any) -> GatewayError:
    """A response the upstream failed (its status, or its stream's error event), Azure's reason told."""
    details = error if isinstance(error, dict) else {}
    code, message = details.get("code"), details.get("message")
    reason = ": ".join(truncated(str(part)) for part in (code, message) if part)
    return upstream_bad_response(group, f"failed the response ({reason})" if reason else "failed the response")


# -- the stream

_DONE = b"data: [DONE]\n\n"


@dataclass(slots=True)
class _ToolCall:
    index: int  # its place among the answer's function calls: the chunks' tool_calls[].index
    sent: int  # characters of its arguments sent so far


class ChatChunksFromResponseEvents:
    """A Responses event stream as chat.completion.chunk events (a StreamTransform for the relay).

    The Responses stream has no [DONE]: its answer is over at response.completed (or .incomplete, .failed,
    error), so the splitter is marked done there and the relay stops reading. A failure, or an upstream
    that ends before its answer does, is raised by `finish` for the relay to send in-band, as it sends
    every stream's failure."""

    __slots__ = (
        "splitter",
        "_group",
        "_include_usage",
        "_prompt",
        "_id",
        "_created",
        "_model",
        "_started",
        "_calls",
        "_sent",
        "_deltas",
        "_failure",
        "_ended",
        "usage",
    )

    def __init__(self, group: str, *, include_usage: bool, prompt: bytes | None = None) -> None:
        self.splitter = EventSplitter()
        self._group = group
        self._include_usage = include_usage
        self._prompt = prompt  # the request's body: estimated only if the stream is cut short
        self._id: Any = ""
        self._created: Any = 0
        self._model: Any = ""
        self._started = False  # the role chunk is out
        self._calls: dict[Any, _ToolCall] = {}  # by item id (or output index)
        self._sent: dict[tuple[Any, Any, str], int] = {}  # characters of a text or refusal part sent
        self._deltas = 0  # answer deltas relayed: about one token each
        self._failure: GatewayError | None = None
        self._ended = False
        self.usage: Usage | None = None

    def feed(self, chunk: bytes) -> bytes:
        out: list[bytes] = []
        for event in self.splitter.feed(chunk):
            data = event_json(event)
            if data is not None:
                self._event(data, out)
            if self._ended:
                self.splitter.done = True  # the answer is over: nothing after it belongs to it
                break
        return b"".join(out)

    def finish(self) -> bytes:
        self.splitter.rest()
        if self._failure is not None:
            raise self._failure
        if not self._ended:
            raise upstream_closed(self._group)
        return b""

    def counted_usage(self) -> tuple[Usage | None, bool]:
        """The response's usage, or for a stream cut short an estimate and True: the prompt's estimate,
        one completion token per delta relayed."""
        if self.usage is not None or self._prompt is None:
            return self.usage, False
        estimate = estimate_prompt_tokens(self._prompt)
        return Usage(estimate, self._deltas, estimate + self._deltas), True

    def _event(self, data: dict[str, Any], out: list[bytes]) -> None:
        kind = data.get("type")
        # Completed, incomplete or failed: the tokens are spent all the same.
        self.usage = response_event_usage(data) or self.usage
        if kind == "response.output_text.delta":
            self._text(data, "content", data.get("delta"), out)
        elif kind == "response.output_text.done":
            self._text(data, "content", data.get("text"), out, whole=True)
        elif kind == "response.refusal.delta":
            self._text(data, "refusal", data.get("delta"), out)
        elif kind == "response.refusal.done":
            self._text(data, "refusal", data.get("refusal"), out, whole=True)
        elif kind == "response.function_call_arguments.delta":
            call = self._calls.get(_item_key(data))
            if call is not None:
                self._arguments(call, data.get("delta"), out)
        elif kind in ("response.output_item.added", "response.output_item.done"):
            item = data.get("item")
            if isinstance(item, dict) and item.get("type") == "function_call":
                self._function_call(item, data.get("output_index"), out)
        elif kind in ("response.created", "response.in_progress", "response.queued"):
            self._known(data.get("response"))
            self._start(out)
        elif kind in ("response.completed", "response.incomplete"):
            self._end(data.get("response"), out)
        elif kind == "response.failed":
            response = data.get("response")
            self._fail(response.get("error") if isinstance(response, dict) else None)
        elif kind == "error":
            self._fail(data)

    def _known(self, response: Any) -> None:
        """The id, created and model every chunk carries: the first response event's."""
        if self._started or not isinstance(response, dict):
            return
        self._id = response.get("id", "")
        self._created = response.get("created_at", 0)
        self._model = response.get("model", "")

    def _start(self, out: list[bytes]) -> None:
        if not self._started:
            self._started = True
            out.append(self._chunk([_choice({"role": "assistant", "content": "", "refusal": None})]))

    def _text(self, data: dict[str, Any], field: str, text: Any, out: list[bytes], *, whole: bool = False) -> None:
        """A text or refusal delta; or, `whole`, the part's whole text, of which what was not sent yet."""
        if not isinstance(text, str):
            return
        key = (data.get("item_id"), data.get("content_index"), field)
        sent = self._sent.get(key, 0)
        if whole:
            text = text[sent:]
        if text:
            self._sent[key] = sent + len(text)
            self._delta({field: text}, out)

    def _function_call(self, item: dict[str, Any], output_index: Any, out: list[bytes]) -> None:
        """A function call's item, as added (its header) or as done (whatever of it was not sent yet)."""
        key = item.get("id") if isinstance(item.get("id"), str) else output_index
        call = self._calls.get(key)
        arguments = item.get("arguments")
        if call is None:
            call = self._calls[key] = _ToolCall(len(self._calls), 0)
            function = {"name": item.get("name", ""), "arguments": ""}
            header = {"index": call.index, "id": item.get("call_id", ""), "type": "function", "function": function}
            self._delta({"tool_calls": [header]}, out)
        if isinstance(arguments, str):
            self._arguments(call, arguments[call.sent :], out)

    def _arguments(self, call: _ToolCall, delta: Any, out: list[bytes]) -> None:
        if isinstance(delta, str) and delta:
            call.sent += len(delta)
            self._delta({"tool_calls": [{"index": call.index, "function": {"arguments": delta}}]}, out)

    def _delta(self, delta: dict[str, Any], out: list[bytes]) -> None:
        self._start(out)
        self._deltas += 1
        out.append(self._chunk([_choice(delta)]))

    def _end(self, response: Any, out: list[bytes]) -> None:
        """The answer's end: its finish reason, its usage when the caller asked, then [DONE]."""
        response = response if isinstance(response, dict) else {}
        self._known(response)
        self._start(out)
        output = response.get("output")
        called = bool(self._calls) or (
            isinstance(output, list)
            and any(isinstance(item, dict) and item.get("type") == "function_call" for item in output)
        )
        out.append(self._chunk([_choice({}, finish_reason(response, called))]))
        usage = chat_usage(response.get("usage"))
        if usage is not None and self._include_usage:
            out.append(self._chunk([], usage))
        out.append(_DONE)
        self._ended = True

    def _fail(self, error: Any) -> None:
        self._failure = failed_response(self._group, error)
        self._ended = True

    def _chunk(self, choices: list[dict[str, Any]], usage: dict[str, Any] | None = None) -> bytes:
        chunk: dict[str, Any] = {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": choices,
        }
        if self._include_usage:
            chunk["usage"] = usage
        return b"data: " + orjson.dumps(chunk) + b"\n\n"


def _choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}


def _item_key(data: dict[str, Any]) -> Any:
    """The function call an event is about: its item id, else its output index."""
    item_id = data.get("item_id")
    return item_id if isinstance(item_id, str) else data.get("output_index")
