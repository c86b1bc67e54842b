"""The gateway's access lines, read once they are written: a call's line is written after its answer has
reached the client, so a test that reads it at once races the gateway."""

from __future__ import annotations

import time
from typing import Any, Protocol

import orjson

from tests.support.json_values import json_object

WAIT_SECONDS = 5.0


class Logged(Protocol):
    def logs(self) -> str: ...


def access_lines(logs: str) -> list[dict[str, Any]]:
    return [json_object(orjson.loads(line)) for line in logs.splitlines() if line.startswith('{"request_id"')]


def access_line(gateway: Logged, request_id: str) -> dict[str, Any]:
    """The one access line of the request `request_id` (its x-request-id), once the gateway has written it."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        lines = [line for line in access_lines(gateway.logs()) if line["request_id"] == request_id]
        if lines or time.monotonic() > deadline:
            assert len(lines) == 1, gateway.logs()[-2000:]
            return lines[0]
        time.sleep(0.05)
