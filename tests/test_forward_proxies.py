"""The egress test proxies (tests/support/forward_proxies.py), driven by aiohttp, the gateway's own upstream client.

Each test runs a tiny aiohttp origin on 127.0.0.1 in the test's event loop: JSON echo, a fixed-length body, and an
SSE stream that holds its last event back until the test has read the first (so buffering anywhere fails the test).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import json
import logging
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
from aiohttp import web
from aiohttp_socks import ProxyConnector
from python_socks import ProxyError
from python_socks.async_.asyncio import Proxy

from tests.support import forward_proxies
from tests.support.forward_proxies import HttpProxy, Socks5Proxy
from tests.support.json_values import json_object

T = TypeVar("T")
BIG = bytes(range(256)) * 1000  # 256 kB: several reads and drains on every hop
TIMEOUT = aiohttp.ClientTimeout(total=10)


def run(coro: Awaitable[T]) -> T:
    async def bounded() -> T:
        return await asyncio.wait_for(coro, 20)

    return asyncio.run(bounded())


@dataclass
class Origin:
    url: str
    port: int
    release: asyncio.Event = field(default_factory=asyncio.Event)  # lets /stream send its last event


@contextlib.asynccontextmanager
async def serve_origin(ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[Origin]:
    sock = socket.create_server(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    origin = Origin(f"{'https' if ssl_context else 'http'}://127.0.0.1:{port}", port)

    async def echo(request: web.Request) -> web.Response:
        body = await request.read()
        proxy_headers = sorted(h for h in request.headers if h.lower().startswith("proxy-"))
        return web.json_response(
            {"method": request.method, "path": request.path_qs, "body": body.decode(), "proxy_headers": proxy_headers}
        )

    async def fixed(request: web.Request) -> web.Response:
        return web.Response(body=BIG, content_type="application/octet-stream")

    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        await response.write(b"data: first\n\n")
        await asyncio.wait_for(origin.release.wait(), 10)
        await response.write(b"data: last\n\n")
        await response.write_eof()
        return response

    app = web.Application()
    app.router.add_route("*", "/echo", echo)
    app.router.add_get("/fixed", fixed)
    app.router.add_get("/stream", stream)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    await web.SockSite(runner, sock, ssl_context=ssl_context).start()
    try:
        yield origin
    finally:
        origin.release.set()
        await runner.cleanup()


async def read_stream(response: aiohttp.ClientResponse, origin: Origin) -> tuple[bytes, bytes]:
    """The first event must come through while the origin still holds the last one back."""
    first = await asyncio.wait_for(response.content.readuntil(b"\n\n"), 5)
    assert not origin.release.is_set()
    origin.release.set()
    return first, await response.content.read()


@pytest.fixture(autouse=True)
def quiet(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The proxies log nothing, even when clients leave early or they stop with connections open (set up first, so
    checked after the proxy fixtures have stopped their proxies). asyncio reports through logging, not stderr."""
    yield
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING] == []


@pytest.fixture
def http_proxy() -> Iterator[HttpProxy]:
    with HttpProxy() as proxy:
        yield proxy


@pytest.fixture
def socks_proxy() -> Iterator[Socks5Proxy]:
    with Socks5Proxy() as proxy:
        yield proxy


@pytest.fixture
def dials(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every connection the proxies attempt (both open origin connections only through `_dial`)."""
    attempts: list[tuple[str, int]] = []
    real = forward_proxies._dial

    async def recording(host: str, port: int) -> Any:
        attempts.append((host, port))
        return await real(host, port)

    monkeypatch.setattr(forward_proxies, "_dial", recording)
    return attempts


# --------------------------------------------------------------------------------------------- HTTP proxy


def test_http_proxy_forwards_absolute_form_over_one_kept_alive_connection(http_proxy: HttpProxy) -> None:
    async def scenario() -> tuple[str, dict[str, Any], bytes, str]:
        async with serve_origin() as origin, aiohttp.ClientSession(timeout=TIMEOUT) as session:
            async with session.post(f"{origin.url}/echo?x=1", json={"hi": 1}, proxy=http_proxy.url) as r:
                assert r.status == 200
                echoed = await r.json()
            async with session.get(f"{origin.url}/fixed", proxy=http_proxy.url) as r:
                assert r.headers["Content-Length"] == str(len(BIG))
                body = await r.read()
            return origin.url, echoed, body, r.headers.get("Connection", "")

    url, echoed, body, connection = run(scenario())
    assert echoed == {"method": "POST", "path": "/echo?x=1", "body": '{"hi": 1}', "proxy_headers": []}
    assert body == BIG
    assert http_proxy.requests == [("POST", f"{url}/echo?x=1"), ("GET", f"{url}/fixed")]
    assert http_proxy.connections == 1  # both requests over one client connection
    assert connection.lower() != "close"
    assert http_proxy.auth_failures == 0


def test_http_proxy_streams_chunked_answers_and_chunked_uploads(http_proxy: HttpProxy) -> None:
    async def upload() -> AsyncIterator[bytes]:
        yield b"a" * 70_000
        await asyncio.sleep(0.01)
        yield b"tail"

    async def scenario() -> tuple[str, bytes, bytes, dict[str, Any]]:
        async with serve_origin() as origin, aiohttp.ClientSession(timeout=TIMEOUT) as session:
            async with session.get(f"{origin.url}/stream", proxy=http_proxy.url) as r:
                encoding = r.headers.get("Transfer-Encoding", "")
                first, rest = await read_stream(r, origin)
            async with session.post(f"{origin.url}/echo", data=upload(), proxy=http_proxy.url) as r:
                echoed = await r.json()
            return encoding, first, rest, echoed

    encoding, first, rest, echoed = run(scenario())
    assert encoding == "chunked"
    assert (first, rest) == (b"data: first\n\n", b"data: last\n\n")
    assert echoed["body"] == "a" * 70_000 + "tail"
    assert http_proxy.connections == 1


def test_http_proxy_requires_basic_auth_when_configured() -> None:
    with HttpProxy("alice", "p@ss:word") as proxy:
        bare = f"http://127.0.0.1:{proxy.port}"
        assert proxy.url == f"http://alice:p%40ss%3Aword@127.0.0.1:{proxy.port}"

        async def scenario() -> list[Any]:
            seen: list[Any] = []
            async with serve_origin() as origin, aiohttp.ClientSession(timeout=TIMEOUT) as session:
                async with session.post(f"{origin.url}/echo", json={"n": 1}, proxy=bare) as r:
                    seen.append((r.status, r.headers.get("Proxy-Authenticate")))
                wrong = f"http://alice:nope@127.0.0.1:{proxy.port}"
                async with session.post(f"{origin.url}/echo", json={"n": 2}, proxy=wrong) as r:
                    seen.append(r.status)
                async with session.post(f"{origin.url}/echo", json={"n": 3}, proxy=proxy.url) as r:
                    seen.append((r.status, await r.json()))
            return seen

        refused, wrong_status, (status, echoed) = run(scenario())
    assert refused == (407, 'Basic realm="test"')
    assert wrong_status == 407
    assert status == 200
    assert echoed["body"] == '{"n": 3}'
    assert echoed["proxy_headers"] == []  # Proxy-Authorization stays with the proxy
    assert proxy.auth_failures == 2
    assert [method for method, _ in proxy.requests] == ["POST", "POST", "POST"]


def make_tls_contexts(directory: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """A throwaway self-signed certificate for 127.0.0.1: (server context, client context trusting it)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_path, key_path)
    return server, ssl.create_default_context(cafile=str(cert_path))


def test_http_proxy_tunnels_https_with_connect(tmp_path: Path) -> None:
    server_tls, client_tls = make_tls_contexts(tmp_path)
    with HttpProxy("alice", "secret") as proxy:

        async def scenario() -> tuple[int, dict[str, Any], bytes, bytes, int | None]:
            async with serve_origin(server_tls) as origin, aiohttp.ClientSession(timeout=TIMEOUT) as session:
                async with session.post(f"{origin.url}/echo", json={"s": 1}, proxy=proxy.url, ssl=client_tls) as r:
                    echoed = await r.json()
                async with session.get(f"{origin.url}/stream", proxy=proxy.url, ssl=client_tls) as r:
                    first, rest = await read_stream(r, origin)
                unauthenticated = None
                try:
                    async with session.get(f"{origin.url}/echo", proxy=f"http://127.0.0.1:{proxy.port}"):
                        pass
                except aiohttp.ClientHttpProxyError as exc:
                    unauthenticated = exc.status
                return origin.port, echoed, first, rest, unauthenticated

        port, echoed, first, rest, unauthenticated = run(scenario())
    assert echoed["body"] == '{"s": 1}'
    assert (first, rest) == (b"data: first\n\n", b"data: last\n\n")
    assert unauthenticated == 407
    tunnel = ("CONNECT", f"127.0.0.1:{port}")
    assert proxy.requests == [tunnel, tunnel]  # the authenticated tunnel carried both requests
    assert proxy.auth_failures == 1


def test_http_proxy_refuses_non_local_targets_without_connecting(
    http_proxy: HttpProxy, dials: list[tuple[str, int]]
) -> None:
    async def scenario() -> tuple[int, int | None]:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=5)) as session:
            async with session.post("http://10.255.255.1/x", json={}, proxy=http_proxy.url) as r:
                plain = r.status
            try:
                async with session.get("https://10.255.255.1/x", proxy=http_proxy.url):
                    pass
            except aiohttp.ClientHttpProxyError as exc:
                return plain, exc.status
            return plain, None

    assert run(scenario()) == (403, 403)
    assert http_proxy.requests == [("POST", "http://10.255.255.1/x"), ("CONNECT", "10.255.255.1:443")]
    assert dials == []


def test_http_proxy_survives_clients_leaving_early_and_stops_quietly(
    http_proxy: HttpProxy, capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    """A client drops a stream halfway; another request still works; stopping with an idle kept-alive connection
    open is quiet. (The `quiet` fixture checks the log as well.)"""

    async def scenario() -> dict[str, Any]:
        async with serve_origin() as origin:
            session = aiohttp.ClientSession(timeout=TIMEOUT)
            async with session, session.get(f"{origin.url}/stream", proxy=http_proxy.url) as r:
                await r.content.readuntil(b"\n\n")
                r.close()  # drops the connection mid-stream
            origin.release.set()
            async with aiohttp.ClientSession(timeout=TIMEOUT) as session:
                async with session.post(f"{origin.url}/echo", json={"after": True}, proxy=http_proxy.url) as r:
                    echoed = await r.json()
                await asyncio.to_thread(http_proxy.stop)  # while that connection idles in the client's pool
            return json_object(echoed)

    assert json.loads(run(scenario())["body"]) == {"after": True}
    assert capfd.readouterr().err == ""
    assert [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING] == []


# --------------------------------------------------------------------------------------------- SOCKS5 proxy


def test_socks_proxy_relays_and_streams_over_one_tunnel(socks_proxy: Socks5Proxy) -> None:
    async def scenario() -> tuple[int, dict[str, Any], bytes, bytes]:
        connector = ProxyConnector.from_url(socks_proxy.url)
        async with serve_origin() as origin, aiohttp.ClientSession(connector=connector, timeout=TIMEOUT) as session:
            async with session.post(f"{origin.url}/echo", json={"via": "socks"}) as r:
                echoed = await r.json()
            async with session.get(f"{origin.url}/stream") as r:
                first, rest = await read_stream(r, origin)
            return origin.port, echoed, first, rest

    port, echoed, first, rest = run(scenario())
    assert echoed["body"] == '{"via": "socks"}'
    assert (first, rest) == (b"data: first\n\n", b"data: last\n\n")
    assert socks_proxy.tunnels == [("127.0.0.1", port)]
    assert socks_proxy.connections == 1
    assert socks_proxy.url == f"socks5://127.0.0.1:{socks_proxy.port}"


def test_socks_proxy_accepts_domain_names_for_localhost(socks_proxy: Socks5Proxy) -> None:
    async def scenario() -> tuple[int, bytes]:
        connector = ProxyConnector.from_url(socks_proxy.url, rdns=True)  # the proxy, not the client, resolves
        session = aiohttp.ClientSession(connector=connector, timeout=TIMEOUT)
        async with serve_origin() as origin, session, session.get(f"http://localhost:{origin.port}/fixed") as r:
            return origin.port, await r.read()

    port, body = run(scenario())
    assert body == BIG
    assert socks_proxy.tunnels == [("localhost", port)]


def test_socks_proxy_requires_username_and_password_when_configured() -> None:
    with Socks5Proxy("bob", "s3cret") as proxy:
        bare = f"socks5://127.0.0.1:{proxy.port}"
        wrong = f"socks5://bob:nope@127.0.0.1:{proxy.port}"

        async def scenario() -> tuple[dict[str, Any], list[str]]:
            failures = []
            async with serve_origin() as origin:
                for url in (bare, wrong):
                    with pytest.raises(ProxyError) as caught:
                        await Proxy.from_url(url).connect("127.0.0.1", origin.port, timeout=5)
                    failures.append(str(caught.value))
                session = aiohttp.ClientSession(connector=ProxyConnector.from_url(proxy.url), timeout=TIMEOUT)
                async with session, session.post(f"{origin.url}/echo", json={"auth": 1}) as r:
                    return await r.json(), failures

        echoed, failures = run(scenario())
    assert echoed["body"] == '{"auth": 1}'
    assert len(failures) == 2
    assert proxy.auth_failures == 2
    assert len(proxy.tunnels) == 1  # refused clients never got as far as a CONNECT


def test_socks_proxy_refuses_non_local_targets_without_connecting(
    socks_proxy: Socks5Proxy, dials: list[tuple[str, int]]
) -> None:
    async def refusal(host: str) -> int | None:
        proxy = Proxy.from_url(socks_proxy.url, rdns=True)  # rdns: never resolve names on this side either
        with pytest.raises(ProxyError) as caught:
            await proxy.connect(host, 80, timeout=5)
        return caught.value.error_code

    assert run(refusal("10.255.255.1")) == 0x02  # "connection not allowed by ruleset"
    assert run(refusal("example.invalid")) == 0x02
    assert socks_proxy.tunnels == [("10.255.255.1", 80), ("example.invalid", 80)]
    assert dials == []
