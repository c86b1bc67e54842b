"""An upstream that misbehaves: cut bodies, drips, huge or compressed answers, odd statuses, garbage JSON.

Each test teaches the simulator one misbehaviour (through `sim.behaviour`, the default for every request) and
checks what a client sees over a real socket: never a short answer that looks whole, never a hung request,
never a 500, always an OpenAI-shaped error or an aborted transfer.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest

from azure_sim import AzureSimulator
from tests.support.gateways import Gateway, StartGateway
from tests.support.json_values import json_object
from tests.support.standard import ALICE, SECRETS, STANDARD_CONFIG
from tests.support.streams import event_object

TOTAL, IDLE, STREAM, READ = 1.5, 1.0, 1.5, 6  # idle < stream: each deadline can be the one that fires
MAX_RESPONSE_BYTES = 200_000
FAULTS_CONFIG = (
    STANDARD_CONFIG.replace(
        "          text-embedding-3-small:\n",
        "          tts:\n            deploymentName: tts-dep\n          text-embedding-3-small:\n",
    )
    .replace("  azureOpenAI:\n", "  azureOpenAI:\n    assistants: true\n", 1)
    .replace("      - group: eastus\n", "      - group: eastus\n        assistants: true\n", 1)
    .replace(
        "    connect: 2\n    read: 2\n",
        f"    connect: 2\n    read: {READ}\n    total: {TOTAL}\n    idle: {IDLE}\n    stream: {STREAM}\n",
    )
    .replace("  maxBodyBytes: 65536\n", f"  maxBodyBytes: 65536\n  maxResponseBytes: {MAX_RESPONSE_BYTES}\n")
)
AUTH = {"Authorization": f"Bearer {ALICE}"}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "one two three"}]}
SPEECH = {"model": "tts", "voice": "alloy", "input": "Hello"}


@pytest.fixture(scope="module")
def faulty(sim: AzureSimulator, start_gateway_session: StartGateway) -> Gateway:
    return start_gateway_session(FAULTS_CONFIG, {**SECRETS, "SIM_URL": sim.url})


@pytest.fixture
def client(faulty: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{faulty.url}/v1", headers=AUTH, timeout=READ + 4) as client:
        yield client


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body["error"]) >= {"message", "type", "param", "code"}, body
    return json_object(body["error"])


def log_lines_after(gateway: Gateway, mark: int) -> list[str]:
    return gateway.logs()[mark:].splitlines()


def wait_for(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def read_within(response: httpx.Response, seconds: float = READ) -> bytes:
    """The body, failing the test when it is still coming after `seconds` (a relay that never gives up)."""
    deadline = time.monotonic() + seconds
    body = b""
    for chunk in response.iter_bytes():
        body += chunk
        assert time.monotonic() < deadline, f"still reading after {seconds} s"
    return body


def upload_file(client: httpx.Client, gateway: Gateway, content: bytes) -> str:
    """The uploaded file's id, once the upload's own access line is in the gateway's log (the log is read from
    the process as it comes: a test that marks the log next must not count that line as its own)."""
    response = client.post("/files", data={"purpose": "assistants"}, files={"file": ("data.jsonl", content)})
    assert response.status_code == 200, response.text
    file_id = response.json()["id"]
    assert isinstance(file_id, str), response.text
    request_id = response.headers["x-request-id"]
    assert wait_for(lambda: request_id in gateway.logs()), "the upload's access line never came"
    return file_id


# ----------------------------------------------------------------------------- 6: cut byte answers


@pytest.mark.parametrize("mode", ["truncate_chunked", "truncate_length"])
@pytest.mark.parametrize("download", ["speech", "file"])
def test_a_cut_byte_answer_reaches_the_client_as_a_broken_transfer(
    client: httpx.Client, faulty: Gateway, sim: AzureSimulator, mode: str, download: str
) -> None:
    if download == "speech":
        request = client.build_request("POST", "/audio/speech", json=SPEECH)
    else:
        file_id = upload_file(client, faulty, bytes(range(256)) * 4)
        request = client.build_request("GET", f"/files/{file_id}/content")
    sim.behaviour.fail = mode
    mark = len(faulty.logs())
    response = client.send(request, stream=True)
    assert response.status_code == 200
    with pytest.raises(httpx.RemoteProtocolError):
        read_within(response)
    response.close()
    # Logged as what happened: the upstream answered, then went away.
    closed = '"error_code":"upstream_closed_connection"'
    assert wait_for(lambda: any(closed in line for line in log_lines_after(faulty, mark)))
    # The request's own line, and uvicorn's one-line notice that the response was left unfinished: no traceback.
    lines = log_lines_after(faulty, mark)
    assert len(lines) <= 2 and not any("Traceback" in line for line in lines), lines


# ----------------------------------------------------------------------------- 7: deadlines


def test_a_dripping_non_streamed_answer_ends_in_504_after_the_total_deadline(
    client: httpx.Client, sim: AzureSimulator
) -> None:
    sim.behaviour.drip = 0.2  # a byte every 200 ms: each read arrives well within the read timeout
    started = time.monotonic()
    response = client.post("/chat/completions", json=CHAT)
    assert response.status_code == 504
    assert error_of(response)["code"] == "upstream_timeout"
    assert error_of(response)["message"] == "The upstream for group `eastus` did not answer in time."
    assert time.monotonic() - started < READ  # the total deadline, not the (never firing) read timeout


def test_an_error_body_arriving_in_pieces_is_relayed_whole(client: httpx.Client, sim: AzureSimulator) -> None:
    sim.behaviour.fail = "content_filter"
    whole = client.post("/chat/completions", json=CHAT)
    sim.behaviour.drip = 0.001  # the same 400, a byte at a time
    pieces = client.post("/chat/completions", json=CHAT)
    assert (pieces.status_code, pieces.json()) == (whole.status_code, whole.json())
    assert error_of(pieces)["code"] == "content_filter"


def test_a_dripping_error_body_ends_in_504_after_the_total_deadline(client: httpx.Client, sim: AzureSimulator) -> None:
    sim.behaviour.fail, sim.behaviour.drip = "content_filter", 0.2  # a 400 whose body comes a byte every 200 ms
    started = time.monotonic()
    response = client.post("/chat/completions", json=CHAT)
    assert response.status_code == 504
    assert error_of(response) == {
        "message": "The upstream for group `eastus` did not answer in time.",
        "type": "api_error",
        "param": None,
        "code": "upstream_timeout",
    }
    assert time.monotonic() - started < READ


def test_headers_later_than_the_total_deadline_are_a_504(client: httpx.Client, sim: AzureSimulator) -> None:
    sim.behaviour.delay = READ - 1
    response = client.post("/embeddings", json={"model": "text-embedding-3-small", "input": "x"})
    assert response.status_code == 504 and error_of(response)["code"] == "upstream_timeout"


def test_a_dripping_stream_gets_an_error_event_after_the_idle_deadline(
    client: httpx.Client, sim: AzureSimulator
) -> None:
    sim.behaviour.drip = 0.05  # an event (about 150 bytes) takes several seconds to complete
    with client.stream("POST", "/chat/completions", json={**CHAT, "stream": True}) as response:
        assert response.status_code == 200
        body = read_within(response)
    events = [e for e in body.split(b"\n\n") if e.strip()]
    last = event_object(events[-1])
    assert last["error"] == {
        "message": "The upstream for group `eastus` sent no complete event within gateway.timeouts.idle.",
        "type": "api_error",
        "param": None,
        "code": "upstream_timeout",
    }


def test_a_stream_of_steady_events_gets_an_error_event_after_the_stream_deadline(
    client: httpx.Client, sim: AzureSimulator
) -> None:
    # An event every 0.3 s keeps the idle deadline away; 20 of them take longer than the whole stream may.
    sim.behaviour.chunk_delay, sim.behaviour.chunks = 0.3, 20
    with client.stream("POST", "/chat/completions", json={**CHAT, "stream": True}) as response:
        assert response.status_code == 200
        body = read_within(response)
    events = [e for e in body.split(b"\n\n") if e.strip()]
    assert len(events) > 2 and b"[DONE]" not in body
    last = event_object(events[-1])
    assert last["error"] == {
        "message": "The upstream for group `eastus` did not finish its answer within gateway.timeouts.stream.",
        "type": "api_error",
        "param": None,
        "code": "upstream_timeout",
    }


def test_a_dripping_download_is_aborted_after_the_stream_deadline(
    client: httpx.Client, faulty: Gateway, sim: AzureSimulator
) -> None:
    sim.behaviour.drip = 0.1
    mark = len(faulty.logs())
    with client.stream("POST", "/audio/speech", json=SPEECH) as response:
        assert response.status_code == 200
        with pytest.raises(httpx.RemoteProtocolError):
            read_within(response)
    # Aborted by the deadline, and logged as such (not, say, by a failure in the relay).
    timed_out = '"error_code":"upstream_timeout"'
    assert wait_for(lambda: any(timed_out in line for line in log_lines_after(faulty, mark)))
    assert not any("Traceback" in line for line in log_lines_after(faulty, mark))


# The read timeout no later than any deadline of a JSON answer or a stream, and far before the stream's end: the
# transport then arms no per-read timer (GatewaySettings.reads_outlast_deadlines), and a byte stream's silence is
# bounded by its relay instead.
SILENCE_CONFIG = FAULTS_CONFIG.replace(
    f"    read: {READ}\n    total: {TOTAL}\n    idle: {IDLE}\n    stream: {STREAM}\n",
    "    read: 1\n    total: 1\n    idle: 1\n    stream: 30\n",
)
assert SILENCE_CONFIG != FAULTS_CONFIG


def test_a_silent_download_is_aborted_after_the_read_timeout_when_the_transport_bounds_no_read(
    sim: AzureSimulator, start_gateway: StartGateway
) -> None:
    gateway = start_gateway(SILENCE_CONFIG, {**SECRETS, "SIM_URL": sim.url})
    sim.behaviour.drip = 3.0  # a byte every 3 s: silent for longer than the read timeout each time
    mark = len(gateway.logs())
    with httpx.Client(base_url=f"{gateway.url}/v1", headers=AUTH, timeout=10) as client:
        started = time.monotonic()
        with client.stream("POST", "/audio/speech", json=SPEECH) as response:
            assert response.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                read_within(response, seconds=8)
        assert time.monotonic() - started < 8  # the read timeout's second, not the stream's thirty
    timed_out = '"error_code":"upstream_timeout"'
    assert wait_for(lambda: any(timed_out in line for line in log_lines_after(gateway, mark)))


# ----------------------------------------------------------------------------- 9: bounded memory


@pytest.mark.parametrize("mode", ["huge", "huge_chunked"])
def test_an_answer_beyond_max_response_bytes_is_a_502_without_reading_it(
    client: httpx.Client, sim: AzureSimulator, mode: str
) -> None:
    sim.behaviour.fail = mode  # 32 MiB of JSON
    response = client.post("/chat/completions", json=CHAT)
    assert response.status_code == 502
    error = error_of(response)
    assert error["code"] == "upstream_response_too_large"
    assert error["message"] == (
        f"The upstream for group `eastus` answered with more than the gateway's limit of {MAX_RESPONSE_BYTES} bytes "
        "(gateway.maxResponseBytes)."
    )
    assert wait_for(lambda: sim.requests[-1].disconnected) and not sim.requests[-1].completed


def test_a_huge_error_body_is_read_only_as_far_as_the_message_needs(client: httpx.Client, sim: AzureSimulator) -> None:
    sim.behaviour.fail = "huge_error"  # 32 MiB
    response = client.post("/chat/completions", json=CHAT)
    assert response.status_code == 500
    assert len(response.content) < 2048 and error_of(response)["type"] == "api_error"
    assert wait_for(lambda: sim.requests[-1].disconnected) and not sim.requests[-1].completed


# ----------------------------------------------------------------------------- 10: [DONE] ends the stream


def test_a_stream_ends_at_done_even_when_the_upstream_keeps_the_connection_open(
    client: httpx.Client, sim: AzureSimulator
) -> None:
    sim.behaviour.fail = "hang_after_done"
    with client.stream("POST", "/chat/completions", json={**CHAT, "stream": True}, timeout=STREAM + 1) as response:
        body = read_within(response)
    events = [e for e in body.split(b"\n\n") if e.strip()]
    assert events[-1] == b"data: [DONE]" and b'"error"' not in body
    assert wait_for(lambda: sim.requests[-1].disconnected)  # the upstream connection was let go


def test_a_stream_whose_upstream_ends_a_moment_after_done_keeps_its_connection(
    client: httpx.Client, sim: AzureSimulator
) -> None:
    sim.behaviour.fail = "late_end"  # the end of the chunked body comes 0.3 s after [DONE]
    with client.stream("POST", "/chat/completions", json={**CHAT, "stream": True}) as response:
        body = read_within(response)
    assert body.rstrip().endswith(b"data: [DONE]")
    record = sim.requests[-1]
    assert wait_for(lambda: record.completed or record.disconnected)
    assert record.completed and not record.disconnected  # read to its end, so the connection goes back to the pool


# ----------------------------------------------------------------------------- 11: encodings, statuses


@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
def test_a_compressed_json_answer_is_decoded(client: httpx.Client, sim: AzureSimulator, encoding: str) -> None:
    sim.behaviour.encoding = encoding
    response = client.post("/chat/completions", json=CHAT)
    assert response.status_code == 200 and "content-encoding" not in response.headers
    assert orjson.loads(response.content)["choices"][0]["message"]["content"] == "Echo: one two three"


def test_a_compressed_stream_is_decoded(client: httpx.Client, sim: AzureSimulator) -> None:
    sim.behaviour.encoding = "gzip"
    with client.stream("POST", "/chat/completions", json={**CHAT, "stream": True}) as response:
        assert "content-encoding" not in response.headers
        body = read_within(response)
    events = [e.removeprefix(b"data: ") for e in body.split(b"\n\n") if e.strip()]
    assert events[-1] == b"[DONE]"
    chunks = [orjson.loads(e) for e in events[:-1]]
    assert (
        "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]) == "Echo: one two three"
    )


def test_a_compressed_download_keeps_its_content_encoding(client: httpx.Client, sim: AzureSimulator) -> None:
    plain = client.post("/audio/speech", json=SPEECH).content
    sim.behaviour.encoding = "gzip"
    response = client.post("/audio/speech", json=SPEECH)
    assert response.headers["content-encoding"] == "gzip"
    assert response.content == plain  # httpx decoded it, as any client does


def test_a_compressed_error_body_is_decoded(client: httpx.Client, sim: AzureSimulator) -> None:
    sim.behaviour.fail, sim.behaviour.encoding = "500", "gzip"
    response = client.post("/chat/completions", json=CHAT)
    assert response.status_code == 500 and error_of(response)["code"] == "InternalServerError"


@pytest.mark.parametrize("stream", [False, True])
def test_an_encoding_the_gateway_cannot_decode_is_a_502(client: httpx.Client, sim: AzureSimulator, stream) -> None:
    sim.behaviour.encoding = "x-unknown"
    response = client.post("/chat/completions", json={**CHAT, "stream": stream})
    assert response.status_code == 502 and error_of(response)["code"] == "upstream_bad_response"
    assert error_of(response)["message"] == (
        "The upstream for group `eastus` answered in an encoding the gateway cannot decode (x-unknown)."
    )


def test_a_rewritten_html_error_is_labelled_json(client: httpx.Client, sim: AzureSimulator) -> None:
    sim.behaviour.fail = "html"
    response = client.post("/chat/completions", json=CHAT)
    assert response.status_code == 502 and response.headers["content-type"] == "application/json"
    assert error_of(response)["code"] == "502"


@pytest.mark.parametrize("mode", ["599", "302"])
def test_a_non_standard_status_or_a_redirect_is_a_502(client: httpx.Client, sim: AzureSimulator, mode: str) -> None:
    sim.behaviour.fail = mode
    response = client.post("/chat/completions", json=CHAT)
    assert response.status_code == 502 and error_of(response)["code"] == "upstream_bad_response"
    what = "redirect 302" if mode == "302" else "status 599"
    assert error_of(response)["message"] == (
        f"The upstream for group `eastus` answered with HTTP {what}, which the gateway does not relay."
    )


# ----------------------------------------------------------------------------- 8b: garbage JSON


@pytest.mark.parametrize("mode", ["invalid_json", "bad_list"])
def test_a_garbage_list_page_is_a_502(client: httpx.Client, sim: AzureSimulator, mode: str) -> None:
    sim.behaviour.fail = mode
    response = client.get("/files")
    assert response.status_code == 502 and error_of(response)["code"] == "upstream_bad_response"


@pytest.mark.parametrize(
    "path, body",
    [
        ("/chat/completions", {**CHAT, "model": "gpt-instruct"}),  # forcePrompt: the completion becomes a chat one
        ("/assistants", {"model": "gpt-4o"}),
    ],
)
def test_a_garbage_json_answer_is_a_502(
    client: httpx.Client, sim: AzureSimulator, path: str, body: dict[str, Any]
) -> None:
    sim.behaviour.fail = "invalid_json"
    response = client.post(path, json=body)
    assert response.status_code == 502 and error_of(response)["code"] == "upstream_bad_response"
