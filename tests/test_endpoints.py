"""The public routes and the gateway's own errors, over a real socket."""

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest

from tests.support.access_log import access_line
from tests.support.json_values import json_object
from tests.support.standard import ALICE, BOB

ALL_MODELS = ["gpt-4o", "gpt-4o-mini", "text-embedding-3-small", "gpt-tuned", "gpt-instruct", "mistral-large"]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def assert_openai_error(response: httpx.Response, status: int, code: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = json_object(response.json()["error"])
    assert set(error) >= {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    assert error["code"] == code
    return error


def test_health(gateway) -> None:
    response = httpx.get(f"{gateway.url}/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_models_lists_every_configured_model_once_as_openai_objects(gateway) -> None:
    response = httpx.get(f"{gateway.url}/v1/models", headers=auth(ALICE))
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ALL_MODELS
    for model in body["data"]:
        assert model["object"] == "model" and isinstance(model["created"], int) and model["owned_by"]


def test_models_respect_a_keys_allow_list(gateway) -> None:
    body = httpx.get(f"{gateway.url}/v1/models", headers={"api-key": BOB}).json()
    assert [m["id"] for m in body["data"]] == ["gpt-4o-mini"]


def test_get_model(gateway) -> None:
    model = httpx.get(f"{gateway.url}/v1/models/gpt-4o", headers=auth(ALICE)).json()
    assert model["id"] == "gpt-4o" and model["object"] == "model"
    assert_openai_error(httpx.get(f"{gateway.url}/v1/models/nope", headers=auth(ALICE)), 404, "model_not_found")
    # A model the key may not use looks like one that does not exist (no probing for configured ids).
    assert_openai_error(httpx.get(f"{gateway.url}/v1/models/gpt-4o", headers=auth(BOB)), 404, "model_not_found")


def test_a_model_is_the_same_openai_object_the_list_has_and_the_access_log_names_it(gateway) -> None:
    listed = httpx.get(f"{gateway.url}/v1/models", headers=auth(ALICE)).json()["data"]
    response = httpx.get(f"{gateway.url}/v1/models/gpt-4o-mini", headers=auth(BOB))
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    model = response.json()
    assert model == {"id": "gpt-4o-mini", "object": "model", "created": model["created"], "owned_by": "azure-openai"}
    assert model == next(entry for entry in listed if entry["id"] == "gpt-4o-mini")
    assert access_line(gateway, response.headers["x-request-id"])["model"] == "gpt-4o-mini"
    refused = httpx.get(f"{gateway.url}/v1/models/gpt-4o", headers=auth(BOB))
    error = assert_openai_error(refused, 404, "model_not_found")
    assert error["message"] == assert_openai_error(
        httpx.get(f"{gateway.url}/v1/models/nope", headers=auth(BOB)), 404, "model_not_found"
    )["message"].replace("nope", "gpt-4o")
    assert access_line(gateway, refused.headers["x-request-id"])["model"] == "gpt-4o"


@pytest.mark.parametrize("headers", [{}, auth("wrong-key"), {"api-key": "wrong-key"}, {"Authorization": "Basic xyz"}])
def test_missing_or_unknown_key_is_401(gateway, headers) -> None:
    for method, path in (("GET", "/v1/models"), ("POST", "/v1/chat/completions"), ("POST", "/v1/embeddings")):
        response = httpx.request(method, f"{gateway.url}{path}", headers=headers, json={"model": "gpt-4o"})
        assert_openai_error(response, 401, "invalid_api_key")


def test_model_not_allowed_for_key_is_404_like_an_unknown_one(gateway, sim) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions", headers=auth(BOB), json={"model": "gpt-4o", "messages": []}
    )
    error = assert_openai_error(response, 404, "model_not_found")
    assert error["param"] == "model"
    assert sim.requests == []


def test_unknown_model_is_404_model_not_found(gateway, sim) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions", headers=auth(ALICE), json={"model": "gpt-5x", "messages": []}
    )
    error = assert_openai_error(response, 404, "model_not_found")
    assert "gpt-5x" in error["message"] and error["type"] == "invalid_request_error"
    assert sim.requests == []


@pytest.mark.parametrize(
    "body, code",
    [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "invalid_json"),
        (b"", "invalid_json"),
        (b'{"messages": []}', "missing_model"),
        (b'{"model": 7}', "missing_model"),
    ],
)
def test_bad_bodies_are_400(gateway, body, code) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions", headers={**auth(ALICE), "content-type": "application/json"}, content=body
    )
    assert_openai_error(response, 400, code)


def test_body_over_the_limit_is_413_declared_or_chunked(gateway, sim) -> None:
    big = orjson.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "x" * 70_000}]})
    declared = httpx.post(f"{gateway.url}/v1/chat/completions", headers=auth(ALICE), content=big)
    assert_openai_error(declared, 413, "request_too_large")

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(big), 8192):
            yield big[i : i + 8192]

    chunked = httpx.post(f"{gateway.url}/v1/chat/completions", headers=auth(ALICE), content=chunks())
    assert_openai_error(chunked, 413, "request_too_large")
    assert sim.requests == []


def test_every_response_carries_a_request_id_that_the_access_log_names(gateway) -> None:
    ok = httpx.post(
        f"{gateway.url}/v1/chat/completions",
        headers=auth(ALICE),
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
    )
    denied = httpx.get(f"{gateway.url}/v1/models")
    for response in (ok, denied):
        assert len(response.headers["x-request-id"]) == 32
    line = access_line(gateway, ok.headers["x-request-id"])
    assert line["caller"] == "alice" and line["model"] == "gpt-4o" and line["group"] == "eastus"
    assert line["status"] == 200 and line["upstream_ms"] >= 0
    assert line["prompt_tokens"] > 0 and line["total_tokens"] >= line["prompt_tokens"]
    assert access_line(gateway, denied.headers["x-request-id"])["status"] == 401


def test_unknown_paths_and_methods_get_openais_invalid_url_404(gateway) -> None:
    for method, path in (("GET", "/v1/nope"), ("POST", "/v1/models"), ("DELETE", "/v1/chat/completions"), ("GET", "/")):
        response = httpx.request(method, f"{gateway.url}{path}", headers=auth(ALICE))
        error = assert_openai_error(response, 404, "unknown_url")
        assert error["message"] == f"Invalid URL ({method} {path})"


def test_bad_json_is_explained_the_way_openai_does(gateway) -> None:
    headers = {**auth(ALICE), "content-type": "application/json"}
    unparsable = httpx.post(f"{gateway.url}/v1/chat/completions", headers=headers, content=b"{not json")
    assert unparsable.json()["error"]["message"] == (
        "We could not parse the JSON body of your request. The body must be a JSON object."
    )
    not_an_object = httpx.post(f"{gateway.url}/v1/chat/completions", headers=headers, content=b"[1, 2]")
    assert not_an_object.json()["error"]["message"] == "The request body must be a JSON object."
