"""The local host (`python -m core serve`) faces clients directly, so it bounds them: a
connection must send its request head within --header-timeout, and beyond
--limit-concurrency connections uvicorn answers 503. Real sockets, a real gateway process."""

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack

import pytest

from tests.support.gateway_process import GatewayProcess
from tests.support.standard import SECRETS, STANDARD_CONFIG

HEADER_TIMEOUT = 2.0
PATIENCE = 15.0  # how long a test waits for the server to act; far above HEADER_TIMEOUT
REQUEST = b"GET /health HTTP/1.1\r\nHost: gateway\r\n\r\n"


@pytest.fixture(scope="module")
def limited(tmp_path_factory, sim) -> Iterator[GatewayProcess]:
    args = ("--header-timeout", str(HEADER_TIMEOUT), "--limit-concurrency", "4")
    process = GatewayProcess(STANDARD_CONFIG, {**SECRETS, "SIM_URL": sim.url}, tmp_path_factory.mktemp("limited"), args)
    yield process.start()
    process.stop()


def connect(gateway: GatewayProcess) -> socket.socket:
    host, port = gateway.url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=PATIENCE)


def read_response(conn: socket.socket) -> bytes:
    """One response to GET /health (its body is a small JSON object ending in `}`)."""
    data = b""
    while not data.endswith(b"}"):
        chunk = conn.recv(4096)
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


def closed_by_server(conn: socket.socket) -> bool:
    """True when the server closes the connection before PATIENCE runs out."""
    try:
        return conn.recv(4096) == b""
    except TimeoutError:
        return False


def test_a_connection_that_sends_half_a_request_head_is_closed(limited) -> None:
    with connect(limited) as conn:
        conn.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: gateway\r\nX-Slow: ")
        assert closed_by_server(conn)


def test_a_connection_that_sends_nothing_is_closed(limited) -> None:
    with connect(limited) as conn:
        assert closed_by_server(conn)


def test_a_complete_request_works_and_the_connection_stays_for_the_next(limited) -> None:
    with connect(limited) as conn:
        conn.sendall(REQUEST)
        assert read_response(conn).startswith(b"HTTP/1.1 200 ")
        conn.sendall(REQUEST)  # the same connection, kept alive
        assert read_response(conn).startswith(b"HTTP/1.1 200 ")


def test_a_kept_alive_connection_with_a_slow_second_head_is_closed(limited) -> None:
    with connect(limited) as conn:
        conn.sendall(REQUEST)
        assert read_response(conn).startswith(b"HTTP/1.1 200 ")
        conn.sendall(b"GET /health HTTP/1.1\r\n")
        assert closed_by_server(conn)


def test_beyond_the_connection_limit_the_answer_is_503(limited) -> None:
    with ExitStack() as held:
        for _ in range(3):  # with the connection below, the limit of 4 is reached
            held.enter_context(connect(limited))
        with connect(limited) as conn:
            conn.sendall(REQUEST)
            assert conn.recv(4096).startswith(b"HTTP/1.1 503 ")
    assert served_again(limited)  # once the server has seen the held connections go


def served_again(gateway: GatewayProcess) -> bool:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        with connect(gateway) as conn:
            conn.sendall(REQUEST)
            if conn.recv(4096).startswith(b"HTTP/1.1 200 "):
                return True
        time.sleep(0.1)
    return False


@pytest.mark.parametrize("option", ["--header-timeout=0", "--limit-concurrency=-1", "--header-timeout=soon"])
def test_bad_limits_are_refused(tmp_path, option) -> None:
    env = {**SECRETS, "SIM_URL": "http://127.0.0.1:9"}
    code, stderr = GatewayProcess(STANDARD_CONFIG, env, tmp_path, (option,)).run_to_exit()
    assert code == 2 and option.split("=")[0] in stderr
