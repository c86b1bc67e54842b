"""Resource-scoped paths cannot escape: ids in the URL are matched on the raw request path, must be plain tokens,
and reach the upstream as exactly one path segment, with the gateway's api-version exactly once.

Requests go over a raw socket so nothing on the client side normalises `..` or re-encodes the target.
"""

from __future__ import annotations

import re
import socket
from typing import Any
from urllib.parse import unquote

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from azure_sim import AzureSimulator
from core.resources.handler import _raw_path
from tests.support.gateway_process import gateway_environ
from tests.support.inprocess_gateway import InProcessGateway
from tests.support.json_values import json_object
from tests.support.standard import ALICE, SECRETS

PATHS_CONFIG = """
endpoints:
  azureOpenAI:
    assistants: true
    groups:
      - group: eastus
        apiKey: "${EASTUS_KEY}"
        instanceName: eastus-instance
        baseURL: "${SIM_URL}"
        version: "2024-10-21"
        assistants: true
        models:
          gpt-4o: {deploymentName: gpt-4o-dep}
gateway:
  apiKeys:
    - {name: alice, key: "${ALICE_KEY}"}
"""
ASSISTANTS_VERSION = "2025-04-01-preview"  # what a group without a preview version resolves to
TOKEN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


@pytest.fixture(scope="module")
def paths_gateway(sim: AzureSimulator, start_gateway_session):
    return start_gateway_session(PATHS_CONFIG, {**SECRETS, "SIM_URL": sim.url})


def raw_request(gateway, method: str, target: str, body: bytes = b"") -> tuple[int, bytes]:
    """Send `target` byte for byte as the request target; (status, body)."""
    host, port = gateway.url.removeprefix("http://").split(":")
    head = (
        f"{method} {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {ALICE}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=10) as connection:
        connection.sendall(head.encode("utf-8", "surrogateescape") + body)
        answer = b""
        while chunk := connection.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    _, _, payload = rest.partition(b"\r\n\r\n")
    return int(status_line.split()[1]), payload


def assert_refused(
    gateway, sim: AzureSimulator, method: str, target: str, body: bytes = b"", status: int | None = None
) -> dict[str, Any]:
    answered, payload = raw_request(gateway, method, target, body)
    assert answered in ((400, 404) if status is None else (status,)), (target, answered, payload)
    error = json_object(orjson.loads(payload)["error"])
    assert set(error) >= {"message", "type", "param", "code"} and error["type"] == "invalid_request_error"
    assert sim.requests == [], [(r.method, r.path, r.raw_query) for r in sim.requests]
    return error


# The three attacks from the review, then variants of each.
ATTACKS = [
    ("GET", "/v1/files/..%2F..%2Fx"),
    (
        "POST",
        "/v1/threads/..%2F..%2Fopenai%2Fdeployments%2Fgpt-4o-dep%2Fchat%2Fcompletions%3Fapi-version%3D2024-10-21%23",
    ),
    ("GET", "/v1/files/file-abc%3Fapi-version%3D2020-01-01%23"),
    ("GET", "/v1/files/%2e%2e%2f%2e%2e%2fx"),
    ("GET", "/v1/files/%2E%2E"),
    ("GET", "/v1/files/.."),
    ("GET", "/v1/files/../../x"),
    ("GET", "/v1/files/..%5c..%5cx"),
    ("GET", "/v1/files/file-abc%252F..%252Fx"),
    ("GET", "/v1/files/file-abc%00"),
    ("GET", "/v1/files/" + "a" * 129),
    ("GET", "/v1/files/file-%C3%A9t%C3%A9"),
    ("GET", "/v1/assistants/asst_1%23fragment"),
    ("GET", "/v1/threads/thread_1/messages/..%2F..%2F..%2Fassistants"),
    ("GET", "/v1/threads/thread_1/runs/run_1/steps/step_1%2F..%2F.."),
    ("POST", "/v1/threads/thread_1/runs/.%2Fcancel"),
    ("GET", "/v1/vector_stores/vs_1/files/%2E"),
    ("GET", "/v1/batches/batch_1%3Bx"),
    ("GET", "/v1/responses/resp_1%20x/input_items"),
]


@pytest.mark.parametrize(("method", "target"), ATTACKS)
def test_ids_that_could_escape_their_segment_are_refused_before_anything_goes_upstream(
    paths_gateway, sim, method, target
) -> None:
    assert_refused(paths_gateway, sim, method, target, b"{}" if method == "POST" else b"")


UNKNOWN_SHAPES = [
    ("GET", "/v1/files/file-abc/content/extra"),
    ("GET", "/v1/threads"),  # OpenAI has no thread list
    ("DELETE", "/v1/batches/batch_1"),
    ("POST", "/v1/files/file-abc/content"),
    ("GET", "/v1/threads/thread_1/runs/run_1/steps/step_1/more"),
    ("GET", "/v1/files//content"),
    ("GET", "/v1/files/file-abc/%63ontent"),  # a literal segment is matched as sent
    ("GET", "/v1/assistants/asst_1/runs"),
]


@pytest.mark.parametrize(("method", "target"), UNKNOWN_SHAPES)
def test_paths_outside_the_known_shapes_are_an_unknown_url(paths_gateway, sim, method, target) -> None:
    error = assert_refused(paths_gateway, sim, method, target, status=404)
    assert (error["message"], error["code"]) == (f"Invalid URL ({method} {unquote(target)})", "unknown_url")


def test_a_malformed_id_is_a_400_invalid_id(paths_gateway, sim) -> None:
    error = assert_refused(paths_gateway, sim, "GET", "/v1/files/..%2Fx", status=400)
    assert (error["param"], error["code"]) == (None, "invalid_id")
    assert error["message"] == (
        "Invalid object id: ids are 1 to 128 letters, digits, `_` or `-`, starting with a letter or digit."
    )


def test_a_valid_id_reaches_exactly_its_segment_with_one_api_version(paths_gateway, sim) -> None:
    status, _ = raw_request(paths_gateway, "GET", "/v1/files/file-abc_12-3/content?api-version=2020-01-01&x=1")
    assert status == 404  # the simulator's own answer: no such file
    (upstream,) = sim.requests
    assert upstream.path == "/openai/files/file-abc_12-3/content"
    assert upstream.raw_query.count("api-version=") == 1 and upstream.query["api-version"] == ASSISTANTS_VERSION
    assert upstream.query["x"] == "1"


def test_a_client_query_cannot_inject_a_second_api_version(paths_gateway, sim) -> None:
    raw_request(paths_gateway, "GET", "/v1/assistants?api-version=2020-01-01&api%2Dversion=2021-01-01&limit=5&after=")
    (upstream,) = sim.requests
    assert upstream.raw_query.count("api-version") == 1 and upstream.query["api-version"] == ASSISTANTS_VERSION


def test_list_cursors_are_ids_too(paths_gateway, sim) -> None:
    for cursor in ("after", "before"):
        error = assert_refused(paths_gateway, sim, "GET", f"/v1/files?{cursor}=..%2F..%2Fx", status=400)
        assert (error["param"], error["code"]) == (cursor, "invalid_id")


FAMILIES = ["files", "assistants", "threads", "vector_stores", "batches", "responses"]
# Characters that matter in a path, raw and percent-encoded, plus anything else hypothesis likes.
SEGMENT_PIECES = st.one_of(
    st.sampled_from(
        ["..", ".", "/", "%2F", "%2f", "%2E", "%5C", "%3F", "%23", "%25", "%00", "?", "#", ";", "%", "-", "_"]
    ),
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters=" \r\n"), min_size=1, max_size=4),
    st.from_regex(r"[A-Za-z0-9_-]{1,12}", fullmatch=True),
)


@settings(
    max_examples=150, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(family=st.sampled_from(FAMILIES), pieces=st.lists(SEGMENT_PIECES, min_size=1, max_size=5))
def test_no_id_segment_escapes_its_family(paths_gateway, sim, family, pieces) -> None:
    sim.reset()
    segment = "".join(pieces)
    try:
        status, _ = raw_request(paths_gateway, "GET", f"/v1/{family}/{segment}")
    except ConnectionError:
        status = 400  # the HTTP parser refused the request line: nothing could go upstream either
    if not sim.requests:
        assert 400 <= status < 500, (segment, status)
        return
    (upstream,) = sim.requests
    # A raw `?` or `#` ends the path (what follows is the client's query), and trailing slashes are dropped.
    meant = unquote(re.split(r"[?#]", segment)[0].rstrip("/"))
    if meant:
        assert TOKEN.fullmatch(meant), segment
        assert upstream.path == f"/openai/{family}/{meant}"
    else:
        assert upstream.path == f"/openai/{family}"
    assert upstream.raw_query.count("api-version=") == 1


STRING, OBJECT, ID_LIST, ID = "a string", "an object", "an array of id strings", None
BAD_BODIES = [
    ("/v1/vector_stores", {"file_ids": 5}, "file_ids", ID_LIST),
    ("/v1/vector_stores", {"file_ids": ["file-1", 7]}, "file_ids", ID_LIST),
    ("/v1/vector_stores", {"file_ids": ["..%2F..%2Fx"]}, "file_ids", ID),
    (
        "/v1/threads",
        {"tool_resources": {"code_interpreter": {"file_ids": "file-1"}}},
        "tool_resources.code_interpreter.file_ids",
        ID_LIST,
    ),
    (
        "/v1/threads",
        {"tool_resources": {"file_search": {"vector_store_ids": {"id": "vs_1"}}}},
        "tool_resources.file_search.vector_store_ids",
        ID_LIST,
    ),
    (
        "/v1/threads",
        {"tool_resources": {"file_search": {"vector_store_ids": [None]}}},
        "tool_resources.file_search.vector_store_ids",
        ID_LIST,
    ),
    (
        "/v1/threads",
        {"tool_resources": {"file_search": {"vector_store_ids": ["vs_1/.."]}}},
        "tool_resources.file_search.vector_store_ids",
        ID,
    ),
    ("/v1/threads", {"tool_resources": {"file_search": "vs_1"}}, "tool_resources.file_search", OBJECT),
    ("/v1/threads", {"tool_resources": ["vs_1"]}, "tool_resources", OBJECT),
    ("/v1/assistants", {"model": 5}, "model", STRING),
    ("/v1/assistants", {"model": ["gpt-4o"]}, "model", STRING),
    ("/v1/threads/thread_1/runs", {"assistant_id": 5}, "assistant_id", STRING),
    ("/v1/threads/runs", {"assistant_id": "../asst_1"}, "assistant_id", ID),
    (
        "/v1/responses",
        {"model": "gpt-4o", "input": "hi", "previous_response_id": ["resp_1"]},
        "previous_response_id",
        STRING,
    ),
    ("/v1/batches", {"input_file_id": {"id": "file-1"}, "endpoint": "/v1/chat/completions"}, "input_file_id", STRING),
    ("/v1/batches", {"input_file_id": "file-1/../x", "endpoint": "/v1/chat/completions"}, "input_file_id", ID),
]
INVALID_ID = "Invalid object id: ids are 1 to 128 letters, digits, `_` or `-`, starting with a letter or digit."


@pytest.mark.parametrize(("path", "body", "param", "what"), BAD_BODIES)
def test_malformed_body_fields_are_a_400_naming_the_field(paths_gateway, sim, path, body, param, what) -> None:
    error = assert_refused(paths_gateway, sim, "POST", path, orjson.dumps(body))
    if what is ID:
        assert (error["message"], error["param"], error["code"]) == (INVALID_ID, param, "invalid_id")
    else:
        assert (error["message"], error["param"], error["code"]) == (
            f"`{param}` must be {what}.",
            param,
            "invalid_type",
        )


def test_an_encoded_id_and_a_trailing_slash_reach_the_upstream_as_the_plain_path(paths_gateway, sim) -> None:
    for target in ("/v1/files/file%2Dabc/content", "/v1/files/file-abc/content/"):
        sim.reset()
        status, _ = raw_request(paths_gateway, "GET", target)
        assert status == 404  # the simulator's own answer: no such file
        (upstream,) = sim.requests
        assert upstream.path == "/openai/files/file-abc/content"


def test_a_clients_list_query_reaches_the_upstream_whole(paths_gateway, sim) -> None:
    include = "include%5B%5D=step_details.tool_calls%5B*%5D.file_search.results%5B*%5D.content"
    raw_request(paths_gateway, "GET", f"/v1/threads/thread_1/runs/run_1/steps?{include}")
    (upstream,) = sim.requests
    # (the simulator records the query decoded)
    assert upstream.raw_query == (
        f"include[]=step_details.tool_calls[*].file_search.results[*].content&api-version={ASSISTANTS_VERSION}"
    )


def test_an_id_at_the_end_of_the_path_keeps_its_last_character(paths_gateway, sim) -> None:
    raw_request(paths_gateway, "GET", "/v1/files/file-X")
    (upstream,) = sim.requests
    assert upstream.path == "/openai/files/file-X"


def _without_raw_path(app):
    """A server that does not report the path as sent (the ASGI spec lets it leave out `raw_path`)."""

    async def served(scope, receive, send) -> None:
        await app({name: value for name, value in scope.items() if name != "raw_path"}, receive, send)

    return served


@pytest.fixture(scope="module")
def gateway_without_raw_path(sim: AzureSimulator, tmp_path_factory):
    environ = gateway_environ(PATHS_CONFIG, {**SECRETS, "SIM_URL": sim.url}, tmp_path_factory.mktemp("gateway"))
    with InProcessGateway(environ, wrap_app=_without_raw_path) as gateway:
        yield gateway


@pytest.mark.parametrize(("method", "target"), ATTACKS)
def test_ids_are_checked_the_same_when_the_server_gives_no_raw_path(
    gateway_without_raw_path, sim, method, target
) -> None:
    assert_refused(gateway_without_raw_path, sim, method, target, b"{}" if method == "POST" else b"")


def test_a_valid_id_reaches_its_segment_when_the_server_gives_no_raw_path(gateway_without_raw_path, sim) -> None:
    status, _ = raw_request(gateway_without_raw_path, "GET", "/v1/files/file%2Dabc/content")
    assert status == 404  # the simulator's own answer: no such file
    (upstream,) = sim.requests
    assert upstream.path == "/openai/files/file-abc/content"


def test_the_path_checked_is_the_one_sent_or_the_decoded_one_encoded_again_when_the_server_omits_it() -> None:
    sent = {"type": "http", "path": "/v1/files/a/b c", "raw_path": b"/v1/files/a%2Fb%20c"}
    assert _raw_path(Request(sent)) == b"/v1/files/a%2Fb%20c"
    omitted = {"type": "http", "path": "/v1/files/a/b c"}
    assert _raw_path(Request(omitted)) == b"/v1/files/a/b%20c"
