"""Inputs that once gave 500s (issue 21), each over a real socket: the gateway answers them itself with a 400 in
OpenAI's shape, or forwards a request it built; nothing of the kind reaches Azure twice or unchecked."""

from __future__ import annotations

import httpx
import orjson
import pytest

from azure_sim import AzureSimulator
from core.inbound import is_ascii_digits
from core.json_depth import too_deep
from core.translation.errors import upstream_error
from core.translation.stream import event_json
from tests.support.gateways import Gateway, StartGateway
from tests.support.standard import ALICE, BOB, SECRETS

INPUTS_CONFIG = """
endpoints:
  azureOpenAI:
    assistants: true
    groups:
      - group: eastus
        apiKey: "${EASTUS_KEY}"
        instanceName: eastus-instance
        baseURL: "${SIM_URL}"
        version: "2025-04-01-preview"
        assistants: true
        models:
          gpt-4o: {deploymentName: gpt-4o-dep}
          whisper: {deploymentName: whisper-dep}
          dall-e-2: {deploymentName: dalle3-dep}
      - group: modern
        apiKey: "${EASTUS_KEY}"
        instanceName: eastus-instance
        baseURL: "${SIM_URL}"
        version: "2024-10-21"
        models:
          gpt-4o-v1: {deploymentName: gpt-4o-dep}
          whisper-v1: {deploymentName: whisper-dep}
          dall-e-v1: {deploymentName: dalle3-dep}
      - group: legacy
        apiKey: "${EASTUS_KEY}"
        instanceName: eastus-instance
        baseURL: "${SIM_URL}"
        version: "2024-10-21"
        forcePrompt: true
        models:
          gpt-instruct: {deploymentName: instruct-dep}
gateway:
  apiKeys:
    # limits: streamed chat asks Azure for its usage, so the gateway re-encodes the body
    - {name: alice, key: "${ALICE_KEY}", limits: {tokensPerMinute: 100000000}}
    - {name: bob, key: "${BOB_KEY}", models: [whisper-v1], resources: true}
  groups:
    modern: {api: v1}
  forwardHeaders: ["x-sim-*"]
"""
HEADERS = {"Authorization": f"Bearer {ALICE}"}
# Digits of other scripts, and numbers that are digits to str.isdigit() but not to int().
NON_ASCII_DIGITS = ("²", "٣", "\uff15", "1²", "߁", "\U0001d7d9")  # ..., fullwidth 5, double-struck 1


@pytest.fixture(scope="module")
def inputs_gateway(sim: AzureSimulator, start_gateway_session: StartGateway) -> Gateway:
    return start_gateway_session(INPUTS_CONFIG, {**SECRETS, "SIM_URL": sim.url})


def assert_openai_error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    error: dict[str, object] = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code, error
    assert error["type"] == "invalid_request_error"
    return error


# -- 10: numbers in query strings and headers are ASCII digits


@pytest.mark.parametrize("digits", NON_ASCII_DIGITS)
def test_a_list_limit_of_non_ascii_digits_is_a_400(inputs_gateway: Gateway, sim: AzureSimulator, digits) -> None:
    for family in ("assistants", "vector_stores", "files", "batches"):
        response = httpx.get(f"{inputs_gateway.url}/v1/{family}", params={"limit": digits}, headers=HEADERS)
        error = assert_openai_error(response, 400, "invalid_limit")
        assert error["param"] == "limit"
    assert sim.requests == []
    assert "Traceback" not in inputs_gateway.logs()


def test_ascii_digits_are_what_http_calls_digits() -> None:
    assert is_ascii_digits("0123456789")
    assert not any(is_ascii_digits(value) for value in (*NON_ASCII_DIGITS, "", "-1", "1.0", " 1", "1_0"))


# -- 12: the gateway's own query parameters, in any case, are its own


@pytest.mark.parametrize("name", ["API-Version", "Api-Version", "API-VERSION", "api-Version", "api-version"])
@pytest.mark.parametrize(
    "method, path", [("GET", "/v1/assistants"), ("POST", "/v1/threads"), ("GET", "/v1/assistants/asst_abc")]
)
def test_a_client_api_version_in_any_case_never_reaches_azure(
    inputs_gateway: Gateway, sim: AzureSimulator, name, method, path
) -> None:
    query = f"?{name}=2020-01-01&{name}=x&limit=3" if method == "GET" else f"?{name}=2020-01-01"
    body = b"{}" if method == "POST" else None
    response = httpx.request(method, f"{inputs_gateway.url}{path}{query}", content=body, headers=HEADERS)
    assert response.status_code < 500, response.text
    assert sim.requests, "the call went upstream"
    for recorded in sim.requests:
        pairs = [pair.partition("=") for pair in recorded.raw_query.split("&")]
        assert [value for key, _, value in pairs if key.lower() == "api-version"] == ["2025-04-01-preview"]
        if method == "GET" and path == "/v1/assistants":
            assert ("limit", "=", "3") in pairs  # the client's own parameters still go


# -- 9: a multipart boundary is at most 70 characters (RFC 2046)

UPLOAD_ROUTES = ("/v1/audio/transcriptions", "/v1/audio/translations", "/v1/images/edits", "/v1/files")


def multipart(boundary: str, *parts: tuple[str, str | None, bytes]) -> bytes:
    """A form with `boundary`: (name, filename or None, value) per part."""
    body = b""
    for name, filename, value in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"
    return body + f"--{boundary}--\r\n".encode()


def upload_form(route: str, boundary: str) -> bytes:
    if route == "/v1/files":
        return multipart(boundary, ("purpose", None, b"assistants"), ("file", "a.jsonl", b"{}"))
    model, file_part = (b"dall-e-2", "image") if route == "/v1/images/edits" else (b"whisper", "file")
    return multipart(boundary, ("model", None, model), ("prompt", None, b"a cat"), (file_part, "a.png", b"RIFF"))


@pytest.mark.parametrize("length", [71, 256, 257, 1000])
@pytest.mark.parametrize("route", UPLOAD_ROUTES)
@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_a_boundary_over_70_characters_is_a_400(
    inputs_gateway: Gateway, sim: AzureSimulator, length, route, chunked
) -> None:
    boundary = "b" * length
    body = upload_form(route, boundary)
    response = httpx.post(
        f"{inputs_gateway.url}{route}",
        content=iter([body]) if chunked else body,
        headers={**HEADERS, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    error = assert_openai_error(response, 400, "invalid_multipart")
    assert "70 characters" in str(error["message"])
    assert sim.requests == []
    assert "Traceback" not in inputs_gateway.logs()


@pytest.mark.parametrize("route", UPLOAD_ROUTES)
def test_a_boundary_of_70_characters_is_taken(inputs_gateway: Gateway, sim: AzureSimulator, route) -> None:
    boundary = "'()+_,-./:=?" + "b" * 58
    response = httpx.post(
        f"{inputs_gateway.url}{route}",
        content=upload_form(route, boundary),
        headers={**HEADERS, "Content-Type": f'multipart/form-data; boundary="{boundary}"'},
    )
    assert response.status_code == 200, response.text
    assert len(sim.requests) == 1


# -- 8: JSON nested deeper than the gateway re-encodes

MESSAGES = [{"role": "user", "content": "Hello"}]
# Requests the gateway re-encodes: a streamed chat it asks the usage of, a v1 group's chat (the deployment goes in
# the body), an assistant and a response (the model becomes the deployment), forcePrompt's chat, and a thread.
REENCODED: tuple[tuple[str, dict[str, object]], ...] = (
    ("/v1/chat/completions", {"model": "gpt-4o", "messages": MESSAGES, "stream": True}),
    ("/v1/chat/completions", {"model": "gpt-4o-v1", "messages": MESSAGES}),
    ("/v1/chat/completions", {"model": "gpt-instruct", "messages": MESSAGES}),
    ("/v1/assistants", {"model": "gpt-4o"}),
    ("/v1/responses", {"model": "gpt-4o", "input": "Hello"}),
    ("/v1/threads", {}),
    ("/v1/embeddings", {"model": "gpt-4o-v1", "input": "Hello"}),
)


def nested_body(fields: dict[str, object], levels: int) -> bytes:
    """`fields` and a `metadata` whose value makes the body nest `levels` deep (the body itself is one)."""
    inner = levels - 2  # the body, then metadata's object
    head = orjson.dumps(fields)[:-1] + (b", " if fields else b"")
    return head + b'"metadata": {"deep": ' + b"[" * inner + b"]" * inner + b"}}"


@pytest.mark.parametrize("levels", [129, 255, 256, 600, 1024, 1025, 5000])
@pytest.mark.parametrize("route, fields", REENCODED, ids=lambda value: str(value)[:40])
def test_json_nested_too_deep_is_a_400(inputs_gateway: Gateway, sim: AzureSimulator, levels, route, fields) -> None:
    response = httpx.post(
        f"{inputs_gateway.url}{route}",
        content=nested_body(fields, levels),
        headers={**HEADERS, "Content-Type": "application/json"},
    )
    error = assert_openai_error(response, 400, "json_too_deep")
    assert "128 levels" in str(error["message"])
    assert sim.requests == []
    assert "Traceback" not in inputs_gateway.logs()


@pytest.mark.parametrize("route, fields", REENCODED, ids=lambda value: str(value)[:40])
def test_json_nested_128_levels_goes_upstream(inputs_gateway: Gateway, sim: AzureSimulator, route, fields) -> None:
    response = httpx.post(
        f"{inputs_gateway.url}{route}",
        content=nested_body(fields, 128),
        headers={**HEADERS, "Content-Type": "application/json"},
    )
    assert response.status_code < 500, response.text
    assert len(sim.requests) == 1
    if fields.get("model") != "gpt-instruct":  # forcePrompt sends a prompt, without the rest
        assert b"[" * 126 + b"]" * 126 in sim.requests[0].body  # re-encoded or not, all of it went


@pytest.mark.parametrize("path", ["/v1/assistants", "/v1/assistants/asst_deep", "/openai/assistants?limit=5"])
def test_an_upstream_answer_too_deep_to_reencode_is_relayed_as_it_came(
    inputs_gateway: Gateway, sim: AzureSimulator, path
) -> None:
    response = httpx.get(f"{inputs_gateway.url}{path}", headers={**HEADERS, "x-sim-fail": "deep_json"})
    assert response.status_code == 200, response.text
    assert response.content.count(b"[") == 1 + 596  # data, then the metadata's nesting
    assert response.headers["content-type"].startswith("application/json")
    assert "Traceback" not in inputs_gateway.logs()
    # Everyone else's calls go on.
    assert httpx.get(f"{inputs_gateway.url}/v1/assistants", headers=HEADERS).status_code == 200


def test_an_upstream_answer_too_deep_to_translate_is_a_502(inputs_gateway: Gateway) -> None:
    response = httpx.post(
        f"{inputs_gateway.url}/v1/chat/completions",
        json={"model": "gpt-instruct", "messages": MESSAGES},
        headers={**HEADERS, "x-sim-fail": "deep_json"},
    )
    assert response.status_code == 502, response.text
    error = response.json()["error"]
    assert error["code"] == "upstream_bad_response"
    assert "nested more than 128 levels deep" in error["message"]
    assert "Traceback" not in inputs_gateway.logs()


def test_depth_counts_structure_not_brackets_in_strings() -> None:
    deep = b"[" * 129 + b"]" * 129
    assert too_deep(deep) and not too_deep(b"[" * 128 + b"]" * 128)
    assert not too_deep(orjson.dumps({"text": "[{" * 1000, "escaped": '\\"[[[' * 100}))
    assert too_deep(orjson.dumps({"a": '"\\'}) + deep)  # an escaped quote does not hide what follows
    # A deep stream event is relayed as it came (or skipped where it is translated), never re-encoded.
    assert event_json(b"data: " + b'{"a": ' + deep + b"}\n\n") is None
    assert event_json(b'data: {"a": [[1]]}\n\n') == {"a": [[1]]}


# -- 11: the form's `model` is read once, and a v1 group gets its deployment there

V1_UPLOADS = (("/v1/audio/transcriptions", "whisper-v1", "file"), ("/v1/images/edits", "dall-e-v1", "image"))


def post_form(gateway: Gateway, path: str, body: bytes, *, chunked: bool = False, key: str = BOB) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}{path}",
        content=iter([body[:100], body[100:]]) if chunked else body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "multipart/form-data; boundary=b"},
    )


@pytest.mark.parametrize("route, model, file_part", V1_UPLOADS)
@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_a_v1_group_gets_the_deployment_in_the_form(
    inputs_gateway: Gateway, sim: AzureSimulator, route, model, file_part, chunked
) -> None:
    audio = bytes(range(256)) * 64
    body = multipart("b", ("model", None, model.encode()), ("prompt", None, b"a cat"), (file_part, "a.png", audio))
    response = post_form(inputs_gateway, route, body, chunked=chunked, key=ALICE)
    assert response.status_code == 200, response.text
    (recorded,) = sim.requests
    assert recorded.path == "/openai/v1" + route.removeprefix("/v1")
    deployment = {"whisper-v1": "whisper-dep", "dall-e-v1": "dalle3-dep"}[model]
    assert recorded.form == {"model": deployment, "prompt": "a cat"}
    assert recorded.upload_bytes == len(audio)  # the file as it came, the length adjusted to the new model


def test_a_v1_group_gets_a_model_part_when_the_path_names_the_model(inputs_gateway: Gateway, sim: AzureSimulator):
    path = "/openai/deployments/whisper-v1/audio/transcriptions?api-version=2024-10-21"
    for form in (
        multipart("b", ("file", "a.wav", b"RIFF")),  # no model part: one is added
        multipart("b", ("model", None, b"gpt-4o-dep"), ("file", "a.wav", b"RIFF")),  # another deployment: rewritten
        # A part with headers of its own: replaced by a plain one (a transfer encoding must not apply to the new value).
        b'--b\r\nContent-Disposition: form-data; name="model"\r\nContent-Transfer-Encoding: base64\r\n\r\n'
        b"Z3B0LTRvLWRlcA==\r\n" + multipart("b", ("file", "a.wav", b"RIFF")),
    ):
        response = post_form(inputs_gateway, path, form)
        assert response.status_code == 200, response.text
        assert sim.requests[-1].form == {"model": "whisper-dep"}


@pytest.mark.parametrize("route", ["/v1/audio/transcriptions", "/openai/v1/audio/translations", "/v1/images/edits"])
@pytest.mark.parametrize("where", ["before-file", "after-file", "after-big-file"])
@pytest.mark.parametrize("chunked", [False, True], ids=["length", "chunked"])
def test_a_second_model_field_is_a_400(inputs_gateway: Gateway, sim: AzureSimulator, route, where, chunked) -> None:
    file_part = "image" if route.endswith("edits") else "file"
    allowed = ("model", None, b"whisper-v1")
    other = ("model", None, b"gpt-4o-dep")  # a deployment bob may not use
    upload = (file_part, "a.wav", b"R" * (200_000 if where == "after-big-file" else 10))
    parts = (allowed, other, upload) if where == "before-file" else (allowed, upload, other)
    response = post_form(inputs_gateway, route, multipart("b", *parts), chunked=chunked)
    error = assert_openai_error(response, 400, "duplicate_field")
    assert error["param"] == "model"
    # Nothing reached Azure whole: a refusal while the upload streamed leaves the upstream a request cut short.
    assert not [recorded for recorded in sim.requests if recorded.completed]
    assert "Traceback" not in inputs_gateway.logs()


def test_repeated_fields_the_gateway_does_not_route_by_still_go(inputs_gateway: Gateway, sim: AzureSimulator):
    form = multipart(
        "b",
        ("model", None, b"whisper"),
        ("timestamp_granularities[]", None, b"word"),
        ("timestamp_granularities[]", None, b"segment"),
        ("file", "a.wav", b"RIFF"),
    )
    response = post_form(inputs_gateway, "/v1/audio/transcriptions", form, key=ALICE)
    assert response.status_code == 200, response.text


def test_a_second_purpose_on_a_file_upload_is_a_400(inputs_gateway: Gateway, sim: AzureSimulator) -> None:
    form = multipart("b", ("purpose", None, b"assistants"), ("file", "a.jsonl", b"{}"), ("purpose", None, b"batch"))
    error = assert_openai_error(post_form(inputs_gateway, "/v1/files", form, key=ALICE), 400, "duplicate_field")
    assert error["param"] == "purpose"


TWO_GROUPS_CONFIG = """
endpoints:
  azureOpenAI:
    assistants: true
    groups:
      - group: first
        apiKey: "${EASTUS_KEY}"
        instanceName: first
        baseURL: "${SIM_URL}"
        version: "2025-04-01-preview"
        assistants: true
        models:
          gpt-4o: {deploymentName: gpt-4o-dep}
      - group: second
        apiKey: "${EASTUS_KEY}"
        instanceName: second
        baseURL: "${SECOND_URL}"
        version: "2025-04-01-preview"
        assistants: true
        models:
          gpt-4o-second: {deploymentName: gpt-4o-dep}
gateway:
  apiKeys: [{name: alice, key: "${ALICE_KEY}"}]
  forwardHeaders: ["x-sim-*"]
"""


def test_a_list_too_deep_to_merge_with_another_groups_is_a_502(
    sim: AzureSimulator, start_gateway: StartGateway
) -> None:
    second = AzureSimulator(name="second", api_keys={SECRETS["EASTUS_KEY"]}, deployments={"gpt-4o-dep"}).start()
    try:
        gateway = start_gateway(TWO_GROUPS_CONFIG, {**SECRETS, "SIM_URL": sim.url, "SECOND_URL": second.url})
        response = httpx.get(f"{gateway.url}/v1/assistants", headers={**HEADERS, "x-sim-fail": "deep_json"})
        assert response.status_code == 502, response.text
        error = response.json()["error"]
        assert error["code"] == "upstream_bad_response"
        assert "cannot merge" in error["message"]
        assert "Traceback" not in gateway.logs()
    finally:
        second.stop()


def test_an_upstream_error_too_deep_to_reencode_is_read_as_text() -> None:
    deep = b'{"error": {"message": "no", "code": "deep", "details": ' + b"[" * 600 + b"]" * 600 + b"}}"
    error = orjson.loads(upstream_error(400, deep)[0])["error"]
    assert error["code"] == "400" and error["message"].startswith("Upstream returned HTTP 400: ")
