"""Hostile input, generated: paths, JSON bodies and multipart forms for every route family.

Whatever a client sends, the gateway answers it itself (a 4xx in OpenAI's shape) or forwards
it to a URL it built: never a gateway 5xx, never a traceback, never a configured secret in a
response or a log line, and nothing upstream outside `/openai/<resource family>` and the
configured deployments. The examples are derandomized (a fixed seed), so CI runs the same
bounded set every time; `FUZZ_EXAMPLES=2000 make test` searches further.
"""

from __future__ import annotations

import http.client
import os
import string
from collections.abc import Iterator
from urllib.parse import unquote, urlsplit

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from azure_sim import AzureSimulator
from tests.support.gateways import Gateway, StartGateway
from tests.support.standard import ALICE, BOB, SECRETS

FUZZ_CONFIG = """
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
          gpt-4o-mini: {deploymentName: gpt-4o-mini-dep}
          text-embedding-3-small: {deploymentName: embed-dep}
          dall-e-3: {deploymentName: dalle3-dep}
          whisper: {deploymentName: whisper-dep}
          tts: {deploymentName: tts-dep}
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
    - {name: alice, key: "${ALICE_KEY}"}
    - {name: bob, key: "${BOB_KEY}", models: [gpt-4o-mini], resources: true}
  maxBodyBytes: 1048576
  timeouts: {connect: 2, read: 5}
"""
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FAMILIES = ("assistants", "threads", "vector_stores", "files", "batches", "responses")
DEPLOYMENTS = ("gpt-4o-dep", "gpt-4o-mini-dep", "embed-dep", "dalle3-dep", "whisper-dep", "tts-dep", "instruct-dep")
MODELS = ("gpt-4o", "gpt-4o-mini", "text-embedding-3-small", "dall-e-3", "whisper", "tts", "gpt-instruct")
DEPLOYMENT_ROUTES = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/images/generations",
    "/v1/audio/speech",
)
UPLOAD_ROUTES = ("/v1/audio/transcriptions", "/v1/audio/translations", "/v1/images/edits", "/v1/files")
KEYS = (ALICE, BOB)

# Path segments an attacker tries, and ordinary-looking ones.
TRICKY_SEGMENTS = (
    "..",
    ".",
    "%2e%2e",
    "%2E%2E",
    "..%2F..",
    "..%2f..%2fopenai",
    "%2F",
    "%3F",
    "%23",
    "%3Fapi-version%3D1",
    "%00",
    "%252F",
    "..%5C..",
    "~",
    ";",
    "@",
    "file-abc123",
    "asst_abc",
    "thread_abc",
    "run_abc",
    "vs_abc",
    "batch_abc",
    "resp_abc",
    "msg_abc",
    "step_abc",
    "runs",
    "messages",
    "steps",
    "files",
    "content",
    "cancel",
    "input_items",
    "search",
    "file_batches",
    "submit_tool_outputs",
    "%E2%80%AE",
    "%C0%AE%C0%AE",
)
SEGMENT_ALPHABET = string.ascii_letters + string.digits + "-_.~%!$&'()*+,;=:@"
segments = st.one_of(st.sampled_from(TRICKY_SEGMENTS), st.text(SEGMENT_ALPHABET, min_size=1, max_size=24))
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63) | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
FIELDS = (
    "model",
    "messages",
    "prompt",
    "input",
    "stream",
    "stream_options",
    "n",
    "file_ids",
    "tool_resources",
    "assistant_id",
    "previous_response_id",
    "input_file_id",
    "vector_store_ids",
    "tools",
    "thread",
    "voice",
    "response_format",
    "max_tokens",
    "temperature",
    "endpoint",
    "completion_window",
    "file_id",
    "metadata",
)
field_values = st.one_of(json_values, st.sampled_from(MODELS), st.sampled_from(TRICKY_SEGMENTS))
bodies = st.one_of(
    st.dictionaries(st.sampled_from(FIELDS), field_values, max_size=6),
    json_values.map(lambda value: value if isinstance(value, dict) else {"model": "gpt-4o", "x": value}),
)


@pytest.fixture(scope="module")
def fuzz_gateway(sim: AzureSimulator, start_gateway_session: StartGateway) -> Gateway:
    return start_gateway_session(FUZZ_CONFIG, {**SECRETS, "SIM_URL": sim.url})


@pytest.fixture
def checked(fuzz_gateway: Gateway, sim: AzureSimulator) -> Iterator[Gateway]:
    """After the test: no configured secret in any line the gateway logged."""
    yield fuzz_gateway
    logs = fuzz_gateway.logs()
    assert "Traceback" not in logs
    for name, secret in SECRETS.items():
        assert secret not in logs, f"{name} appears in the gateway's log"


def assert_answered_safely(status: int, headers: list[tuple[str, str]], body: bytes) -> None:
    assert 200 <= status < 500, (status, body[:500])
    assert b"Traceback" not in body
    for name, secret in SECRETS.items():
        assert secret.encode() not in body, f"{name} in a response body"
        assert all(secret not in value for _, value in headers), f"{name} in a response header"
    if status >= 400:
        error = orjson.loads(body)["error"]
        assert {"message", "type", "param", "code"} <= set(error)


def assert_upstream_stayed_in_bounds(sim: AzureSimulator, seen_before: int) -> None:
    for recorded in sim.requests[seen_before:]:
        path = recorded.path
        assert "/../" not in path + "/" and "/./" not in path + "/", path
        assert path.startswith("/openai/"), path
        rest = path.removeprefix("/openai/").removeprefix("v1/")
        first, _, tail = rest.partition("/")
        if first == "deployments":
            deployment = tail.partition("/")[0]
            assert deployment in DEPLOYMENTS, path
        else:
            assert first in FAMILIES, path
        assert recorded.raw_query.count("api-version=") <= 1, recorded.raw_query


def raw_request(
    url: str, method: str, target: str, body: bytes | None, headers: dict[str, str]
) -> tuple[int, list[tuple[str, str]], bytes]:
    """Send `target` exactly as given (http.client does not normalise paths, httpx would)."""
    parts = urlsplit(url)
    assert parts.hostname is not None, url
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        connection.request(method, target, body=body, headers=headers)
        response = connection.getresponse()
        return response.status, response.getheaders(), response.read()
    finally:
        connection.close()


@FUZZ
@given(
    family=st.sampled_from(FAMILIES),
    path=st.lists(segments, min_size=1, max_size=5),
    method=st.sampled_from(("GET", "POST", "DELETE")),
    key=st.sampled_from(KEYS),
    query=st.sampled_from(("", "?api-version=2020-01-01", "?limit=5&after=..%2F..", "?api-version=x&api-version=y")),
)
def test_resource_paths(checked: Gateway, sim: AzureSimulator, family, path, method, key, query) -> None:
    seen = len(sim.requests)
    target = f"/v1/{family}/" + "/".join(path) + query
    body = b"{}" if method == "POST" else None
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    status, response_headers, answer = raw_request(checked.url, method, target, body, headers)
    assert_answered_safely(status, response_headers, answer)
    assert_upstream_stayed_in_bounds(sim, seen)
    for recorded in sim.requests[seen:]:
        # An id the gateway forwarded stays one segment: no escape into another family or deployment.
        decoded = unquote(recorded.path)
        assert decoded.count("/") >= recorded.path.count("/")


@FUZZ
@given(route=st.sampled_from(DEPLOYMENT_ROUTES), body=bodies, key=st.sampled_from(KEYS))
def test_deployment_bodies(checked: Gateway, sim: AzureSimulator, route, body, key) -> None:
    seen = len(sim.requests)
    response = httpx.post(
        f"{checked.url}{route}",
        content=orjson.dumps(body),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert_answered_safely(response.status_code, list(response.headers.items()), response.content)
    assert_upstream_stayed_in_bounds(sim, seen)


@FUZZ
@given(
    family=st.sampled_from(("threads", "vector_stores", "assistants", "batches", "responses", "threads/runs")),
    body=bodies,
    key=st.sampled_from(KEYS),
)
def test_resource_bodies(checked: Gateway, sim: AzureSimulator, family, body, key) -> None:
    seen = len(sim.requests)
    response = httpx.post(
        f"{checked.url}/v1/{family}",
        content=orjson.dumps(body),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert_answered_safely(response.status_code, list(response.headers.items()), response.content)
    assert_upstream_stayed_in_bounds(sim, seen)


@FUZZ
@given(route=st.sampled_from((*DEPLOYMENT_ROUTES, "/v1/threads", "/v1/models/x")), raw=st.binary(max_size=300))
def test_raw_bytes_as_json(checked: Gateway, sim: AzureSimulator, route, raw) -> None:
    method = "GET" if route.startswith("/v1/models") else "POST"
    response = httpx.request(
        method,
        f"{checked.url}{route}",
        content=raw,
        headers={"Authorization": f"Bearer {ALICE}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert_answered_safely(response.status_code, list(response.headers.items()), response.content)


form_fields = st.dictionaries(
    st.sampled_from(("model", "purpose", "language", "prompt", "response_format", "x")),
    st.one_of(st.sampled_from((*MODELS, "assistants", "batch")), st.text(max_size=30)),
    max_size=4,
)


@FUZZ
@given(
    route=st.sampled_from(UPLOAD_ROUTES),
    fields=form_fields,
    file_part=st.sampled_from(("file", "image", "other", None)),
    content=st.binary(max_size=2000),
    boundary=st.text(string.ascii_letters + string.digits + "'()+_,-./:=?", min_size=1, max_size=40),
    mangle=st.sampled_from(("none", "truncate", "wrong-boundary", "raw-bytes")),
    key=st.sampled_from(KEYS),
)
def test_multipart(
    checked: Gateway, sim: AzureSimulator, route, fields, file_part, content, boundary, mangle, key
) -> None:
    seen = len(sim.requests)
    body = b""
    for name, value in fields.items():
        body += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode() + value.encode() + b"\r\n"
        )
    if file_part is not None:
        body += f'--{boundary}\r\nContent-Disposition: form-data; name="{file_part}"; filename="a.wav"\r\n'.encode()
        body += b"Content-Type: application/octet-stream\r\n\r\n" + content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    header_boundary = boundary
    if mangle == "truncate":
        body = body[: len(body) // 2]
    elif mangle == "wrong-boundary":
        header_boundary = boundary + "x"
    elif mangle == "raw-bytes":
        body = content
    response = httpx.post(
        f"{checked.url}{route}",
        content=body,
        headers={
            "Authorization": f"Bearer {key}",
            "Content-Type": f'multipart/form-data; boundary="{header_boundary}"',
        },
        timeout=30,
    )
    assert_answered_safely(response.status_code, list(response.headers.items()), response.content)
    assert_upstream_stayed_in_bounds(sim, seen)
