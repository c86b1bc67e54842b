"""Reading SSE answers and access-log lines in streaming tests."""

from __future__ import annotations

import time
from typing import Any

import httpx
import orjson

from tests.support.access_log import WAIT_SECONDS, access_lines
from tests.support.gateway_process import GatewayProcess
from tests.support.json_values import json_object
from tests.support.standard import ALICE

CHAT: dict[str, Any] = {
    "model": "gpt-4o",
    "messages": [{"role": "user", "content": "one two three four five"}],
    "stream": True,
}


def stream_events(url: str, body: dict[str, Any], **headers: str) -> list[tuple[float, bytes]]:
    """(arrival time, event bytes) for each SSE event, read from the socket as it arrives."""
    events: list[tuple[float, bytes]] = []
    buffer = b""
    with httpx.stream(
        "POST",
        f"{url}/v1/chat/completions",
        json=body,
        timeout=10,
        headers={"Authorization": f"Bearer {ALICE}", **headers},
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for chunk in response.iter_raw():
            now = time.monotonic()
            buffer += chunk
            while b"\n\n" in buffer:
                event, buffer = buffer.split(b"\n\n", 1)
                events.append((now, event))
    return events


def access_line(gateway: GatewayProcess, mark: int) -> dict[str, Any]:
    """The first access-log line the gateway wrote after `mark` (a length of its log), once it is written."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        lines = access_lines(gateway.logs()[mark:])
        if lines or time.monotonic() > deadline:
            assert lines, gateway.logs()[mark:]
            return lines[0]
        time.sleep(0.05)


def data(event: bytes) -> dict[str, Any] | str:
    payload = event.removeprefix(b"data: ")
    return payload.decode() if payload == b"[DONE]" else json_object(orjson.loads(payload))


def event_object(event: bytes) -> dict[str, Any]:
    """A data event's JSON object: any event but the closing [DONE]."""
    return json_object(orjson.loads(event.removeprefix(b"data: ")))
