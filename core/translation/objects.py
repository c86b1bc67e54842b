"""Resource-scoped answers (assistants, runs, responses...): model names, object ids and the usage they count.

Azure answers with deployment names where the client used public model ids, so
they are mapped back. The ids an answer carries (the object's own, and the
thread, assistant, file or vector store it points at) all live in the region
that answered; they are collected so later calls can be routed there directly.

Usage is counted where tokens are spent, never for reading what was spent: a new response's (its answer, or its
stream's last event), and a run's or a background response's once, by the first answer that shows it done (a poll,
a stream's `thread.run.completed`), as `CountedOnce` remembers. Reading a response, a run's steps, messages or
lists counts nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from core.json_depth import too_deep
from core.translation.sse import EventSplitter
from core.translation.stream import event_json
from core.translation.translator import answer_object
from core.translation.usage import RESPONSE_END_EVENTS, CountedOnce, Usage, answer_usage, estimate_prompt_tokens

# `object` values whose `id` names something a later call may address by id.
_ADDRESSABLE = frozenset({"assistant", "thread", "vector_store", "file", "batch", "response"})
_ID_FIELDS = ("thread_id", "assistant_id", "vector_store_id", "file_id", "input_file_id", "previous_response_id")
_ID_LIST_FIELDS = ("file_ids", "vector_store_ids")
# Where an answer echoes what the caller wrote, free-form: an object's `metadata`, a tool's or a format's JSON schema.
# Nothing in them is Azure's, so no id is learnt there: a caller could point another caller's thread at the wrong
# region by writing its id into them.
_CALLERS_OWN = frozenset({"metadata", "parameters", "schema", "json_schema"})


class Counting:
    """What a resource-scoped call counts (see the module's docstring).

    `counted`: the objects this process has counted; `creates_response`: the call creates a response (its own usage
    counts); `prompt`: the request's body; when set, a new response's stream cut short before its last event counts
    an estimate of it, as a chat stream does (core/translation/stream.py)."""

    __slots__ = ("counted", "creates_response", "prompt")

    def __init__(self, counted: CountedOnce, *, creates_response: bool = False, prompt: bytes | None = None) -> None:
        self.counted = counted
        self.creates_response = creates_response
        self.prompt = prompt

    def usage(self, value: Any) -> Usage | None:
        """What the object `value` (an answer, or what a stream event carries) counts now: a new response's usage;
        a run's or a background response's the first time it is seen with one; nothing else."""
        if not isinstance(value, dict):
            return None
        kind = value.get("object")
        if kind == "response" and value.get("background") is not True:
            return answer_usage(value) if self.creates_response else None
        if kind not in ("response", "thread.run"):
            return None
        usage = answer_usage(value)  # a run's, or a background response's, is null until it is done
        object_id = value.get("id")
        if usage is None or (isinstance(object_id, str) and not self.counted.first(object_id)):
            return None
        return usage


class ObjectsTranslator:
    """The answers of one resource-scoped call to one group: deployment names back to the public ids the
    client knows, every id they carry remembered as living in that group, and the usage they count (none
    without `counting`)."""

    __slots__ = ("_group", "_public_models", "_remember", "as_bytes", "_counting", "_parsed", "_counted")

    def __init__(
        self,
        group: str,
        public_models: dict[str, str],
        remember: Callable[[list[str]], None],
        *,
        as_bytes: bool = False,
        counting: Counting | None = None,
    ) -> None:
        self._group = group
        self._public_models = public_models
        self._remember = remember
        self.as_bytes = as_bytes  # file content: bytes as they come, whatever their type
        self._counting = counting
        self._parsed: tuple[bytes, dict[str, Any]] | None = None  # the last answer parsed, for `usage` and `answer`
        self._counted: tuple[bytes, Usage | None] | None = None  # the last answer's usage, read once

    def events(self) -> ObjectStreamTransform:
        return ObjectStreamTransform(self._public_models, self._remember, self._counting)

    def usage(self, body: bytes) -> Usage | None:
        """The usage of the answer `body` as the upstream sent it (its deployment names, not the public ids `answer`
        writes in their place), read once whether it is asked before or after `answer`: an object's usage counts
        the first time it is read (Counting)."""
        counted = self._counted
        if counted is not None and counted[0] is body:
            return counted[1]
        counting = self._counting
        usage = None if counting is None else counting.usage(self._parse(body))
        self._counted = (body, usage)
        return usage

    def answer(self, body: bytes) -> bytes:
        if not body:  # e.g. a 204
            return body
        answer = self._parse(body)
        if answer is None:
            if too_deep(body):
                return body  # too deep to rewrite or re-encode (core/json_depth.py): relayed as it came
            answer = answer_object(body, self._group)  # its 502
        self._remember(object_ids(answer))
        self.usage(body)  # read before its model names are rewritten in place
        return orjson.dumps(answer) if rewrite_models(answer, self._public_models) else body

    def _parse(self, body: bytes) -> dict[str, Any] | None:
        """The answer as a JSON object (None when it is not one, or is nested too deep to walk), parsed once for
        `usage` and `answer`."""
        parsed = self._parsed
        if parsed is not None and parsed[0] is body:
            return parsed[1]
        if too_deep(body):
            return None
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(answer, dict):
            return None
        self._parsed = (body, answer)
        return answer


def rewrite_models(value: Any, public_models: dict[str, str]) -> bool:
    """Replace deployment names in every `model` field by the public model id, in place.
    Returns whether anything changed."""
    changed = False
    if isinstance(value, dict):
        model = value.get("model")
        if isinstance(model, str) and model in public_models:
            value["model"] = public_models[model]
            changed = True
        for item in value.values():
            if isinstance(item, (dict, list)):
                changed = rewrite_models(item, public_models) or changed
    elif isinstance(value, list):
        for item in value:
            changed = rewrite_models(item, public_models) or changed
    return changed


def object_ids(value: Any) -> list[str]:
    """Every id the answer holds that a later call could name."""
    found: list[str] = []
    _collect_ids(value, found)
    return found


def _collect_ids(value: Any, found: list[str]) -> None:
    if isinstance(value, dict):
        if value.get("object") in _ADDRESSABLE and isinstance(value.get("id"), str):
            found.append(value["id"])
        for name in _ID_FIELDS:
            if isinstance(value.get(name), str):
                found.append(value[name])
        for name in _ID_LIST_FIELDS:
            if isinstance(value.get(name), list):
                found.extend(item for item in value[name] if isinstance(item, str))
        for name, item in value.items():
            if isinstance(item, (dict, list)) and name not in _CALLERS_OWN:
                _collect_ids(item, found)
    elif isinstance(value, list):
        for item in value:
            _collect_ids(item, found)


class ObjectStreamTransform:
    """Named-event streams (runs, responses): event names and framing pass unchanged;
    data whose model names a deployment is re-encoded with the public id."""

    __slots__ = ("splitter", "_public_models", "_on_ids", "_counting", "_ended", "_deltas", "usage")

    def __init__(
        self,
        public_models: dict[str, str],
        on_ids: Callable[[list[str]], None],
        counting: Counting | None = None,
    ) -> None:
        self.splitter = EventSplitter()
        self._public_models = public_models
        self._on_ids = on_ids
        self._counting = counting
        self._ended = False  # a response's last event came
        self._deltas = 0  # a response's delta events: about one token each
        self.usage: Usage | None = None

    def feed(self, chunk: bytes) -> bytes:
        return b"".join(self._event(event) for event in self.splitter.feed(chunk))

    def finish(self) -> bytes:
        return self.splitter.rest()

    def counted_usage(self) -> tuple[Usage | None, bool]:
        """The usage a response's last event or a run's terminal event reported. A new response's stream cut short
        before its last event, when counted: an estimate and True (the prompt's estimate, one completion token per
        delta event relayed). A run's stream cut short counts nothing: the run goes on at Azure, and the first
        read that sees it done counts it."""
        counting = self._counting
        prompt = counting.prompt if counting is not None and counting.creates_response else None
        if self.usage is not None or self._ended or prompt is None:
            return self.usage, False
        estimate = estimate_prompt_tokens(prompt)
        return Usage(estimate, self._deltas, estimate + self._deltas), True

    def _event(self, event: bytes) -> bytes:
        data = event_json(event)
        if data is None:
            return event
        counting = self._counting
        if counting is not None:
            self._count(data, counting)
        self._on_ids(object_ids(data))
        if not rewrite_models(data, self._public_models):
            return event
        return _with_data(event, orjson.dumps(data))

    def _count(self, data: dict[str, Any], counting: Counting) -> None:
        kind = data.get("type")  # a Responses event's; a run stream's data is the object itself
        if isinstance(kind, str) and kind.startswith("response."):
            if kind in RESPONSE_END_EVENTS:
                self._ended = True
                self.usage = counting.usage(data.get("response")) or self.usage
            elif kind.endswith(".delta"):
                self._deltas += 1
        elif data.get("object") == "thread.run":
            self.usage = counting.usage(data) or self.usage


def _with_data(event: bytes, data: bytes) -> bytes:
    """The event with its data lines replaced by one line of `data`; other lines kept."""
    lines = event.rstrip(b"\r\n").splitlines()
    kept = [line for line in lines if not line.startswith(b"data:")]
    return b"\n".join([*kept, b"data: " + data]) + b"\n\n"
