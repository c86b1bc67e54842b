"""bench/naive.py forwards through either upstream client, and bench/transports.py's table compares them."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from azure_sim.server import AzureSimulator
from bench import latency, load, procs, transports
from bench.client import CHAT_BODY, STREAM_BODY
from bench.naive import CLIENTS

UPSTREAM_KEY = "bench-upstream-key"  # the key bench/naive.py sends, as the benchmark's simulator expects


@pytest.fixture(scope="module")
def sim() -> Iterator[AzureSimulator]:
    with AzureSimulator(api_keys={UPSTREAM_KEY}, deployments={"gpt-4o"}) as simulator:
        yield simulator


@pytest.fixture(params=CLIENTS)
def naive(request: pytest.FixtureRequest, sim: AzureSimulator, tmp_path: Path) -> Iterator[str]:
    argv = [*procs.naive_argv(), "--client", request.param]
    service = procs.spawn("naive", argv, procs.child_env(sim.url), procs.NAIVE_READY, tmp_path / "naive.log", 30)
    try:
        yield service.url
    finally:
        procs.stop(service)


def test_a_chat_completion_goes_to_the_deployment_with_the_upstream_key(naive: str, sim: AzureSimulator) -> None:
    sim.reset()
    answer = httpx.post(f"{naive}/v1/chat/completions", content=CHAT_BODY, timeout=10)
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("application/json")
    assert answer.json()["choices"][0]["message"]["content"]
    received = sim.requests[-1]
    assert (received.path, received.headers["api-key"]) == ("/openai/deployments/gpt-4o/chat/completions", UPSTREAM_KEY)
    assert received.body == CHAT_BODY  # forwarded as it came


def test_a_stream_is_relayed_to_its_end(naive: str) -> None:
    with httpx.stream("POST", f"{naive}/v1/chat/completions", content=STREAM_BODY, timeout=10) as answer:
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/event-stream")
        body = b"".join(answer.iter_raw())
    events = [event for event in body.split(b"\n\n") if event]
    assert events[-1] == b"data: [DONE]" and len(events) > 2
    assert all(orjson.loads(event.removeprefix(b"data: ")) for event in events[:-1])


def test_the_floor_loads_no_httpx() -> None:
    """The aiohttp proxy is the gateway's benchmark floor: the other client's library is imported only when used."""
    code = "import sys, bench.naive; print('httpx' in sys.modules)"
    shown = subprocess.run([sys.executable, "-c", code], cwd=procs.ROOT, capture_output=True, text=True, check=True)
    assert shown.stdout.strip() == "False"


def test_the_table_puts_httpx_over_aiohttp() -> None:
    phase = latency.Phase(
        {"direct": [0.0002] * 9, "aiohttp": [0.0006] * 9, "httpx": [0.0014] * 9}, {"aiohttp": 0.0, "httpx": 0.0}
    )
    throughput = load.Throughput(
        {"aiohttp": load.LoadResult(4000, 0, 10.0), "httpx": load.LoadResult(505, 5, 10.0)},
        {("aiohttp", "aiohttp"): 0.8, ("httpx", "httpx"): 0.9, ("aiohttp", "httpx"): 0.01},
    )
    lines = transports.table(phase, throughput).splitlines()
    assert lines[2] == "| aiohttp | +0.40 / +0.40 ms | 400 | 0 | 0.200 ms |"
    assert lines[3] == "| httpx | +1.20 / +1.20 ms | 50 | 5 | 1.800 ms |"  # CPU over the 500 answered, not 505
    assert lines[-1] == "httpx / aiohttp: added p50 3.00x, req/s 0.12x, CPU per request 9.00x"
