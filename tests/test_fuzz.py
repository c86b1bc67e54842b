"""Hostile input, generated: paths, JSON bodies and multipart forms for every route family; JSON nested either side
of the gateway's and orjson's limits, boundaries either side of 70 and 256 characters, other scripts' digits in
numbers, repeated form fields before and after the file part, and query parameters in any case.

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
from urllib.parse import quote, unquote, urlsplit

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
      - group: modern
        apiKey: "${EASTUS_KEY}"
        instanceName: eastus-instance
        baseURL: "${SIM_URL}"
        version: "2024-10-21"
        models:
          gpt-4o-v1: {deploymentName: gpt-4o-dep}
          gpt-4o-mini-v1: {deploymentName: gpt-4o-mini-dep}
          whisper-v1: {deploymentName: whisper-dep}
          dall-e-v1: {deploymentName: dalle3-dep}
gateway:
  apiKeys:
    - {name: alice, key: "${ALICE_KEY}"}
    # limits: streamed chat then asks Azure for its usage, so the gateway re-encodes the body
    - {name: carol, key: "gw-key-carol-7a8b9c", limits: {tokensPerMinute: 1000000000}}
    - {name: bob, key: "${BOB_KEY}", models: [gpt-4o-mini, gpt-4o-mini-v1], resources: true}
  groups:
    modern: {api: v1}
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
MODELS = (
    "gpt-4o",
    "gpt-4o-mini",
    "text-embedding-3-small",
    "dall-e-3",
    "whisper",
    "tts",
    "gpt-instruct",
    "gpt-4o-v1",
    "gpt-4o-mini-v1",
    "whisper-v1",
    "dall-e-v1",
)
# The deployments each key's models run on: what a request made for it may name upstream (a v1 group's body or form).
CAROL = "gw-key-carol-7a8b9c"  # alice's models, with limits
KEY_DEPLOYMENTS = {ALICE: frozenset(DEPLOYMENTS), BOB: frozenset({"gpt-4o-mini-dep"}), CAROL: frozenset(DEPLOYMENTS)}
# What Azure's v1 API serves under /openai/v1/ besides the resource families; the deployment is in the body or form.
V1_OPERATIONS = ("chat", "completions", "embeddings", "images", "audio")
DEPLOYMENT_ROUTES = (
    "/v1/chat/completions",
    "/v1/completions",
    "/v1/embeddings",
    "/v1/images/generations",
    "/v1/audio/speech",
)
BCHARS = string.ascii_letters + string.digits + "'()+_,-./:=?"  # a boundary's characters (RFC 2046), but space
# Either side of 70 and of 256, filled out to that length.
long_boundaries = st.builds(
    lambda text, length: (text * length)[:length],
    st.text(BCHARS, min_size=1, max_size=8),
    st.sampled_from((69, 70, 71, 255, 256, 257, 1000)),
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


def any_case(name: str) -> st.SearchStrategy[str]:
    """`name` with each letter in either case: Azure reads parameter names case-insensitively."""
    return st.tuples(*(st.sampled_from(sorted({c.lower(), c.upper()})) for c in name)).map("".join)


# Numbers as a client might write them, other scripts' digits among them (str.isdigit() takes "²" and "٣").
numbers = st.one_of(
    st.integers(-5, 200).map(str),
    st.text(st.characters(categories=("Nd", "No")), min_size=1, max_size=4),
    st.text(st.characters(categories=("Nd", "No")), min_size=1, max_size=2).map(lambda digits: "1" + digits),
)
query_params = st.one_of(
    st.tuples(any_case("api-version"), st.sampled_from(("2020-01-01", "x", "preview", "2025-04-01-preview"))),
    st.tuples(st.just("limit"), numbers),
    st.tuples(st.sampled_from(("after", "before", "order")), st.sampled_from(("..%2F..", "asst_abc", "desc", "²"))),
)
queries = st.lists(query_params, max_size=3).map(
    lambda params: "?" + "&".join(f"{name}={quote(value, safe='%')}" for name, value in params) if params else ""
)
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


def assert_upstream_stayed_in_bounds(sim: AzureSimulator, seen_before: int, key: str = ALICE) -> None:
    for recorded in sim.requests[seen_before:]:
        path = recorded.path
        assert "/../" not in path + "/" and "/./" not in path + "/", path
        assert path.startswith("/openai/"), path
        v1 = path.startswith("/openai/v1/")
        rest = path.removeprefix("/openai/").removeprefix("v1/")
        first, _, tail = rest.partition("/")
        if first == "deployments":
            deployment = tail.partition("/")[0]
            assert deployment in KEY_DEPLOYMENTS[key], path
        elif v1 and first in V1_OPERATIONS:
            # Azure's v1 API takes the deployment from the body or the form: one the key may use, never a public id.
            named = recorded.json.get("model") if isinstance(recorded.json, dict) else recorded.form.get("model")
            assert named in KEY_DEPLOYMENTS[key] or not recorded.completed, (path, named)
        else:
            assert first in FAMILIES, path
        # Names as Azure reads them: in any case.
        assert recorded.raw_query.lower().count("api-version=") <= 1, recorded.raw_query


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
    query=st.one_of(
        st.sampled_from(("", "?api-version=2020-01-01", "?limit=5&after=..%2F..", "?api-version=x&api-version=y")),
        queries,
    ),
)
def test_resource_paths(checked: Gateway, sim: AzureSimulator, family, path, method, key, query) -> None:
    seen = len(sim.requests)
    target = f"/v1/{family}/" + "/".join(path) + query
    body = b"{}" if method == "POST" else None
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    status, response_headers, answer = raw_request(checked.url, method, target, body, headers)
    assert_answered_safely(status, response_headers, answer)
    assert_upstream_stayed_in_bounds(sim, seen, key)
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
    assert_upstream_stayed_in_bounds(sim, seen, key)


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
    assert_upstream_stayed_in_bounds(sim, seen, key)


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
    # RFC 2046 allows 70 characters; python-multipart refuses over 256 as its parser is built.
    boundary=st.one_of(st.text(BCHARS, min_size=1, max_size=40), long_boundaries),
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
    assert_upstream_stayed_in_bounds(sim, seen, key)


@FUZZ
@given(
    family=st.sampled_from(("assistants", "vector_stores", "files", "batches")),
    query=queries,
    key=st.sampled_from(KEYS),
)
def test_list_queries(checked: Gateway, sim: AzureSimulator, family, query, key) -> None:
    seen = len(sim.requests)
    headers = {"Authorization": f"Bearer {key}"}
    status, response_headers, answer = raw_request(checked.url, "GET", f"/v1/{family}{query}", None, headers)
    assert_answered_safely(status, response_headers, answer)
    assert_upstream_stayed_in_bounds(sim, seen, key)


# Containers opened at each level of a deep value, and what closes them around the innermost `1`.
NESTINGS = {b"[": b"]", b'{"a": ': b"}", b'[{"b": ': b"}]"}


@FUZZ
@given(
    route=st.sampled_from((*DEPLOYMENT_ROUTES, "/v1/assistants", "/v1/responses", "/v1/threads", "/v1/threads/runs")),
    model=st.sampled_from(MODELS),
    stream=st.booleans(),
    # Either side of 128 (the gateway's bound), of 254 (orjson writes no deeper) and of 1024 (it reads no deeper).
    levels=st.one_of(st.integers(1, 300), st.integers(250, 1100)),
    opener=st.sampled_from(sorted(NESTINGS)),
    key=st.sampled_from((*KEYS, CAROL)),
)
def test_deep_json(checked: Gateway, sim: AzureSimulator, route, model, stream, levels, opener, key) -> None:
    seen = len(sim.requests)
    fields = {"model": model, "messages": [{"role": "user", "content": "Hi"}], "input": "Hi", "stream": stream}
    body = orjson.dumps(fields)[:-1] + b', "metadata": ' + opener * levels + b"1" + NESTINGS[opener] * levels + b"}"
    response = httpx.post(
        f"{checked.url}{route}",
        content=body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
        timeout=30,
    )
    assert_answered_safely(response.status_code, list(response.headers.items()), response.content)
    assert_upstream_stayed_in_bounds(sim, seen, key)


form_field = st.tuples(
    st.sampled_from(("model", "purpose", "language", "x")),
    st.sampled_from((*MODELS, *DEPLOYMENTS, "assistants", "batch")),
)


@FUZZ
@given(
    route=st.sampled_from(UPLOAD_ROUTES),
    before=st.lists(form_field, max_size=4),
    after=st.lists(form_field, max_size=3),
    file_bytes=st.sampled_from((0, 10, 100_000)),
    chunked=st.booleans(),
    key=st.sampled_from(KEYS),
)
def test_multipart_repeated_fields(
    checked: Gateway, sim: AzureSimulator, route, before, after, file_bytes, chunked, key
) -> None:
    """Fields before and after the file part, repeated or not: a second value of a field the gateway routes by is
    refused (it checks one; Azure might honour another), and no v1 request names a deployment the key may not use."""
    seen = len(sim.requests)
    file_part = "image" if route == "/v1/images/edits" else "file"

    def part(name: str, value: str) -> bytes:
        return f'--b\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()

    body = b"".join(part(name, value) for name, value in before)
    body += f'--b\r\nContent-Disposition: form-data; name="{file_part}"; filename="a.wav"\r\n\r\n'.encode()
    body += b"R" * file_bytes + b"\r\n" + b"".join(part(name, value) for name, value in after) + b"--b--\r\n"
    response = httpx.post(
        f"{checked.url}{route}",
        content=iter([body[:200], body[200:]]) if chunked else body,
        headers={"Authorization": f"Bearer {key}", "Content-Type": "multipart/form-data; boundary=b"},
        timeout=30,
    )
    assert_answered_safely(response.status_code, list(response.headers.items()), response.content)
    assert_upstream_stayed_in_bounds(sim, seen, key)
    names = [name for name, _ in before + after]
    routing = ("model", "purpose") if route == "/v1/files" else ("model",)
    if any(names.count(name) > 1 for name in routing):
        assert response.status_code >= 400, "a repeated routing field was taken"
