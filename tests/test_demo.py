"""`make run` (`python -m core demo`): the simulator and the gateway start both or neither, and stop together,
whichever way they are stopped."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[1]
READY = "aoai-gateway listening on "


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def listening(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def held_port() -> Iterator[int]:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def test_a_busy_simulator_port_is_one_line_and_nothing_starts(held_port: int) -> None:
    port = free_port()
    result = subprocess.run(
        [sys.executable, "-m", "core", "demo", "--port", str(port), "--sim-port", str(held_port)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"aoai-gateway: port {held_port} (the simulator) is already in use: stop what holds it, or set SIM_PORT=..."
    )
    assert not listening(port)


def test_make_run_serves_on_the_ports_asked_and_sigterm_stops_both() -> None:
    port, sim_port = free_port(), free_port()
    make = subprocess.Popen(
        ["make", "--no-print-directory", "run", f"PORT={port}", f"SIM_PORT={sim_port}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert make.stdout is not None
        deadline = time.monotonic() + 120
        line = ""
        while not line.startswith(READY) and time.monotonic() < deadline:
            line = make.stdout.readline()
            assert line or make.poll() is None, "make run ended before the gateway was ready"
        assert line.strip() == f"{READY}http://127.0.0.1:{port}"
        answer = httpx.post(
            f"http://127.0.0.1:{port}/v1/chat/completions",
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}]},
            headers={"Authorization": "Bearer local-dev-key"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        assert listening(sim_port)
        make.send_signal(signal.SIGTERM)  # what an IDE's stop button sends make
        make.wait(timeout=20)
        deadline = time.monotonic() + 10
        while (listening(port) or listening(sim_port)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not listening(port) and not listening(sim_port)
    finally:
        if make.poll() is None:
            make.kill()
        if make.stdout is not None:
            make.stdout.close()
