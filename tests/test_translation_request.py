from dataclasses import replace
from typing import Any

import orjson

from core.config.model import Backend
from core.translation.force_prompt import messages_to_prompt
from core.translation.request import asks_usage
from core.translation.translator import ClientRequest, DeploymentTranslator, for_deployment

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
