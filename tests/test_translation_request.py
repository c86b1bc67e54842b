from dataclasses import replace
from typing import Any

import orjson
import pytest

from core.config.model import Backend
from core.errors import GatewayError
from core.json_depth import MAX_DEPTH
from core.models.families import family_of
from core.models.fit import Fit
from core.translation.force_prompt import messages_to_prompt
from core.translation.request import asks_usage
from core.translation.translator import ChatViaResponses, ClientRequest, DeploymentTranslator, for_deployment
from core.translation.usage import Usage

BACKEND = Backend(
    group="g",
    deployment="d",
    api_version="2024-10-21",
    serverless=False,
    base_url="https://r.openai.azure.com/openai/deployments/d",
    auth="api-key",
    headers=(("api-key", "k"),),
)


def backend(**overrides: Any) -> Backend:
    return replace(BACKEND, **overrides)


def translator(b: Backend, operation: str, payload: dict[str, Any], *, count_usage: bool) -> DeploymentTranslator:
    client = ClientRequest(operation, orjson.dumps(payload), payload, stream=payload.get("stream") is True)
    return for_deployment(b, client, count_usage=count_usage, normalize_streams=True)


def rewrite_body(b: Backend, operation: str, raw: bytes, payload: dict[str, Any], *, ask_usage: bool = False) -> bytes:
    """The body `b` gets for the client's `raw` request; `ask_usage`: the gateway counts tokens."""
    client = ClientRequest(operation, raw, payload, stream=payload.get("stream") is True)
    return for_deployment(b, client, count_usage=ask_usage, normalize_streams=True).body()


def upstream_operation(b: Backend, operation: str) -> str:
    return translator(b, operation, {"model": "m"}, count_usage=False).upstream_operation


def test_plain_azure_backend_forwards_the_clients_bytes() -> None:
    raw = b'{"model": "gpt-4o",   "messages": []}'
    assert rewrite_body(backend(), "chat/completions", raw, orjson.loads(raw)) is raw


def test_add_params_then_drop_params_drop_wins() -> None:
    raw = b'{"model":"m","temperature":1,"top_p":1,"stop":["x"]}'
    b = backend(
        add_params={"temperature": 0.2, "top_p": 0.5, "max_tokens": 9}, drop_params=frozenset({"top_p", "stop"})
    )
    assert orjson.loads(rewrite_body(b, "chat/completions", raw, orjson.loads(raw))) == {
        "model": "m",
        "temperature": 0.2,
        "max_tokens": 9,
    }


def test_force_prompt_sends_a_completions_body() -> None:
    payload = {
        "model": "m",
        "stream": True,
        "tools": [{"type": "function"}],
        "max_completion_tokens": 5,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}]},
        ],
    }
    b = backend(force_prompt=True)
    body = orjson.loads(rewrite_body(b, "chat/completions", orjson.dumps(payload), payload))
    assert upstream_operation(b, "chat/completions") == "completions"
    assert upstream_operation(b, "embeddings") == "embeddings"
    assert "messages" not in body and "tools" not in body
    assert body["prompt"] == "||>Instructions:\nBe brief.\n||>User:\nHi\n||>Assistant:\n"
    assert body["max_tokens"] == 5 and body["stream"] is True and body["stop"] == ["||>"]


def test_prompt_ends_with_the_assistant_cue() -> None:
    assert messages_to_prompt([]) == "||>Assistant:\n"


def test_v1_api_gets_the_deployment_as_the_body_model() -> None:
    raw = b'{"model": "gpt-4o", "messages": [], "temperature": 1}'
    b = backend(flavor="v1", deployment="gpt-4o-dep")
    assert orjson.loads(rewrite_body(b, "chat/completions", raw, orjson.loads(raw))) == {
        "model": "gpt-4o-dep",
        "messages": [],
        "temperature": 1,
    }


def test_force_prompt_keeps_the_completions_parameters_and_only_them() -> None:
    kept = {
        "model": "m",
        "max_tokens": 7,
        "temperature": 0.1,
        "top_p": 0.9,
        "n": 1,
        "stream": True,
        "stream_options": {"include_usage": True},
        "echo": False,
        "stop": ["END"],
        "presence_penalty": 0.1,
        "frequency_penalty": 0.2,
        "best_of": 1,
        "logit_bias": {"50256": -100},
        "user": "u-1",
        "seed": 3,
        "suffix": "s",
    }
    payload = {
        **kept,
        "messages": [],
        "tools": [],
        "response_format": {"type": "json_object"},
        "max_completion_tokens": 99,
    }
    body = orjson.loads(rewrite_body(backend(force_prompt=True), "chat/completions", orjson.dumps(payload), payload))
    assert body == {**kept, "prompt": "||>Assistant:\n"}  # the client's max_tokens and stop win


def test_force_prompt_applies_to_chat_only() -> None:
    raw = b'{"model": "m", "input": "x", "user": "u"}'
    body = orjson.loads(rewrite_body(backend(force_prompt=True), "embeddings", raw, orjson.loads(raw)))
    assert body == {"model": "m", "input": "x", "user": "u"}
    assert upstream_operation(backend(), "chat/completions") == "chat/completions"


def test_prompt_from_a_whole_conversation() -> None:
    messages = [
        {"role": "developer", "content": "Rules."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look: "},
                {"type": "image_url"},
                {"type": "text"},
                {"type": "text", "text": "this."},
                "not a part",
            ],
        },
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]},
        {"role": "tool", "content": "42"},
        {"content": "no role"},
        "not a message",
        {"role": "assistant", "content": "Done."},
    ]
    assert messages_to_prompt(messages) == (
        "||>Instructions:\nRules.\n||>User:\nLook: this.\n||>Assistant:\n\n||>Tool:\n42\n"
        "||>User:\nno role\n||>Assistant:\nDone.\n||>Assistant:\n"
    )


def test_force_prompt_without_messages() -> None:
    payload = {"model": "m", "messages": None}
    body = orjson.loads(rewrite_body(backend(force_prompt=True), "chat/completions", orjson.dumps(payload), payload))
    assert body == {"model": "m", "prompt": "||>Assistant:\n", "stop": ["||>"]}


def test_the_caller_asks_for_usage_only_with_include_usage_true() -> None:
    assert asks_usage({"stream": True, "stream_options": {"include_usage": True}})
    assert not asks_usage({"stream": True})
    assert not asks_usage({"stream_options": {"include_usage": False}})
    assert not asks_usage({"stream_options": {}})
    assert not asks_usage({"stream_options": {"include_usage": "yes"}})  # only the JSON true
    assert not asks_usage({"stream_options": None})


def test_asking_usage_for_the_caller_keeps_its_other_stream_options() -> None:
    payload = {"model": "m", "stream": True, "stream_options": {"include_obfuscation": False}}
    sent = rewrite_body(backend(), "chat/completions", orjson.dumps(payload), payload, ask_usage=True)
    assert orjson.loads(sent) == {
        "model": "m",
        "stream": True,
        "stream_options": {"include_obfuscation": False, "include_usage": True},
    }
    bare = {"model": "m", "stream": True, "stream_options": None}
    sent = rewrite_body(backend(), "chat/completions", orjson.dumps(bare), bare, ask_usage=True)
    assert orjson.loads(sent)["stream_options"] == {"include_usage": True}


def test_dropping_a_param_the_caller_did_not_send_is_no_error() -> None:
    raw = b'{"model":"m"}'
    b = backend(drop_params=frozenset({"top_p"}))
    assert orjson.loads(rewrite_body(b, "chat/completions", raw, orjson.loads(raw))) == {"model": "m"}


# -- the translator's stream, answer and choices

FILTER_ONLY = (
    b'data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":'
    b'[{"prompt_index":0,"content_filter_results":{}}]}\n\n'
)
CHAT_TOKEN = b'data: {"choices":[{"delta":{"content":"Hi"},"index":0}],"id":"c-1","object":"chat.completion.chunk"}\n\n'
COMPLETION_TOKEN = b'data: {"choices":[{"text":"Hi","index":0}],"id":"c-1","object":"text_completion"}\n\n'
USAGE_CHUNK = b'data: {"choices":[],"id":"c-1","usage":{"completion_tokens":2,"prompt_tokens":5,"total_tokens":7}}\n\n'
STREAMED = {"model": "m", "messages": [{"role": "user", "content": "Hi"}], "stream": True}


def streaming(b: Backend, *, count_usage: bool = False, normalize: bool = True, **payload: Any) -> DeploymentTranslator:
    chat = {**STREAMED, **payload}
    client = ClientRequest("chat/completions", orjson.dumps(chat), chat, stream=chat.get("stream") is True)
    return for_deployment(b, client, count_usage=count_usage, normalize_streams=normalize)


@pytest.mark.parametrize("force_prompt", [False, True])
def test_azures_filter_only_events_are_dropped_only_when_streams_are_normalized(force_prompt) -> None:
    b = backend(force_prompt=force_prompt)
    normalized, raw = streaming(b).events(), streaming(b, normalize=False).events()
    assert normalized is not None and raw is not None
    assert normalized.feed(FILTER_ONLY) == b""
    assert raw.feed(FILTER_ONLY) != b""


def test_a_force_prompt_stream_comes_back_as_chat_chunks() -> None:
    events = streaming(backend(force_prompt=True)).events()
    assert events is not None
    chunk = orjson.loads(events.feed(COMPLETION_TOKEN)[6:])
    assert chunk["object"] == "chat.completion.chunk"
    assert chunk["choices"][0]["delta"] == {"role": "assistant", "content": "Hi"}


def test_a_whole_answer_has_no_stream_rewriter() -> None:
    for b in (backend(), backend(force_prompt=True)):
        assert streaming(b, stream=False).events() is None


@pytest.mark.parametrize(("force_prompt", "token"), [(False, CHAT_TOKEN), (True, COMPLETION_TOKEN)])
def test_usage_the_gateway_asked_for_is_counted_and_hidden_from_a_caller_who_did_not(force_prompt, token) -> None:
    translator = streaming(backend(force_prompt=force_prompt), count_usage=True)
    assert orjson.loads(translator.body())["stream_options"] == {"include_usage": True}
    events = translator.events()
    assert events is not None
    out = events.feed(token + USAGE_CHUNK)
    assert b"usage" not in out and out.count(b"data: ") == 1
    assert events.counted_usage() == (Usage(5, 2, 7), False)


@pytest.mark.parametrize("force_prompt", [False, True])
def test_a_stream_cut_short_is_estimated_only_when_the_gateway_counts_usage(force_prompt) -> None:
    counted = streaming(backend(force_prompt=force_prompt), count_usage=True).events()
    uncounted = streaming(backend(force_prompt=force_prompt)).events()
    assert counted is not None and uncounted is not None
    token = COMPLETION_TOKEN if force_prompt else CHAT_TOKEN
    counted.feed(token + token)
    uncounted.feed(token + token)
    usage, estimated = counted.counted_usage()
    assert estimated and usage is not None and usage.completion_tokens == 2
    assert uncounted.counted_usage() == (None, False)


def test_usage_is_asked_upstream_only_for_a_stream_the_gateway_counts() -> None:
    for payload, count_usage in (({"stream": False}, True), ({}, False)):
        translator = streaming(backend(), count_usage=count_usage, **payload)
        assert translator.body() is translator.request.raw, payload


def test_a_translator_asks_its_backends_url_for_the_operation_it_sends() -> None:
    assert streaming(backend()).upstream_url() == (
        "https://r.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21"
    )
    assert streaming(backend(force_prompt=True)).upstream_url() == (
        "https://r.openai.azure.com/openai/deployments/d/completions?api-version=2024-10-21"
    )


def test_a_fit_applies_to_chat_completions_only() -> None:
    fit = Fit.of(family_of("gpt-5-mini"))
    chat = {"model": "m", "messages": [], "max_tokens": 5}
    client = ClientRequest("chat/completions", orjson.dumps(chat), chat, stream=False)
    translator = for_deployment(backend(), client, count_usage=False, normalize_streams=True, fit=fit)
    assert orjson.loads(translator.body()) == {"model": "m", "messages": [], "max_completion_tokens": 5}
    assert translator.adjusted == ["max_tokens->max_completion_tokens"]
    completion = {"model": "m", "prompt": "Hi", "max_tokens": 5}
    client = ClientRequest("completions", orjson.dumps(completion), completion, stream=False)
    translator = for_deployment(backend(), client, count_usage=False, normalize_streams=True, fit=fit)
    assert translator.body() is client.raw and translator.adjusted == []


def test_the_bridge_keeps_developer_messages_whatever_the_api_version() -> None:
    """The Responses API takes the developer role at every version it is served on."""
    fit = Fit.of(family_of("gpt-5-codex"), developer_as_system=True)
    chat = {"model": "m", "messages": [{"role": "developer", "content": "Be brief."}], "temperature": 0.2}
    client = ClientRequest("chat/completions", orjson.dumps(chat), chat, stream=False)
    b = backend(responses_url="https://r.openai.azure.com/openai/responses?api-version=2025-04-01-preview")
    translator = for_deployment(b, client, count_usage=False, normalize_streams=True, fit=fit)
    assert isinstance(translator, ChatViaResponses)
    assert "temperature" not in orjson.loads(translator.body())  # fitted to the model all the same
    assert translator.adjusted == ["chat/completions->responses", "-temperature"]
    assert orjson.loads(translator.body())["input"] == [
        {"type": "message", "role": "developer", "content": "Be brief."}
    ]


def test_a_whole_answer_counts_the_usage_it_names() -> None:
    answer = b'{"model":"gpt-4o","usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}'
    assert streaming(backend(), stream=False).usage(answer) == Usage(5, 2, 7, "gpt-4o")


def test_a_force_prompt_answer_comes_back_as_a_chat_completion() -> None:
    translator = streaming(backend(force_prompt=True), stream=False)
    completion = {"id": "c-1", "object": "text_completion", "created": 1, "model": "instruct"}
    answer = orjson.loads(translator.answer(orjson.dumps({**completion, "choices": [{"text": "Hi", "index": 0}]})))
    assert answer["object"] == "chat.completion" and answer["choices"][0]["message"]["content"] == "Hi"
    assert orjson.loads(translator.answer(orjson.dumps(completion)))["object"] == "chat.completion"  # no choices


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"choices": {"text": "Hi"}}', "answered with a completion whose choices are not a list of objects"),
        (b'{"choices": ["Hi"]}', "answered with a completion whose choices are not a list of objects"),
        (b"not json", "answered with a body that is not a JSON object"),
        (b'["a list"]', "answered with a body that is not a JSON object"),
        (
            b'{"a":' * (MAX_DEPTH + 1) + b"1" + b"}" * (MAX_DEPTH + 1),
            f"answered with JSON nested more than {MAX_DEPTH} levels deep",
        ),
    ],
)
def test_a_force_prompt_answer_it_cannot_read_is_a_bad_gateway(body, says) -> None:
    with pytest.raises(GatewayError) as caught:
        streaming(backend(force_prompt=True), stream=False).answer(body)
    assert (caught.value.status, caught.value.code) == (502, "upstream_bad_response")
    assert caught.value.message == f"The upstream for group `g` {says}."
