import orjson

from core.config.model import Backend
from core.translation.request import messages_to_prompt, rewrite_body, upstream_operation


def backend(**overrides: object) -> Backend:
    fields: dict[str, object] = dict(
        group="g",
        deployment="d",
        api_version="2024-10-21",
        serverless=False,
        base_url="https://r.openai.azure.com/openai/deployments/d",
        auth="api-key",
        headers=(("api-key", "k"),),
    )
    fields.update(overrides)
    return Backend(**fields)  # type: ignore[arg-type]


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
