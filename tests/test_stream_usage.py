"""Streams' tokens are counted when budgets need them, and the caller sees exactly the stream it asked for."""

from __future__ import annotations

import httpx
import orjson
import pytest

from core.translation.usage import estimate_prompt_tokens
from tests.support.gateways import Gateway, StartGateway
from tests.support.standard import ALICE, SECRETS, STANDARD_CONFIG
from tests.support.streams import CHAT, access_line, data, stream_events

# alice's budget is far above anything a test spends: it only turns counting on.
COUNTING_CONFIG = STANDARD_CONFIG.replace(
    '      key: "${ALICE_KEY}"\n', '      key: "${ALICE_KEY}"\n      limits: {tokensPerMinute: 100000000}\n', 1
)


@pytest.fixture
def counting(sim, start_gateway: StartGateway) -> Gateway:
    assert COUNTING_CONFIG != STANDARD_CONFIG
    return start_gateway(COUNTING_CONFIG, {**SECRETS, "SIM_URL": sim.url})


def _comparable(events: list[tuple[float, bytes]]) -> list[object]:
    """The client's chunks less what differs between two answers (ids, timestamps)."""
    chunks: list[object] = []
    for _, event in events:
        chunk = data(event)
        if isinstance(chunk, dict):
            chunk = {k: v for k, v in chunk.items() if k not in ("id", "created")}
        chunks.append(chunk)
    return chunks


def test_a_caller_that_did_not_ask_for_usage_gets_the_stream_it_would_get_without_counting(
    sim, gateway, counting
) -> None:
    plain = _comparable(stream_events(gateway.url, CHAT))
    mark = len(counting.logs())
    counted = _comparable(stream_events(counting.url, CHAT))
    assert counted == plain
    assert all("usage" not in chunk for chunk in counted if isinstance(chunk, dict))
    assert sim.requests[-1].json["stream_options"] == {"include_usage": True}
    line = access_line(counting, mark)
    assert line["total_tokens"] > 0 and line["completion_tokens"] > 0 and "usage_estimated" not in line


def test_a_caller_that_asked_for_usage_gets_it(sim, counting) -> None:
    mark = len(counting.logs())
    events = stream_events(counting.url, {**CHAT, "stream_options": {"include_usage": True}})
    usage_chunk = data(events[-2][1])
    assert isinstance(usage_chunk, dict) and usage_chunk["choices"] == []
    assert access_line(counting, mark)["total_tokens"] == usage_chunk["usage"]["total_tokens"]


def test_without_budgets_nothing_extra_is_asked_upstream(sim, gateway) -> None:
    stream_events(gateway.url, CHAT)
    assert "stream_options" not in sim.requests[-1].json


def test_a_stream_the_upstream_drops_is_still_counted(sim, counting) -> None:
    mark = len(counting.logs())
    with httpx.stream(
        "POST",
        f"{counting.url}/v1/chat/completions",
        json=CHAT,
        timeout=10,
        headers={"Authorization": f"Bearer {ALICE}", "x-sim-fail": "abort"},
    ) as response:
        response.read()
    line = access_line(counting, mark)
    assert line["usage_estimated"] is True
    assert line["prompt_tokens"] > 0 and line["total_tokens"] >= line["prompt_tokens"]


def _dropped_stream(url: str, body: bytes) -> None:
    with httpx.stream(
        "POST",
        f"{url}/v1/chat/completions",
        content=body,
        timeout=10,
        headers={"Authorization": f"Bearer {ALICE}", "content-type": "application/json", "x-sim-fail": "abort"},
    ) as response:
        response.read()


def test_a_dropped_stream_counts_the_prompt_estimate_of_its_request(sim, counting) -> None:
    body = orjson.dumps(CHAT) + b"  "  # a length not a multiple of 4: the estimate rounds up
    assert len(body) % 4
    mark = len(counting.logs())
    _dropped_stream(counting.url, body)
    line = access_line(counting, mark)
    assert line["usage_estimated"] is True and line["prompt_tokens"] == estimate_prompt_tokens(body)
    assert line["prompt_tokens"] > len(body) // 4


def test_without_counting_a_dropped_stream_is_not_estimated(sim, gateway) -> None:
    mark = len(gateway.logs())
    _dropped_stream(gateway.url, orjson.dumps(CHAT))
    line = access_line(gateway, mark)
    assert "usage_estimated" not in line and "prompt_tokens" not in line


def test_a_completions_stream_is_counted_without_showing_the_caller_its_usage(sim, counting) -> None:
    mark = len(counting.logs())
    chunks = []
    with httpx.stream(
        "POST",
        f"{counting.url}/v1/completions",
        json={"model": "gpt-4o", "prompt": "one two three", "stream": True},
        timeout=10,
        headers={"Authorization": f"Bearer {ALICE}"},
    ) as response:
        for sse_line in response.iter_lines():
            if sse_line.startswith("data: {"):
                chunks.append(orjson.loads(sse_line[6:]))
    assert chunks and all("usage" not in chunk and chunk["choices"] for chunk in chunks)
    assert sim.requests[-1].json["stream_options"] == {"include_usage": True}
    line = access_line(counting, mark)
    assert line["total_tokens"] > 0 and "usage_estimated" not in line
