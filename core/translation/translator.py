"""One call's translation: how its request is rewritten for the backend that serves it, and how that
backend's answer, whole or streamed, is rewritten for the client.

A translator is chosen once per call and backend: `for_deployment` here for the deployment-scoped APIs,
core/translation/objects.py for the resource-scoped ones. A new pairing of the client's API with a
backend's (forcePrompt's chat served by completions is one, a Responses-only model's chat served by the
Responses API another) is one new class, chosen here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Protocol

import orjson

from core.config.model import Backend
from core.errors import upstream_bad_response
from core.json_depth import MAX_DEPTH, too_deep
from core.models.fit import Fit
from core.translation import force_prompt, request, responses_bridge
from core.translation.sse import EventSplitter
from core.translation.stream import StreamRewriter
from core.translation.usage import Usage, read_usage

# The operations whose streams take `stream_options` (images and audio streams do not).
_STREAM_USAGE_OPERATIONS = frozenset({"chat/completions", "completions"})


class StreamTransform(Protocol):
    """Rewrites a streamed body chunk by chunk (core/translation/stream.py, objects.py)."""

    splitter: EventSplitter  # the event framing: its event count and [DONE] pace the relay

    def feed(self, chunk: bytes) -> bytes: ...

    def finish(self) -> bytes: ...

    def counted_usage(self) -> tuple[Usage | None, bool]: ...


class Translator(Protocol):
    """What the exchange asks of a translation once the backend is known."""

    # The upstream's answer relayed byte for byte even when it is JSON (file content).
    as_bytes: bool

    def events(self) -> StreamTransform | None:
        """A fresh rewriter for an event stream; None: the stream is relayed as bytes."""
        ...

    def usage(self, body: bytes) -> Usage | None:
        """What a whole (non-streamed) 2xx JSON answer, as the upstream sent it, counts (core/translation/usage.py);
        None: nothing (a read, or no usage)."""
        ...

    def answer(self, body: bytes) -> bytes:
        """A whole (non-streamed) 2xx JSON answer as the client gets it."""
        ...


@dataclass(slots=True)
class ClientRequest:
    """A deployment-scoped request as the client sent it: what translation reads (and never changes). Not a frozen
    dataclass: every deployment call makes one, and a frozen one sets each field through object.__setattr__, at
    three times the instructions."""

    operation: str  # as after /v1/, e.g. "chat/completions"
    raw: bytes  # the JSON body; b"" for a multipart upload, which goes as it came
    payload: dict[str, Any] | None  # the parsed body; None for an upload
    stream: bool


class DeploymentTranslator:
    """The OpenAI API on an Azure deployment of the same operation: the body gets the backend's settings,
    answers come back as they are, and a stream loses Azure's filter-only events (gateway.normalizeStreams).

    When the gateway counts tokens (budgets or metrics), a chat or completions stream asks for its usage
    chunk; a caller who did not ask for it gets the stream without it, exactly as OpenAI would send it."""

    __slots__ = ("backend", "request", "fit", "adjusted", "_normalize", "_ask_usage", "_prompt")
    as_bytes = False

    def __init__(
        self,
        backend: Backend,
        client: ClientRequest,
        *,
        count_usage: bool,
        normalize_streams: bool,
        fit: Fit | None = None,
    ) -> None:
        self.backend = backend
        self.request = client
        self.fit = fit  # how a chat completion is fitted to the model (core/models/fit.py); None: as it comes
        self.adjusted: list[str] = []  # what fitting changed: "max_tokens->max_completion_tokens", "-temperature"
        self._normalize = normalize_streams
        payload = client.payload
        self._ask_usage = (
            count_usage
            and client.stream
            and client.operation in _STREAM_USAGE_OPERATIONS
            and payload is not None
            and not request.asks_usage(payload)
        )
        # What a stream cut short before its usage estimates its prompt from (core/translation/usage.py).
        self._prompt = client.raw if count_usage and payload is not None else None

    @property
    def upstream_operation(self) -> str:
        return self.request.operation

    def upstream_url(self) -> str:
        """Where the request goes: the backend's URL for the upstream operation."""
        return self.backend.url(self.upstream_operation)

    def body(self) -> bytes:
        """The JSON body to send upstream."""
        client = self.request
        assert client.payload is not None
        payload = self._fitted(client.payload)
        if payload is client.payload and not self.backend.rewrites_body and not self._ask_usage:
            return client.raw  # nothing to change: the client's bytes (forcePrompt's backends always rewrite)
        payload = self.upstream_payload(payload)
        return request.for_backend(self.backend, request.with_usage_asked(payload) if self._ask_usage else payload)

    def _fitted(self, payload: dict[str, Any]) -> dict[str, Any]:
        if self.fit is None or self.request.operation != "chat/completions":
            return payload
        fitted, self.adjusted = self.fit.apply(payload)
        return fitted

    def upstream_payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        """The request in the backend's API, before the backend's own settings."""
        return payload

    def events(self) -> StreamTransform | None:
        if not self.request.stream:
            return None
        return StreamRewriter(drop_filter_events=self._normalize, hide_usage=self._ask_usage, prompt=self._prompt)

    def usage(self, body: bytes) -> Usage | None:
        return read_usage(body)  # the backend's own answer (a completion, a response) names its usage too

    def answer(self, body: bytes) -> bytes:
        return body


class ChatViaCompletions(DeploymentTranslator):
    """forcePrompt: a chat completion asked of a completions deployment (core/translation/force_prompt.py)."""

    __slots__ = ()

    @property
    def upstream_operation(self) -> str:
        return "completions"

    def upstream_payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        return force_prompt.chat_to_completions(payload)

    def events(self) -> StreamTransform | None:
        if not self.request.stream:
            return None
        return StreamRewriter(
            drop_filter_events=self._normalize,
            convert=force_prompt.CompletionEventsAsChat().convert,
            hide_usage=self._ask_usage,
            prompt=self._prompt,
        )

    def answer(self, body: bytes) -> bytes:
        completion = answer_object(body, self.backend.group)
        choices = completion.get("choices")
        if choices is not None and not (isinstance(choices, list) and all(isinstance(c, dict) for c in choices)):
            raise upstream_bad_response(
                self.backend.group, "answered with a completion whose choices are not a list of objects"
            )
        return orjson.dumps(force_prompt.completion_to_chat(completion))


class ChatViaResponses(DeploymentTranslator):
    """A chat completion asked of a deployment that serves only the Responses API
    (core/translation/responses_bridge.py). The Responses API lives at the resource, not under the
    deployment, so the body names the deployment in `model`; the request is fitted to the model first."""

    __slots__ = ()

    @property
    def upstream_operation(self) -> str:
        return "responses"

    def upstream_url(self) -> str:
        url = self.backend.responses_url
        assert url is not None  # for_deployment chooses this translation only for a backend that has one
        return url

    def body(self) -> bytes:
        payload = self.request.payload
        assert payload is not None
        fitted = self._fitted(payload)
        self.adjusted = ["chat/completions->responses", *self.adjusted]
        return request.for_backend(self.backend, self.upstream_payload(fitted))

    def upstream_payload(self, payload: dict[str, Any]) -> dict[str, Any]:
        # dropParams are the operator's word that a parameter goes nowhere: it is not refused either.
        dropped = self.backend.drop_params
        chat = {name: value for name, value in payload.items() if name not in dropped} if dropped else payload
        model = self.backend.deployment or payload.get("model")
        return responses_bridge.chat_to_responses(chat, model if isinstance(model, str) else "")

    def events(self) -> StreamTransform | None:
        client = self.request
        if not client.stream or client.payload is None:
            return None
        return responses_bridge.ChatChunksFromResponseEvents(
            self.backend.group, include_usage=request.asks_usage(client.payload), prompt=self._prompt
        )

    def answer(self, body: bytes) -> bytes:
        group = self.backend.group
        response = responses_bridge.checked_response(answer_object(body, group), group)
        return orjson.dumps(responses_bridge.response_to_chat(response))


def for_deployment(
    backend: Backend, client: ClientRequest, *, count_usage: bool, normalize_streams: bool, fit: Fit | None = None
) -> DeploymentTranslator:
    """The translation of `client`'s request for `backend`; `fit`: how chat completions are fitted to the
    model behind it (the backend's own, or what the deployment has taught the gateway since)."""
    kind: type[DeploymentTranslator] = DeploymentTranslator
    if client.operation == "chat/completions":
        # A Responses-only model refuses completions as well as chat: the bridge wins over forcePrompt.
        if fit is not None and fit.responses_only and backend.responses_url is not None:
            kind = ChatViaResponses
            # The Responses API takes developer messages at every version it is served on.
            fit = replace(fit, developer_as_system=False)
        elif backend.force_prompt:
            kind = ChatViaCompletions
    return kind(backend, client, count_usage=count_usage, normalize_streams=normalize_streams, fit=fit)


def answer_object(body: bytes, group: str) -> dict[str, Any]:
    """A 2xx JSON answer the gateway must read: GatewayError 502 when it is not a JSON object, or one nested too deep
    for the gateway to rewrite (core/json_depth.py)."""
    if too_deep(body):
        raise upstream_bad_response(group, f"answered with JSON nested more than {MAX_DEPTH} levels deep")
    try:
        answer = orjson.loads(body)
    except orjson.JSONDecodeError:
        answer = None
    if not isinstance(answer, dict):
        raise upstream_bad_response(group, "answered with a body that is not a JSON object")
    return answer
