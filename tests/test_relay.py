"""Relaying upstream answers (core/relay.py) over real sockets: the access line a streamed answer
writes when it ends, a stream whose last event is unfinished, and downloads relayed byte for byte."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest
from aiohttp import web

from core.models.prices import DEFAULT_PRICES, Price
from core.upstream.transport import ERROR_BODY_BYTES
from tests.support.access_log import access_line
from tests.support.gateways import Gateway, StartGateway
from tests.support.standard import ALICE, SECRETS, STANDARD_CONFIG

AUTH = {"Authorization": f"Bearer {ALICE}"}
GPT_4O = Price.of(*DEFAULT_PRICES["gpt-4o"])
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "one two three"}]}
DOWNLOADS_CONFIG = (
    STANDARD_CONFIG.replace("  azureOpenAI:\n", "  azureOpenAI:\n    assistants: true\n", 1)
    .replace("      - group: eastus\n", "      - group: eastus\n        assistants: true\n", 1)
    .replace(
        "          gpt-4o-mini:\n", "          tts:\n            deploymentName: tts-dep\n          gpt-4o-mini:\n", 1
    )
)
assert DOWNLOADS_CONFIG.count("assistants: true") == 2 and "tts-dep" in DOWNLOADS_CONFIG


def test_a_streamed_answer_writes_one_access_line_with_its_usage_and_timing(gateway) -> None:
    body = {**CHAT, "stream": True, "stream_options": {"include_usage": True}}
    headers = {**AUTH, "x-sim-delay-ms": "300"}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, headers=headers, timeout=10) as response:
        events = [line for line in response.iter_lines() if line.startswith("data: {")]
        request_id = response.headers["x-request-id"]
    usage = orjson.loads(events[-1].removeprefix("data: "))["usage"]
    line = access_line(gateway, request_id)
    assert line == {
        "request_id": request_id,
        "time": line["time"],
        "method": "POST",
        "path": "/v1/chat/completions",
        "caller": "alice",
        "operation": "chat/completions",
        "model": "gpt-4o",
        "response_model": "gpt-4o-2024-08-06",
        "group": "eastus",
        "stream": True,
        "status": 200,
        "upstream_ms": line["upstream_ms"],
        "prompt_tokens": usage["prompt_tokens"],
        "completion_tokens": usage["completion_tokens"],
        "total_tokens": usage["total_tokens"],
        "cached_tokens": usage["prompt_tokens_details"]["cached_tokens"],
        "reasoning_tokens": usage["completion_tokens_details"]["reasoning_tokens"],
        # At the built-in table's price for gpt-4o: the standard configuration sets none.
        "cost": GPT_4O.cost(usage["prompt_tokens"], 0, usage["completion_tokens"]) / 1_000_000,
    }
    # When the call ended, in UTC, to the millisecond.
    ended = datetime.fromisoformat(line["time"])
    assert ended.utcoffset() == timedelta(0) and abs(datetime.now(UTC) - ended) < timedelta(minutes=1)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", line["time"])
    # Time to the upstream's headers: the simulator waited 300 ms before sending them.
    assert 300 <= line["upstream_ms"] < 10_000


def test_a_non_streamed_answer_times_the_whole_upstream_answer(gateway) -> None:
    response = httpx.post(
        f"{gateway.url}/v1/chat/completions", json=CHAT, headers={**AUTH, "x-sim-delay-ms": "250"}, timeout=10
    )
    assert response.status_code == 200
    line = access_line(gateway, response.headers["x-request-id"])
    assert line["stream"] is False and 250 <= line["upstream_ms"] < 10_000
    assert isinstance(line["upstream_ms"], float) and round(line["upstream_ms"], 2) == line["upstream_ms"]  # ms.xx
    assert line["total_tokens"] == response.json()["usage"]["total_tokens"]
    error = httpx.post(
        f"{gateway.url}/v1/chat/completions", json=CHAT, headers={**AUTH, "x-sim-delay-ms": "250", "x-sim-fail": "429"}
    )
    line = access_line(gateway, error.headers["x-request-id"])
    assert error.status_code == 429 and line["status"] == 429 and 250 <= line["upstream_ms"] < 10_000


UNFINISHED = (
    b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hel"}}]}\n\n'
    b'data: {"id":"c1","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"lo"}}]}'
)


@contextlib.contextmanager
def serving(answer: Callable[[web.Request], Awaitable[web.StreamResponse]]) -> Iterator[str]:
    """An upstream on 127.0.0.1 that answers every request with `answer`; its base URL."""
    loop = asyncio.new_event_loop()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    loop.run_until_complete(runner.setup())
    site = web.TCPSite(runner, "127.0.0.1", 0)
    loop.run_until_complete(site.start())
    port = runner.addresses[0][1]
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


@pytest.fixture
def unfinishing_upstream() -> Iterator[str]:
    """An upstream whose stream ends in the middle of its last event (no blank line, no [DONE])."""

    async def answer(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(UNFINISHED)
        await response.write_eof()
        return response

    with serving(answer) as url:
        yield url


def test_a_stream_ending_on_an_unfinished_event_keeps_its_last_piece(start_gateway, unfinishing_upstream) -> None:
    gateway = start_gateway(STANDARD_CONFIG, {**SECRETS, "SIM_URL": unfinishing_upstream})
    body = {**CHAT, "stream": True}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=body, headers=AUTH, timeout=10) as response:
        assert response.status_code == 200
        assert response.read() == UNFINISHED
        request_id = response.headers["x-request-id"]
    line = access_line(gateway, request_id)
    assert line["status"] == 200 and line["stream"] is True and "error_code" not in line


@pytest.fixture
def untyped_upstream(request: pytest.FixtureRequest) -> Iterator[str]:
    """An upstream that answers (200, or the status given as the fixture's param) with a body and no Content-Type
    header (aiohttp would add one)."""
    status = getattr(request, "param", "200 OK")

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello".encode())
        await writer.drain()
        writer.close()

    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(asyncio.start_server(answer, "127.0.0.1", 0))
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        loop.call_soon_threadsafe(server.close)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def test_an_answer_without_a_content_type_is_relayed_as_bytes(start_gateway, untyped_upstream) -> None:
    gateway = start_gateway(STANDARD_CONFIG, {**SECRETS, "SIM_URL": untyped_upstream})
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, headers=AUTH, timeout=10)
    assert (response.status_code, response.content) == (200, b"hello")
    assert "content-type" not in response.headers


@pytest.mark.parametrize("untyped_upstream", ["429 Too Many Requests"], indirect=True)
def test_an_error_without_a_content_type_is_an_openai_error(start_gateway, untyped_upstream) -> None:
    gateway = start_gateway(STANDARD_CONFIG, {**SECRETS, "SIM_URL": untyped_upstream})
    response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, headers=AUTH, timeout=10)
    assert (response.status_code, response.headers["content-type"]) == (429, "application/json")
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


UPSTREAM_HEADERS = {
    "Cache-Control": "no-store",
    "Retry-After": "3",
    "retry-after-ms": "3000",
    "apim-request-id": "apim-1",
    "openai-processing-ms": "12.5",
    "x-ratelimit-remaining-requests": "5",
    "X-RateLimit-Limit-Tokens": "1000",
    "x-ms-region": "Sweden Central",
    "Set-Cookie": "affinity=1",
    "x-request-id": "upstream-1",
}
RELAYED = {  # as the client sees them
    "cache-control": "no-store",
    "retry-after": "3",
    "retry-after-ms": "3000",
    "apim-request-id": "apim-1",
    "openai-processing-ms": "12.5",
}
COMPLETION = {
    "id": "c1",
    "object": "chat.completion",
    "model": "gpt-4o",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


PADDED_ERROR = {"message": "Padded to the size asked.", "type": "invalid_request_error", "code": "padded"}
DRIPPED: list[str] = []  # how each dripping-error answer ended: "whole" or "dropped"


@pytest.fixture(scope="module")
def scripted_gateway(start_gateway_session: StartGateway) -> Iterator[Gateway]:
    """A gateway (maxResponseBytes 65536) in front of an upstream that answers as the request's `x-sim-answer` says:
    `json` or `sse` (with UPSTREAM_HEADERS), `json-202` (the JSON answer as a 202), `status-NNN` (an empty answer
    with that status), `list` (a 200 JSON list), `endless-event` (a stream of one 200 KB event that never ends),
    `bytes-N` / `bytes-N-chunked` (a JSON answer of N bytes), `event-of-N` (a stream of one N-byte event),
    `error-bytes-N` (a 400 error of N bytes, the last one sent apart), `dripping-error` (a 2 MiB error body in small
    pieces), `declares-too-much` (a Content-Length of 65537, then a pause), `gzip-in-capitals` (gzip, labelled `GZIP`)
    `gzip-that-is-not` (labelled gzip) or `redirect` (a 302 to another path)."""

    async def answer(request: web.Request) -> web.StreamResponse:
        await request.read()
        kind = request.headers["x-sim-answer"]
        if kind.startswith("status-"):
            return web.Response(status=int(kind.removeprefix("status-")))
        if kind == "list":
            return web.Response(body=b"[1, 2]", content_type="application/json")
        if kind == "endless-event":  # one event that never ends, 10 KB at a time
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(b'data: {"filler": "')
            for _ in range(20):
                await response.write(b"x" * 10_000)
            await response.write_eof()
            return response
        if kind.startswith("bytes-"):  # a JSON answer of exactly that many bytes, sent with its length or chunked
            size, chunked = int(kind.split("-")[1]), kind.endswith("-chunked")
            body = orjson.dumps({**COMPLETION, "pad": ""})
            body = body.replace(b'"pad":""', b'"pad":"' + b"x" * (size - len(body)) + b'"')
            if not chunked:
                return web.Response(body=body, content_type="application/json")
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            await response.write(body[:1000])
            await asyncio.sleep(0.05)  # read in two pieces
            await response.write(body[1000:])
            await response.write_eof()
            return response
        if kind == "declares-too-much":  # a Content-Length over the limit, then 10 bytes and a pause
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            response.content_length = 65537
            await response.prepare(request)
            await response.write(b'{"id": "c1')
            await asyncio.sleep(3)
            return response
        if kind.startswith("event-of-"):  # one event of exactly N bytes before its blank line, which comes apart
            size = int(kind.removeprefix("event-of-"))
            event = b'data: {"pad": "' + b"x" * (size - len(b'data: {"pad": ""}')) + b'"}'
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            await response.write(event)
            await asyncio.sleep(0.05)
            await response.write(b"\n\ndata: [DONE]\n\n")
            await response.write_eof()
            return response
        if kind.startswith("error-bytes-"):  # a 400 error body of exactly that many bytes, its last one apart
            size = int(kind.removeprefix("error-bytes-"))
            body = orjson.dumps({"error": {**PADDED_ERROR, "pad": ""}})
            body = body.replace(b'"pad":""', b'"pad":"' + b"x" * (size - len(body)) + b'"')
            response = web.StreamResponse(status=400, headers={"Content-Type": "application/json"})
            await response.prepare(request)
            await response.write(body[:-1])
            await asyncio.sleep(0.05)
            await response.write(body[-1:])
            await response.write_eof()
            return response
        if kind == "dripping-error":  # a 500 error body of 2 MiB in 4 KiB pieces, as a slow network hands it over
            response = web.StreamResponse(status=500, headers={"Content-Type": "application/json"})
            await response.prepare(request)
            try:
                await response.write(b'{"error": {"message": "Dripping.", "pad": "')
                for _ in range(512):
                    await response.write(b"x" * 4096)
                    await asyncio.sleep(0.001)
                await response.write(b'"}}')
                await response.write_eof()
                DRIPPED.append("whole")
            except ConnectionError:
                DRIPPED.append("dropped")
            return response
        if kind == "redirect":  # to a path of this same upstream, which would answer there
            return web.Response(status=302, headers={"Location": "/elsewhere"})
        if kind == "gzip-that-is-not":  # labelled gzip, but not gzip
            return web.Response(
                body=b"plain bytes", headers={"Content-Encoding": "gzip"}, content_type="application/json"
            )
        if kind == "gzip-in-capitals":
            headers = {"Content-Encoding": "GZIP"}
            return web.Response(
                body=gzip.compress(orjson.dumps(COMPLETION)), headers=headers, content_type="application/json"
            )
        if kind == "json-202":
            return web.Response(body=orjson.dumps(COMPLETION), status=202, content_type="application/json")
        if kind == "json":
            return web.Response(
                body=orjson.dumps(COMPLETION), headers=UPSTREAM_HEADERS, content_type="application/json"
            )
        response = web.StreamResponse(headers={**UPSTREAM_HEADERS, "Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(UNFINISHED + b"\n\ndata: [DONE]\n\n")
        await response.write_eof()
        return response

    config = STANDARD_CONFIG.replace("  maxBodyBytes: 65536\n", "  maxBodyBytes: 65536\n  maxResponseBytes: 65536\n")
    with serving(answer) as url:
        gateway = start_gateway_session(config, {**SECRETS, "SIM_URL": url})
        yield gateway
        gateway.stop()  # before its upstream goes


def ask(gateway, answer: str, **body: object) -> httpx.Response:
    return httpx.post(
        f"{gateway.url}/v1/chat/completions",
        json={**CHAT, **body},
        headers={**AUTH, "x-sim-answer": answer},
        timeout=10,
    )


def test_the_upstream_headers_a_client_can_use_are_relayed_and_no_others(scripted_gateway) -> None:
    for kind, body in (("json", {}), ("sse", {"stream": True})):
        response = ask(scripted_gateway, kind, **body)
        assert response.status_code == 200, response.text
        assert {name: response.headers.get(name) for name in RELAYED} == RELAYED, kind
        own = {"x-request-id", "date", "content-type", "content-length", "transfer-encoding"}
        # No set-cookie, x-ms-region..., nor Azure's x-ratelimit-*, which are the deployment's, not this key's.
        assert set(response.headers) - own == set(RELAYED), kind
        assert "server" not in response.headers  # neither the upstream's nor the local host's own
        # The request id is the gateway's own, the one its access line carries.
        request_id = response.headers["x-request-id"]
        assert request_id != "upstream-1" and access_line(scripted_gateway, request_id)["status"] == 200


@pytest.mark.parametrize(
    "status, what", [(300, "redirect 300"), (399, "redirect 399"), (299, "status 299"), (599, "status 599")]
)
def test_a_status_no_client_can_act_on_is_a_502_that_names_it(scripted_gateway, status, what) -> None:
    response = ask(scripted_gateway, f"status-{status}")
    assert response.status_code == 502
    assert response.json()["error"] == {
        "message": f"The upstream for group `eastus` answered with HTTP {what}, which the gateway does not relay.",
        "type": "api_error",
        "param": None,
        "code": "upstream_bad_response",
    }


def test_a_json_answer_keeps_its_success_status(scripted_gateway) -> None:
    response = ask(scripted_gateway, "json-202")  # only a 201 (Azure's file create) becomes OpenAI's 200
    assert response.status_code == 202 and response.json()["choices"][0]["message"]["content"] == "Hello"


def test_a_json_answer_that_is_not_an_object_is_a_502_that_says_so(scripted_gateway) -> None:
    response = ask(scripted_gateway, "list", model="gpt-instruct")  # forcePrompt: the gateway reads the answer
    assert response.status_code == 502
    assert response.json()["error"] == {
        "message": "The upstream for group `legacy-prompt` answered with a body that is not a JSON object.",
        "type": "api_error",
        "param": None,
        "code": "upstream_bad_response",
    }


@pytest.fixture(scope="module")
def downloads_gateway(sim, start_gateway_session):
    return start_gateway_session(DOWNLOADS_CONFIG, {**SECRETS, "SIM_URL": sim.url})


def test_a_file_download_keeps_its_length(downloads_gateway) -> None:
    content = b'{"custom_id": "1"}\n' * 500
    uploaded = httpx.post(
        f"{downloads_gateway.url}/v1/files",
        headers=AUTH,
        files={"file": ("lines.jsonl", content)},
        data={"purpose": "batch"},
        timeout=10,
    )
    assert uploaded.status_code == 200, uploaded.text
    url = f"{downloads_gateway.url}/v1/files/{uploaded.json()['id']}/content"
    with httpx.stream("GET", url, headers=AUTH, timeout=10) as download:
        assert download.status_code == 200
        assert download.headers["content-length"] == str(len(content))
        assert download.read() == content


def test_file_content_an_upstream_labels_json_is_relayed_as_it_came(start_gateway) -> None:
    content = b'{"model": "gpt-4o-dep",  "note": "spaced as written"}\n'

    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=content, content_type="application/json")

    with serving(answer) as url:
        gateway = start_gateway(DOWNLOADS_CONFIG, {**SECRETS, "SIM_URL": url})
        response = httpx.get(f"{gateway.url}/v1/files/file-abc123/content", headers=AUTH, timeout=10)
        gateway.stop()  # before its upstream goes
    assert response.status_code == 200, response.text
    assert response.content == content  # a file's bytes, not an answer to parse and rewrite


def test_a_byte_answer_read_to_its_end_leaves_its_connection_to_the_next_call(sim, start_gateway) -> None:
    gateway = start_gateway(DOWNLOADS_CONFIG, {**SECRETS, "SIM_URL": sim.url})  # a pool of its own
    speech = {"model": "tts", "voice": "alloy", "input": "Hello"}
    for _ in range(2):
        response = httpx.post(f"{gateway.url}/v1/audio/speech", json=speech, headers=AUTH, timeout=10)
        assert response.status_code == 200 and len(response.content) > 0
    first, second = sim.requests[-2:]
    assert first.peer and second.peer == first.peer  # one kept-alive upstream connection, not one each


def test_speech_keeps_the_upstreams_encoding(downloads_gateway) -> None:
    speech = {"model": "tts", "voice": "alloy", "input": "Hello"}
    with httpx.stream(
        "POST",
        f"{downloads_gateway.url}/v1/audio/speech",
        json=speech,
        headers={**AUTH, "x-sim-encoding": "gzip"},
        timeout=10,
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-encoding"] == "gzip"
        raw = b"".join(response.iter_raw())
    assert raw[:2] == b"\x1f\x8b"  # relayed as it came, still compressed


def test_a_stream_event_larger_than_max_response_bytes_ends_the_stream_with_an_error_event(scripted_gateway) -> None:
    response = ask(scripted_gateway, "endless-event", stream=True)
    assert response.status_code == 200
    assert len(response.content) < 1000  # nothing of the event: it never completed
    assert orjson.loads(response.content.removeprefix(b"data: "))["error"] == {
        "message": "The upstream for group `eastus` sent a stream event larger than 65536 bytes.",
        "type": "api_error",
        "param": None,
        "code": "upstream_bad_response",
    }
    line = access_line(scripted_gateway, response.headers["x-request-id"])
    assert (line["status"], line["error_code"]) == (200, "upstream_bad_response")


def test_a_stream_event_of_max_response_bytes_is_relayed_and_one_byte_more_is_an_error(scripted_gateway) -> None:
    whole = ask(scripted_gateway, "event-of-65536", stream=True)
    assert whole.status_code == 200 and whole.content.endswith(b"data: [DONE]\n\n")
    assert len(orjson.loads(whole.content.split(b"\n\n")[0].removeprefix(b"data: "))["pad"]) > 65000
    over = ask(scripted_gateway, "event-of-65537", stream=True)
    assert orjson.loads(over.content.removeprefix(b"data: "))["error"]["code"] == "upstream_bad_response"


@pytest.mark.parametrize("framing", ["", "-chunked"], ids=["length", "chunked"])
def test_an_answer_of_max_response_bytes_is_relayed_and_one_byte_more_is_a_502(scripted_gateway, framing) -> None:
    at_the_limit = ask(scripted_gateway, f"bytes-65536{framing}")
    assert at_the_limit.status_code == 200 and len(at_the_limit.content) == 65536
    over = ask(scripted_gateway, f"bytes-65537{framing}")
    assert over.status_code == 502 and over.json()["error"]["code"] == "upstream_response_too_large"


def test_a_content_encoding_is_read_whatever_its_case(scripted_gateway) -> None:
    response = ask(scripted_gateway, "gzip-in-capitals")
    assert response.status_code == 200 and response.json() == COMPLETION


def test_an_answer_declared_larger_than_max_response_bytes_is_refused_before_reading_it(scripted_gateway) -> None:
    response = ask(scripted_gateway, "declares-too-much")  # not waiting for the body's 65537 bytes
    assert response.status_code == 502 and response.json()["error"]["code"] == "upstream_response_too_large"


def test_an_error_body_of_the_read_limit_keeps_its_message_and_one_byte_more_is_cut(scripted_gateway) -> None:
    whole = ask(scripted_gateway, f"error-bytes-{ERROR_BODY_BYTES}")
    assert (whole.status_code, whole.json()["error"]["message"]) == (400, PADDED_ERROR["message"])
    cut = ask(scripted_gateway, f"error-bytes-{ERROR_BODY_BYTES + 1}")
    assert cut.status_code == 400 and cut.json()["error"]["message"] != PADDED_ERROR["message"], cut.text


def test_an_error_body_arriving_in_small_pieces_is_read_only_to_the_limit(scripted_gateway) -> None:
    DRIPPED.clear()
    response = ask(scripted_gateway, "dripping-error")
    assert response.status_code == 500 and len(response.content) < 2048
    deadline = time.monotonic() + 10
    while not DRIPPED and time.monotonic() < deadline:
        time.sleep(0.05)
    assert DRIPPED == ["dropped"]  # the gateway let go at the limit instead of reading 2 MiB it would throw away


def test_a_body_that_does_not_decode_is_a_502_that_says_so(scripted_gateway) -> None:
    response = ask(scripted_gateway, "gzip-that-is-not")
    assert response.status_code == 502
    assert response.json()["error"]["message"] == "The upstream for group `eastus` sent a body that does not decode."


def test_a_redirect_is_not_followed(scripted_gateway) -> None:
    response = ask(scripted_gateway, "redirect")
    assert response.status_code == 502 and "302" in response.json()["error"]["message"], response.text


def test_each_spelling_of_a_header_name_is_judged_once_and_the_spellings_kept_are_bounded() -> None:
    from core import relay

    upstream = [(b"X-RateLimit-Limit-Tokens", b"1"), (b"x-ratelimit-limit-tokens", b"2"), (b"Set-Cookie", b"a=1")]
    limits = [(b"x-ratelimit-limit-tokens", b"1"), (b"x-ratelimit-limit-tokens", b"2")]
    for _ in range(2):  # learnt, then known: each way of relaying judges a spelling by its own rule
        assert relay.relayed_headers(upstream, rate_limits=True) == limits
        assert relay.relayed_headers(upstream) == []
        assert relay.relayed_headers(upstream, byte_for_byte=True, rate_limits=True) == limits
        assert relay.relayed_headers(upstream, byte_for_byte=True) == []
    assert relay._SPELLINGS[False][True][b"Set-Cookie"] is None
    assert relay.relayed_headers([(b"Content-Length", b"3")]) == []
    assert relay.relayed_headers([(b"Content-Length", b"3")], byte_for_byte=True) == [(b"content-length", b"3")]
    many = [(b"X-Ms-%d" % n, b"v") for n in range(relay._MAX_NAMES * 2)] + [(b"Apim-Request-Id", b"id")]
    assert relay.relayed_headers(many) == [(b"apim-request-id", b"id")]  # judged right, whatever was forgotten
    assert len(relay._SPELLINGS[False][False]) <= relay._MAX_NAMES
