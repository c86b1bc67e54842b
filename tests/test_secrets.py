"""No configured secret ever appears in a response or in the gateway's log."""

import httpx

from tests.support.standard import ALICE, SECRETS

PROMPT = "prompt-text-that-must-never-be-logged"


def test_no_secret_in_any_response_or_log_line(gateway) -> None:
    headers = {"Authorization": f"Bearer {ALICE}"}
    chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": PROMPT}]}
    responses = [
        httpx.get(f"{gateway.url}/v1/models", headers=headers),
        httpx.get(f"{gateway.url}/v1/models/mistral-large", headers=headers),
        httpx.get(f"{gateway.url}/v1/models"),
        httpx.post(f"{gateway.url}/v1/chat/completions", json=chat, headers=headers),
        httpx.post(f"{gateway.url}/v1/chat/completions", json={**chat, "stream": True}, headers=headers),
        httpx.post(f"{gateway.url}/v1/chat/completions", json={**chat, "model": "mistral-large"}, headers=headers),
        httpx.post(f"{gateway.url}/v1/chat/completions", json={**chat, "model": "x"}, headers=headers),
        httpx.post(f"{gateway.url}/v1/chat/completions", content=b"{", headers=headers),
        httpx.post(f"{gateway.url}/v1/chat/completions", json=chat, headers={**headers, "x-sim-fail": "429"}),
        httpx.post(
            f"{gateway.url}/v1/chat/completions", json=chat, headers={**headers, "x-sim-fail": "content_filter"}
        ),
        httpx.post(f"{gateway.url}/v1/chat/completions", json=chat, headers={**headers, "x-sim-fail": "500"}),
        httpx.post(
            f"{gateway.url}/v1/chat/completions",
            json={**chat, "stream": True},
            headers={**headers, "x-sim-fail": "abort"},
        ),
        httpx.post(
            f"{gateway.url}/v1/embeddings", json={"model": "text-embedding-3-small", "input": "a"}, headers=headers
        ),
    ]
    log = gateway.logs()
    for secret in SECRETS.values():
        for response in responses:
            assert secret not in response.text
            assert secret not in str(response.headers)
        assert secret not in log
    assert PROMPT not in log
