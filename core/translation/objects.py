"""Resource-scoped answers (assistants, runs, responses...): model names and object ids.

Azure answers with deployment names where the client used public model ids, so
they are mapped back. The ids an answer carries (the object's own, and the
thread, assistant, file or vector store it points at) all live in the region
that answered; they are collected so later calls can be routed there directly.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from core.translation.sse import EventSplitter
from core.translation.stream import event_json
from core.translation.translator import answer_object
from core.translation.usage import Usage, find_usage

# `object` values whose `id` names something a later call may address by id.
_ADDRESSABLE = frozenset({"assistant", "thread", "vector_store", "file", "batch", "response"})
_ID_FIELDS = ("thread_id", "assistant_id", "vector_store_id", "file_id", "input_file_id", "previous_response_id")
_ID_LIST_FIELDS = ("file_ids", "vector_store_ids")


class ObjectsTranslator:
    """The answers of one resource-scoped call to one group: deployment names back to the public ids the
    client knows, and every id they carry remembered as living in that group."""

    __slots__ = ("_group", "_public_models", "_remember", "as_bytes")

    def __init__(
        self,
        group: str,
        public_models: dict[str, str],
        remember: Callable[[list[str]], None],
        *,
        as_bytes: bool = False,
    ) -> None:
        self._group = group
        self._public_models = public_models
        self._remember = remember
        self.as_bytes = as_bytes  # file content: bytes as they come, whatever their type

    def events(self) -> ObjectStreamTransform:
        return ObjectStreamTransform(self._public_models, self._remember)

    def answer(self, body: bytes) -> bytes:
        if not body:  # e.g. a 204
            return body
        answer = answer_object(body, self._group)
        self._remember(object_ids(answer))
        return orjson.dumps(answer) if rewrite_models(answer, self._public_models) else body


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
        for item in value.values():
            if isinstance(item, (dict, list)):
                _collect_ids(item, found)
    elif isinstance(value, list):
        for item in value:
            _collect_ids(item, found)


class ObjectStreamTransform:
    """Named-event streams (runs, responses): event names and framing pass unchanged;
    data whose model names a deployment is re-encoded with the public id."""

    __slots__ = ("splitter", "_public_models", "_on_ids", "usage")

    def __init__(self, public_models: dict[str, str], on_ids: Callable[[list[str]], None]) -> None:
        self.splitter = EventSplitter()
        self._public_models = public_models
        self._on_ids = on_ids
        self.usage: Usage | None = None

    def feed(self, chunk: bytes) -> bytes:
        return b"".join(self._event(event) for event in self.splitter.feed(chunk))

    def finish(self) -> bytes:
        return self.splitter.rest()

    def counted_usage(self) -> tuple[Usage | None, bool]:
        """Runs and responses report usage in their completed event; a stream cut short has none."""
        return self.usage, False

    def _event(self, event: bytes) -> bytes:
        data = event_json(event)
        if data is None:
            return event
        if b'"usage"' in event:
            self.usage = find_usage(event) or self.usage
        self._on_ids(object_ids(data))
        if not rewrite_models(data, self._public_models):
            return event
        return _with_data(event, orjson.dumps(data))


def _with_data(event: bytes, data: bytes) -> bytes:
    """The event with its data lines replaced by one line of `data`; other lines kept."""
    lines = event.rstrip(b"\r\n").splitlines()
    kept = [line for line in lines if not line.startswith(b"data:")]
    return b"\n".join([*kept, b"data: " + data]) + b"\n\n"
