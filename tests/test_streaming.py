"""Streaming, proven over a real socket with timestamps."""

import socket
import time

import httpx
import openai
import orjson
import pytest

from tests.support.standard import ALICE, SECRETS, STANDARD_CONFIG
from tests.support.streams import CHAT, access_line, data, event_object, stream_events


def test_chunks_are_forwarded_as_they_arrive(gateway) -> None:
    started = time.monotonic()
    events = stream_events(gateway.url, CHAT, **{"x-sim-chunk-delay-ms": "250"})
    first_content = next(t for t, e in events if b'"content":"' in e and b'"content":""' not in e)
    last = events[-1][0]
    # The simulator paces ~8 events 250 ms apart: a buffering proxy would deliver
    # them all at once at the end.
    assert last - first_content >= 1.0
    assert first_content - started < last - started - 1.0
    assert data(events[-1][1]) == "[DONE]"


def test_filter_only_chunks_are_dropped_by_default(gateway) -> None:
    events = stream_events(gateway.url, CHAT, **{"x-sim-annotations": "1"})
    chunks = [event_object(e) for _, e in events[:-1]]
    assert chunks and all(c["id"] and c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "Echo: one two three four five"


def test_include_usage_delivers_the_usage_chunk(gateway, sim) -> None:
    events = stream_events(gateway.url, {**CHAT, "stream_options": {"include_usage": True}})
    usage_chunk = event_object(events[-2][1])
    assert usage_chunk["choices"] == [] and usage_chunk["usage"]["total_tokens"] > 0
    assert sim.requests[0].json["stream_options"] == {"include_usage": True}


def test_force_prompt_streams_chat_chunks(gateway) -> None:
    events = stream_events(gateway.url, {**CHAT, "model": "gpt-instruct"})
    chunks = [event_object(e) for _, e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert "".join(c["choices"][0]["delta"]["content"] for c in chunks).startswith("Echo: ")


def test_upstream_breaking_mid_stream_ends_with_an_error_event(gateway) -> None:
    mark = len(gateway.logs())
    events = stream_events(gateway.url, CHAT, **{"x-sim-fail": "abort"})
    last = event_object(events[-1][1])
    # It was reached (it answered), then it went away: the error and the log say so.
    assert last["error"]["code"] == "upstream_closed_connection"
    assert last["error"]["message"].startswith("The upstream for group `eastus` closed the connection")
    line = access_line(gateway, mark)
    assert line["status"] == 200 and line["error_code"] == "upstream_closed_connection"


@pytest.mark.parametrize("chunk_delay_ms", ["300", "100"])  # the rest of the stream needs over 1 s, or under it
def test_client_disconnect_cancels_the_upstream_stream(gateway, sim, chunk_delay_ms) -> None:
    mark = len(gateway.logs())
    with httpx.stream(
        "POST",
        f"{gateway.url}/v1/chat/completions",
        json=CHAT,
        timeout=10,
        headers={"Authorization": f"Bearer {ALICE}", "x-sim-chunk-delay-ms": chunk_delay_ms},
    ) as response:
        next(response.iter_raw())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not (sim.requests and sim.requests[-1].disconnected):
        time.sleep(0.05)
    assert sim.requests[-1].disconnected and not sim.requests[-1].completed
    # Logged as abandoned (nginx's 499), not as the 200 whose headers had gone out.
    line = access_line(gateway, mark)
    assert line["stream"] is True and line["status"] == 499 and line["error_code"] == "client_closed_request"


def test_a_client_gone_before_its_answer_starts_is_logged_as_a_499_and_its_upstream_dropped(gateway, sim) -> None:
    mark = len(gateway.logs())
    body = orjson.dumps({**CHAT, "stream": True})
    host, port = gateway.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as client:
        client.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {ALICE}\r\nx-sim-chunk-delay-ms: 300\r\n".encode()
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )  # and gone at once: the gateway learns it while it still waits for the upstream
    line = access_line(gateway, mark)
    assert line["stream"] is True and line["status"] == 499 and line["error_code"] == "client_closed_request"
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and not sim.requests[-1].disconnected:
        time.sleep(0.05)
    assert sim.requests[-1].disconnected and not sim.requests[-1].completed


def test_raw_switch_keeps_azure_filter_chunks(sim, start_gateway) -> None:
    config = STANDARD_CONFIG.replace("  maxBodyBytes: 65536", "  maxBodyBytes: 65536\n  normalizeStreams: false")
    gateway = start_gateway(config, {**SECRETS, "SIM_URL": sim.url})
    events = stream_events(gateway.url, CHAT)
    first = event_object(events[0][1])
    assert first["id"] == "" and first["choices"] == [] and "prompt_filter_results" in first


@pytest.mark.parametrize("line_ending", ["cr", "crlf"])
def test_streams_framed_with_cr_or_crlf_are_read_event_by_event(gateway, line_ending) -> None:
    mark = len(gateway.logs())
    client = openai.OpenAI(base_url=f"{gateway.url}/v1", api_key=ALICE, max_retries=0)
    stream = client.chat.completions.create(
        model="gpt-4o", messages=CHAT["messages"], stream=True, stream_options={"include_usage": True},
        extra_headers={"x-sim-line-ending": line_ending, "x-sim-annotations": "1"},
    )  # fmt: skip
    chunks = list(stream)
    # Azure's filter-only events were found (and dropped), the usage event read, the stream ended at [DONE].
    assert chunks and all(chunk.id for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Echo: one two three four five"
    assert chunks[-1].usage is not None and access_line(gateway, mark)["total_tokens"] == chunks[-1].usage.total_tokens
