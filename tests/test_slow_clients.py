"""A client that stops sending its request body does not hold a request for ever: the body must
arrive within `gateway.timeouts.total`, else an OpenAI-shaped 408 and nothing goes upstream."""

import socket
import time
from urllib.parse import urlsplit

import orjson
import pytest

from tests.support.standard import ALICE, SECRETS, STANDARD_CONFIG

SLOW_CONFIG = (
    STANDARD_CONFIG.replace("    read: 2\n", "    read: 2\n    total: 1\n")
    .replace("endpoints:\n  azureOpenAI:\n", "endpoints:\n  azureOpenAI:\n    assistants: true\n")
    .replace("      - group: eastus\n", "      - group: eastus\n        assistants: true\n")
)
BOUNDARY = "b0und"


@pytest.fixture(scope="module")
def slow_gateway(sim, start_gateway_session):
    return start_gateway_session(SLOW_CONFIG, {**SECRETS, "SIM_URL": sim.url})


def send_part_of_a_body(url: str, path: str, content_type: str, head: bytes, declared: int) -> tuple[bytes, float]:
    """Send the request head and the first bytes of a body declared longer, then wait for the answer."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as connection:
        request = (
            f"POST {path} HTTP/1.1\r\nHost: {parts.hostname}\r\nAuthorization: Bearer {ALICE}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {declared}\r\n\r\n"
        ).encode()
        started = time.monotonic()
        connection.sendall(request + head)
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            piece = connection.recv(65536)
            if not piece:
                break
            answer += piece
        return answer, time.monotonic() - started


@pytest.mark.parametrize(
    "path, content_type, head",
    [
        ("/v1/chat/completions", "application/json", b'{"model": "gpt-4o", "mess'),
        ("/v1/threads", "application/json", b'{"metad'),
        ("/v1/audio/transcriptions", f"multipart/form-data; boundary={BOUNDARY}", f"--{BOUNDARY}\r\n".encode()),
        ("/v1/files", f"multipart/form-data; boundary={BOUNDARY}", f"--{BOUNDARY}\r\n".encode()),
    ],
)
def test_a_body_that_stops_arriving_is_a_408(slow_gateway, sim, path, content_type, head) -> None:
    answer, waited = send_part_of_a_body(slow_gateway.url, path, content_type, head, declared=10_000)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 408"), answer[:300]
    error = orjson.loads(rest.partition(b"\r\n\r\n")[2])["error"]
    assert (error["code"], error["type"]) == ("request_timeout", "invalid_request_error")
    assert waited < 8  # the configured second, not the test's socket timeout
    assert not sim.requests


def test_an_upload_stalling_after_its_required_parts_is_already_upstream(slow_gateway, sim) -> None:
    # Model and the file part's start are in: the rest streams upstream as it comes, so the stall is
    # the upstream call's (it gets no whole request within the deadline), not a body read's 408.
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-4o\r\n'
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n\r\nRIFF'
    ).encode()
    answer, waited = send_part_of_a_body(
        slow_gateway.url, "/v1/audio/transcriptions", f"multipart/form-data; boundary={BOUNDARY}", head, 10_000
    )
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 504"), answer[:300]
    error = orjson.loads(rest.partition(b"\r\n\r\n")[2])["error"]
    assert (error["code"], error["type"]) == ("upstream_timeout", "api_error")
    assert waited < 8
