"""The upstream transport (core/upstream/transport.py): one pool without a cap on connections, direct or through a
SOCKS proxy, closed with the gateway; its connect and read timeouts; what it sends besides the caller's headers (its
User-Agent, no cookie); an idempotent request sent again on a connection closed unanswered; and the bound on what one
step of decoding inflates."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import httpx
import pytest
from aiohttp import web

from core.upstream.transport import Transport
from tests.support.forward_proxies import Socks5Proxy
from tests.support.never_accepting import never_accepting
from tests.support.standard import ALICE, SECRETS, STANDARD_CONFIG

AUTH = {"Authorization": f"Bearer {ALICE}"}
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
CALLS = 101  # one more than aiohttp's default cap of 100 connections
DELAY_MS = 5000  # each call waits this long upstream: far longer than it takes all of them to get there
PATIENT_CONFIG = STANDARD_CONFIG.replace("    read: 2\n", "    read: 10\n")
assert PATIENT_CONFIG != STANDARD_CONFIG


@contextlib.contextmanager
def egress(kind: str) -> Iterator[dict[str, str]]:
    if kind == "direct":
        yield {}
        return
    with Socks5Proxy("gw", "s0cks") as proxy:
        yield {"AZURE_OPENAI_SOCKS_PROXY": proxy.url}


async def calls_upstream_before_any_answer(url: str, sim) -> int:
    """Send CALLS slow calls at once; over how many connections the upstream had received them before the first
    one was answered (a retried call is received twice, but over one connection at a time)."""
    headers = {**AUTH, "x-sim-delay-ms": str(DELAY_MS)}
    limits = httpx.Limits(max_connections=CALLS, max_keepalive_connections=CALLS)
    async with httpx.AsyncClient(limits=limits, timeout=DELAY_MS / 1000 + 10) as client:
        calls = [
            asyncio.create_task(client.post(f"{url}/v1/chat/completions", json=CHAT, headers=headers))
            for _ in range(CALLS)
        ]
        arrived = 0
        while not any(call.done() for call in calls) and arrived < CALLS:
            await asyncio.sleep(0.05)
            arrived = len({request.peer for request in sim.requests})
        answers = await asyncio.gather(*calls)
    assert all(answer.status_code == 200 for answer in answers), [a.text for a in answers if a.status_code != 200]
    return arrived


@pytest.mark.parametrize("kind", ["direct", "socks"])
def test_concurrent_calls_all_reach_the_upstream_at_once(sim, start_gateway, kind) -> None:
    with egress(kind) as proxy_env:
        gateway = start_gateway(PATIENT_CONFIG, {**SECRETS, "SIM_URL": sim.url, **proxy_env})
        # A capped pool would hold the last calls back until the first ones had their answers.
        assert asyncio.run(calls_upstream_before_any_answer(gateway.url, sim)) == CALLS


def test_a_gateway_stops_with_its_upstream_connections_closed(sim, start_gateway) -> None:
    used = start_gateway(STANDARD_CONFIG, {**SECRETS, "SIM_URL": sim.url})
    assert httpx.post(f"{used.url}/v1/chat/completions", json=CHAT, headers=AUTH).status_code == 200
    unused = start_gateway(STANDARD_CONFIG, {**SECRETS, "SIM_URL": sim.url})  # never opened a connection
    for gateway in (used, unused):
        gateway.stop()
        logs = gateway.logs()
        assert "Unclosed" not in logs and "Traceback" not in logs and "shutdown failed" not in logs, logs[-2000:]


def test_an_upstream_that_never_accepts_the_connection_is_a_504_after_the_connect_timeout(start_gateway) -> None:
    config = STANDARD_CONFIG.replace("    connect: 2\n    read: 2\n", "    connect: 0.5\n    read: 30\n")
    assert config != STANDARD_CONFIG
    with never_accepting() as url:
        gateway = start_gateway(config, {**SECRETS, "SIM_URL": url})
        started = time.monotonic()
        response = httpx.post(f"{gateway.url}/v1/chat/completions", json=CHAT, headers=AUTH, timeout=10)
        waited = time.monotonic() - started
    assert response.status_code == 504, response.text
    assert response.json()["error"]["code"] == "upstream_timeout"
    assert waited < 10  # the connect timeout's bound, not the read timeout's 30 s


def test_a_compressed_stream_is_decoded_a_bounded_piece_at_a_time() -> None:
    """A small compressed chunk may expand enormously (a zip bomb): each step hands over at most 1 MiB of it."""
    inflated = 8 * 1024 * 1024
    bomb = gzip.compress(b"0" * inflated)  # about 8 KiB

    async def answer(request: web.Request) -> web.Response:
        return web.Response(body=bomb, headers={"Content-Encoding": "gzip", "Content-Type": "text/event-stream"})

    async def pieces() -> list[int]:
        app = web.Application()
        app.router.add_get("/", answer)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        transport = Transport(connect_timeout=2, read_timeout=5)
        try:
            upstream = await transport.send("GET", f"http://127.0.0.1:{runner.addresses[0][1]}/", [], None)
            upstream.decode()
            sizes = []
            while piece := await upstream.next_chunk():
                sizes.append(len(piece))
            return sizes
        finally:
            await transport.aclose()
            await runner.cleanup()

    sizes = asyncio.run(pieces())
    assert sum(sizes) == inflated and max(sizes) <= 1024 * 1024, sizes


@contextlib.asynccontextmanager
async def upstream_answering(answer: Callable[[web.Request], Awaitable[web.Response]]) -> AsyncIterator[int]:
    """A local upstream answering every POST to / with `answer`; its port."""
    app = web.Application()
    app.router.add_post("/", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    try:
        yield runner.addresses[0][1]
    finally:
        await runner.cleanup()


async def posts(url: str, each_headers: list[list[tuple[str, str]]]) -> None:
    """A POST of `{}` to `url` for each set of headers, all through one transport, each answer read."""
    transport = Transport(connect_timeout=2, read_timeout=5)
    try:
        for headers in each_headers:
            upstream = await transport.send("POST", url, headers, b"{}")
            await upstream.read(1024)
    finally:
        await transport.aclose()


def test_an_upstreams_cookies_are_never_sent_back() -> None:
    """One session serves every caller: a cookie one upstream answer sets (a load balancer's affinity, a
    session) must not ride along on the next call, which may be another caller's."""
    cookies_received: list[str | None] = []

    async def answer(request: web.Request) -> web.Response:
        cookies_received.append(request.headers.get("Cookie"))
        response = web.json_response({"ok": True})
        response.set_cookie("ARRAffinity", "caller-one-instance")
        response.set_cookie("session", "caller-one-secret", path="/")
        return response

    async def two_calls() -> None:
        async with upstream_answering(answer) as port:
            # A host name, not an IP address: aiohttp keeps no cookies for IP addresses whatever the jar.
            await posts(f"http://localhost:{port}/", [[("content-type", "application/json")]] * 2)

    # The host name must stay on 127.0.0.1, like every test's traffic.
    assert {address[4][0] for address in socket.getaddrinfo("localhost", 80, proto=socket.IPPROTO_TCP)} == {"127.0.0.1"}
    asyncio.run(two_calls())
    assert cookies_received == [None, None]


def test_a_request_names_the_gateway_as_its_user_agent_unless_it_names_its_own() -> None:
    agents: list[list[str]] = []

    async def answer(request: web.Request) -> web.Response:
        agents.append(request.headers.getall("User-Agent", []))
        return web.json_response({"ok": True})

    async def calls() -> None:
        async with upstream_answering(answer) as port:
            await posts(
                f"http://127.0.0.1:{port}/", [[], [("user-agent", "my-app/1.0")], [("User-Agent", "other/2.0")]]
            )

    asyncio.run(calls())
    assert agents == [["aoai-gateway"], ["my-app/1.0"], ["other/2.0"]]  # never aiohttp's own, never two


def test_an_egress_proxys_connect_names_the_gateway_as_its_user_agent() -> None:
    """Through an HTTP egress proxy, an https upstream is reached by a CONNECT to the proxy, which names the gateway as
    aiohttp's own requests would not. The proxy here refuses the tunnel, so no name is ever resolved or reached."""
    from core.upstream.transport import ConnectFailed

    heads: list[bytes] = []

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        heads.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
        await writer.drain()
        writer.close()

    async def call() -> None:
        proxy = await asyncio.start_server(refuse, "127.0.0.1", 0)
        transport = Transport(
            connect_timeout=2, read_timeout=2, proxy=f"http://127.0.0.1:{proxy.sockets[0].getsockname()[1]}"
        )
        try:
            with pytest.raises(ConnectFailed):
                await transport.send("POST", "https://upstream.invalid/x", [("content-type", "text/plain")], b"hi")
        finally:
            await transport.aclose()
            proxy.close()
            await proxy.wait_closed()

    asyncio.run(call())
    assert len(heads) == 1 and heads[0].startswith(b"CONNECT upstream.invalid:443 HTTP/1.1\r\n")
    assert b"\r\nUser-Agent: aoai-gateway\r\n" in heads[0]


def test_a_body_of_known_length_is_read_whole_its_connection_reused_and_a_short_or_stalled_one_fails() -> None:
    """A body whose length is known is read by aiohttp's own read: whole, and its connection kept for the next
    call; a body the upstream cuts short is ReadFailed, one that stops arriving is ReadTimedOut."""
    from core.upstream.transport import ReadFailed, ReadTimedOut

    connections = 0
    finished = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            path = head.split(b" ", 2)[1]
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n")
            if path == b"/whole":
                writer.write(b'{"ok": true}')
            elif path == b"/short":
                writer.write(b'{"ok"')
                await writer.drain()
                writer.close()
                return
            else:
                writer.write(b'{"ok"')  # then nothing more
                await finished.wait()
                writer.close()
                return

    async def reads() -> tuple[list[bytes], list[type[BaseException]]]:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
        transport = Transport(connect_timeout=2, read_timeout=0.3)
        bodies: list[bytes] = []
        failures: list[type[BaseException]] = []
        try:
            for _ in range(2):
                bodies.append(await (await transport.send("GET", f"{url}/whole", [], None)).read(100))
            for path in ("/short", "/stalled"):
                upstream = await transport.send("GET", url + path, [], None)
                with pytest.raises((ReadFailed, ReadTimedOut)) as failed:
                    await upstream.read(100)
                failures.append(failed.type)
        finally:
            finished.set()
            await transport.aclose()
            server.close()
            await server.wait_closed()
        return bodies, failures

    bodies, failures = asyncio.run(reads())
    assert bodies == [b'{"ok": true}'] * 2
    assert failures == [ReadFailed, ReadTimedOut]
    assert connections == 2  # the whole answers and the short one over one connection, a new one after it broke


def test_a_kept_alive_connection_closed_unanswered_sends_a_get_again_and_never_a_post() -> None:
    """An upstream may close an idle kept-alive connection just as the next request goes out on it. A GET is then
    sent once more on a new connection (sending it twice cannot do anything twice); a POST is ConnectFailed, sent
    once, since the upstream may have acted on it."""
    from core.upstream.transport import ConnectFailed

    received: list[tuple[int, bytes]] = []  # (connection, method) of every request that arrived
    connections = 0

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        connection = connections
        answered = 0
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            received.append((connection, head.split(b" ", 1)[0]))
            if b"\r\ncontent-length: 2\r\n" in head.lower():
                await reader.readexactly(2)  # the POST's body
            if answered == 1:  # the second request on a connection: closed unanswered
                writer.close()
                return
            answered += 1
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}")
            await writer.drain()

    async def calls(method: str) -> list[bytes | type[BaseException]]:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
        transport = Transport(connect_timeout=2, read_timeout=2)
        results: list[bytes | type[BaseException]] = []
        body = None if method == "GET" else b"{}"
        fields = [] if body is None else [("Content-Type", "application/json")]
        try:
            for _ in range(2):
                try:
                    results.append(await (await transport.send(method, url, fields, body)).read(100))
                except ConnectFailed as failed:
                    results.append(type(failed))
        finally:
            await transport.aclose()
            server.close()
            await server.wait_closed()
        return results

    assert asyncio.run(calls("GET")) == [b"{}", b"{}"]
    assert received == [(1, b"GET"), (1, b"GET"), (2, b"GET")]  # the second sent again, on a new connection
    received.clear()
    connections = 0
    assert asyncio.run(calls("POST")) == [b"{}", ConnectFailed]
    assert received == [(1, b"POST"), (1, b"POST")]  # never sent a second time


def test_reads_unbounded_wait_past_the_read_timeout_and_bounded_ones_do_not() -> None:
    """A caller whose own deadlines come first sends with bounded_reads=False: no read then fails for the read
    timeout, however long the upstream is silent (the caller's deadline ends the wait instead)."""
    from core.upstream.transport import ReadTimedOut

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 12\r\n\r\n{"ok"')
        await writer.drain()
        await asyncio.sleep(0.6)  # three read timeouts of silence
        writer.write(b": true}")
        await writer.drain()
        writer.close()

    async def read(bounded: bool) -> bytes | type[BaseException]:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        transport = Transport(connect_timeout=2, read_timeout=0.2)
        try:
            url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/"
            upstream = await transport.send("GET", url, [], None, bounded_reads=bounded)
            try:
                return await upstream.read(100)
            except ReadTimedOut:
                return ReadTimedOut
        finally:
            await transport.aclose()
            server.close()
            await server.wait_closed()

    assert asyncio.run(read(bounded=False)) == b'{"ok": true}'
    assert asyncio.run(read(bounded=True)) is ReadTimedOut
