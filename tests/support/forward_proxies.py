"""Real forward proxies on 127.0.0.1 for the egress tests: an HTTP/1.1 proxy and a SOCKS5 proxy.

Why they exist: the gateway can send its upstream traffic through an egress proxy (``AZURE_OPENAI_HTTP_PROXY``,
``AZURE_OPENAI_SOCKS_PROXY``). A mocked transport would only prove that the setting is passed along; these are real
servers speaking the real protocols, so a test can prove the bytes went through a proxy (and its authentication)
and still arrived intact and streamed.

Both run in a background thread with their own event loop, like ``azure_sim.AzureSimulator``:
``with HttpProxy("user", "pass") as proxy: ...`` then point the client at ``proxy.url``. They record what they did
(``connections``, ``requests`` or ``tunnels``, ``auth_failures``) under a lock; ``reset()`` forgets it.

Safety net: they only ever connect to 127.0.0.1 (``localhost`` is mapped to it, never resolved). Any other target
is refused before a connection is attempted (HTTP 403, SOCKS reply 0x02), so no test can reach the network
through them.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import socket
import struct
import threading
from collections.abc import Iterable
from typing import Protocol, Self
from urllib.parse import quote, urlsplit

__all__ = ["HttpProxy", "Socks5Proxy"]

LOOPBACK = "127.0.0.1"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost"})
CHUNK = 64 * 1024  # relay reads return whatever has arrived, up to this: nothing waits for a full buffer
HEAD_LIMIT = 64 * 1024  # the largest request or response head accepted
# Headers that belong to one hop (client-proxy or proxy-origin), never forwarded (RFC 9110 section 7.6.1).
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "proxy-authorization"})
# What a peer going away (or talking nonsense) raises mid-exchange: that connection ends quietly, no traceback.
_GONE = (OSError, EOFError, asyncio.LimitOverrunError, ValueError, IndexError)

Headers = list[tuple[str, str]]


class _Writer(Protocol):
    """What the body copiers write to: an ``asyncio.StreamWriter`` or ``_Discard``."""

    def write(self, data: bytes) -> None: ...

    async def drain(self) -> None: ...


def _local(host: str) -> bool:
    return host.lower() in LOCAL_HOSTS


async def _dial(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """The only place either proxy opens a connection, hence the last guard (callers refuse politely before)."""
    if not _local(host):
        raise PermissionError(f"refusing to connect to {host}:{port}")
    return await asyncio.open_connection(LOOPBACK, port, limit=HEAD_LIMIT)


async def _pipe(reader: asyncio.StreamReader, writer: _Writer) -> None:
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()


async def _relay_both(
    a_reader: asyncio.StreamReader,
    a_writer: asyncio.StreamWriter,
    b_reader: asyncio.StreamReader,
    b_writer: asyncio.StreamWriter,
) -> None:
    """Relay bytes both ways until either side closes or fails; the caller then closes both. No half-close: HTTP
    clients and servers do not use it, and waiting for the other direction could wait forever."""
    tasks = [asyncio.ensure_future(_pipe(a_reader, b_writer)), asyncio.ensure_future(_pipe(b_reader, a_writer))]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # also retrieves their exceptions (no log line)


# --------------------------------------------------------------------------------------------- the harness


class _Proxy:
    """A server in a background thread with its own event loop; subclasses implement ``_handle`` per connection."""

    scheme = ""

    def __init__(self, username: str | None = None, password: str | None = None) -> None:
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        self.username = username
        self.password = password
        self.connections = 0
        self.auth_failures = 0
        self.port = 0
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(port={self.port}, auth={self.username is not None})"

    @property
    def url(self) -> str:
        """The proxy URL to configure, with the credentials (percent-encoded) when there are any."""
        if not self.port:
            raise RuntimeError(f"{type(self).__name__} is not started")
        auth = ""
        if self.username is not None and self.password is not None:
            auth = f"{quote(self.username, safe='')}:{quote(self.password, safe='')}@"
        return f"{self.scheme}://{auth}{LOOPBACK}:{self.port}"

    def reset(self) -> None:
        """Forget what was recorded (in place: lists handed out before stay the live ones)."""
        with self._lock:
            self.connections = 0
            self.auth_failures = 0
            self._clear()

    def _clear(self) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        """Serve on an ephemeral 127.0.0.1 port from a daemon thread; returns once the port accepts connections."""
        if self._thread is not None:
            raise RuntimeError(f"{type(self).__name__} already started")
        sock = socket.create_server((LOOPBACK, 0))
        self.port = sock.getsockname()[1]  # bound and listening now: connections queue until the loop serves them
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._stopping = asyncio.Event()  # loop-free until first awaited (3.10+), so it may be made here
        self._thread = threading.Thread(target=self._run, args=(loop, sock), name=repr(self), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and every open connection, then join the thread."""
        if self._thread is None or self._loop is None or self._stopping is None:
            return
        self._loop.call_soon_threadsafe(self._stopping.set)
        self._thread.join(timeout=10)
        self._thread = None
        self._loop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self, loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve(sock))
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()

    async def _serve(self, sock: socket.socket) -> None:
        assert self._stopping is not None
        handlers: set[asyncio.Task[None]] = set()

        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            handlers.add(task)
            with self._lock:
                self.connections += 1
            try:
                await self._handle(reader, writer)
            except _GONE:
                pass
            except asyncio.CancelledError:  # our own shutdown: end normally, as 3.11's start_server logs a
                pass  # cancelled handler as an error (task.exception() raises)
            finally:
                handlers.discard(task)
                writer.close()

        server = await asyncio.start_server(on_client, sock=sock, limit=HEAD_LIMIT)
        try:
            await self._stopping.wait()
        finally:
            server.close()
            for task in list(handlers):  # their `finally` blocks close both sides of each connection
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
            await server.wait_closed()
            await asyncio.sleep(0)  # let the closed transports finish (no "unclosed transport" warnings)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError


# --------------------------------------------------------------------------------------------- HTTP


def _parse_head(head: bytes) -> tuple[str, Headers]:
    """Split a request or response head into its first line and its header fields (order and case kept)."""
    first, *lines = head.decode("latin-1").split("\r\n")
    headers = []
    for line in lines:
        if line:
            name, sep, value = line.partition(":")
            if not sep:
                raise ValueError(f"malformed header line {line!r}")
            headers.append((name.strip(), value.strip()))
    return first, headers


def _build_head(first: str, headers: Iterable[tuple[str, str]]) -> bytes:
    return "".join([f"{first}\r\n", *(f"{name}: {value}\r\n" for name, value in headers), "\r\n"]).encode("latin-1")


def _tokens(headers: Headers, name: str) -> list[str]:
    """The comma-separated values of every ``name`` field, lower-cased (Connection, Transfer-Encoding, ...)."""
    return [t.strip().lower() for n, v in headers if n.lower() == name for t in v.split(",") if t.strip()]


def _header(headers: Headers, name: str) -> str | None:
    return next((v for n, v in reversed(headers) if n.lower() == name), None)


def _framing(headers: Headers) -> str | int:
    """How a message body is delimited: "chunked", a Content-Length, or "eof" (neither: a response that ends
    when the origin closes; for a request that means no body, see ``_request_framing``)."""
    codings = _tokens(headers, "transfer-encoding")
    if codings:
        return "chunked" if codings[-1] == "chunked" else "eof"
    length = _header(headers, "content-length")
    return int(length) if length is not None else "eof"


def _request_framing(headers: Headers) -> str | int:
    framing = _framing(headers)
    return 0 if framing == "eof" else framing


async def _copy_length(reader: asyncio.StreamReader, writer: _Writer, length: int) -> None:
    while length > 0:
        data = await reader.read(min(length, CHUNK))
        if not data:
            raise asyncio.IncompleteReadError(b"", length)
        writer.write(data)
        await writer.drain()
        length -= len(data)


async def _copy_chunked(reader: asyncio.StreamReader, writer: _Writer) -> None:
    """Relay a chunked body verbatim, each chunk as it arrives; returns after the last chunk and its trailers."""
    while True:
        line = await reader.readuntil(b"\r\n")
        writer.write(line)
        size = int(line.split(b";", 1)[0], 16)
        if size == 0:
            break
        await _copy_length(reader, writer, size + 2)  # the data and the CRLF after it
    while True:  # trailer fields, then the empty line that ends the message
        line = await reader.readuntil(b"\r\n")
        writer.write(line)
        if line == b"\r\n":
            break
    await writer.drain()


async def _copy_body(reader: asyncio.StreamReader, writer: _Writer, framing: str | int) -> None:
    if framing == "chunked":
        await _copy_chunked(reader, writer)
    elif framing == "eof":
        await _pipe(reader, writer)
    elif isinstance(framing, int):
        await _copy_length(reader, writer, framing)


class _Discard:
    """A writer that drops everything: where a refused request's body goes."""

    def write(self, data: bytes) -> None:
        pass

    async def drain(self) -> None:
        pass


async def _reply(
    writer: asyncio.StreamWriter,
    status: int,
    reason: str,
    headers: Iterable[tuple[str, str]] = (),
    *,
    close: bool = True,
) -> None:
    body = f"{status} {reason}\n".encode()
    fields = [("Content-Type", "text/plain"), ("Content-Length", str(len(body))), *headers]
    if close:
        fields.append(("Connection", "close"))
    writer.write(_build_head(f"HTTP/1.1 {status} {reason}", fields) + body)
    await writer.drain()


class HttpProxy(_Proxy):
    """An HTTP/1.1 forward proxy: absolute-form requests (``POST http://127.0.0.1:P/path``, what aiohttp sends for
    an http:// upstream) and ``CONNECT host:port`` tunnels (for https://). With credentials it requires
    ``Proxy-Authorization: Basic ...`` and answers 407 otherwise. Client connections are kept alive; each
    absolute-form request gets its own origin connection, which keeps the framing logic one-directional.

    ``requests`` records (method, target) for every request, refused ones included.
    """

    scheme = "http"

    def __init__(self, username: str | None = None, password: str | None = None) -> None:
        super().__init__(username, password)
        self.requests: list[tuple[str, str]] = []

    def _clear(self) -> None:
        self.requests.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:  # one request per turn: the client may keep the connection for the next one
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return  # closed between requests: the normal end of a kept-alive connection
            first, headers = _parse_head(head)
            method, target, version = first.split(" ")
            with self._lock:
                self.requests.append((method, target))
            destination = _destination(method, target)
            refusal = self._refusal(headers, destination)
            if refusal is not None:
                if not await self._refuse(method, headers, reader, writer, *refusal):
                    return
                continue
            assert destination is not None
            if method == "CONNECT":
                await self._tunnel(destination[1], reader, writer)
                return
            client_close = "close" in _tokens(headers, "connection") or version == "HTTP/1.0"
            if not await self._forward(method, target, destination[1], headers, reader, writer, client_close):
                return

    def _refusal(self, headers: Headers, destination: tuple[str, int] | None) -> tuple[int, str, Headers] | None:
        if not self._authorized(headers):
            with self._lock:
                self.auth_failures += 1
            return 407, "Proxy Authentication Required", [("Proxy-Authenticate", 'Basic realm="test"')]
        if destination is None:
            return 400, "Bad Request", []
        if not _local(destination[0]):
            return 403, "Forbidden", []  # the safety net: decided before any connection is attempted
        return None

    async def _refuse(
        self,
        method: str,
        headers: Headers,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        status: int,
        reason: str,
        extra: Headers,
    ) -> bool:
        """Answer with an error; True if the connection can carry another request. A refused request's body is read
        first (and dropped): closing a socket with unread input sends a RST, which can destroy the answer before
        the client reads it. A client waiting for ``100 Continue`` sends no body: its connection is closed."""
        if method == "CONNECT" or "100-continue" in _tokens(headers, "expect"):
            await _reply(writer, status, reason, extra)
            return False
        await _copy_body(reader, _Discard(), _request_framing(headers))
        await _reply(writer, status, reason, extra, close=False)
        return True

    def _authorized(self, headers: Headers) -> bool:
        if self.username is None or self.password is None:
            return True
        scheme, _, encoded = (_header(headers, "proxy-authorization") or "").partition(" ")
        try:
            given = base64.b64decode(encoded.strip(), validate=True)
        except binascii.Error:
            return False
        # latin-1: what aiohttp's BasicAuth encodes with by default
        return scheme.lower() == "basic" and given == f"{self.username}:{self.password}".encode("latin-1")

    async def _tunnel(self, port: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            origin_reader, origin_writer = await _dial(LOOPBACK, port)
        except OSError:
            await _reply(writer, 502, "Bad Gateway")
            return
        try:
            writer.write(b"HTTP/1.1 200 Connection Established\r\n\r\n")
            await writer.drain()
            await _relay_both(reader, writer, origin_reader, origin_writer)
        finally:
            origin_writer.close()

    async def _forward(
        self,
        method: str,
        target: str,
        port: int,
        headers: Headers,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        client_close: bool,
    ) -> bool:
        """Relay one absolute-form request and its answer; True if the client connection can carry another."""
        try:
            origin_reader, origin_writer = await _dial(LOOPBACK, port)
        except OSError:
            return await self._refuse(method, headers, reader, writer, 502, "Bad Gateway", []) and not client_close
        try:
            url = urlsplit(target)
            path = target[len(url.scheme) + 3 + len(url.netloc) :]  # origin-form, byte for byte
            path = path if path.startswith("/") else f"/{path}"
            fields = [(n, v) for n, v in headers if n.lower() not in HOP_BY_HOP]
            if _header(headers, "host") is None:
                fields.append(("Host", url.netloc))
            fields.append(("Connection", "close"))  # one origin connection per request (see the class doc)
            origin_writer.write(_build_head(f"{method} {path} HTTP/1.1", fields))

            async def send_body() -> None:
                try:
                    await _copy_body(reader, origin_writer, _request_framing(headers))
                except BaseException:  # the client went away mid-body: end the exchange rather than wait on it
                    origin_writer.close()
                    raise

            # The body goes up while the answer comes down: an origin may answer early, or send 100 Continue.
            sending = asyncio.ensure_future(send_body())
            try:
                reusable = await self._relay_response(method, origin_reader, writer, client_close)
            finally:
                if not sending.done():  # answered before the whole body came: the client's framing is lost
                    sending.cancel()
                    reusable = False
                await asyncio.gather(sending, return_exceptions=True)
            return reusable and not sending.cancelled() and sending.exception() is None
        finally:
            origin_writer.close()

    async def _relay_response(
        self, method: str, origin: asyncio.StreamReader, writer: asyncio.StreamWriter, client_close: bool
    ) -> bool:
        while True:
            head = await origin.readuntil(b"\r\n\r\n")
            first, headers = _parse_head(head)
            status = int(first.split(" ", 2)[1])
            if not 100 <= status < 200:
                break
            writer.write(head)  # an interim answer (100 Continue): pass it on, the final one follows
        framing = 0 if method == "HEAD" or status in (204, 304) else _framing(headers)
        close = client_close or framing == "eof"  # a body that ends at EOF ends the client connection too
        fields = [(n, v) for n, v in headers if n.lower() not in HOP_BY_HOP]
        if close:
            fields.append(("Connection", "close"))
        writer.write(_build_head(first, fields))
        await writer.drain()  # headers now, not with the first body bytes (SSE clients wait on them)
        await _copy_body(origin, writer, framing)
        return not close


def _destination(method: str, target: str) -> tuple[str, int] | None:
    """(host, port) of a CONNECT authority or an absolute-form http:// URL; None if it is neither."""
    try:
        if method == "CONNECT":
            host, _, port = target.rpartition(":")
            return host.strip("[]"), int(port)
        url = urlsplit(target)
        if url.scheme != "http" or not url.hostname:
            return None
        return url.hostname, url.port or 80
    except ValueError:
        return None


# --------------------------------------------------------------------------------------------- SOCKS5

SOCKS_VERSION = 5
NO_AUTH, USERNAME_PASSWORD, NO_ACCEPTABLE_METHOD = 0x00, 0x02, 0xFF
CMD_CONNECT = 0x01
ATYP_IPV4, ATYP_DOMAIN, ATYP_IPV6 = 0x01, 0x03, 0x04
# Reply codes (RFC 1928 section 6)
SUCCEEDED, GENERAL_FAILURE, NOT_ALLOWED, REFUSED = 0x00, 0x01, 0x02, 0x05
COMMAND_NOT_SUPPORTED, ADDRESS_TYPE_NOT_SUPPORTED = 0x07, 0x08


def _socks_reply(code: int, host: str = "0.0.0.0", port: int = 0) -> bytes:
    return bytes([SOCKS_VERSION, code, 0, ATYP_IPV4]) + socket.inet_aton(host) + struct.pack("!H", port)


class Socks5Proxy(_Proxy):
    """A SOCKS5 proxy (RFC 1928): CONNECT only, to IPv4 and domain-name targets; no authentication, or
    username/password (RFC 1929) when credentials are given.

    ``tunnels`` records (host, port) for every CONNECT request, refused ones included.
    """

    scheme = "socks5"

    def __init__(self, username: str | None = None, password: str | None = None) -> None:
        super().__init__(username, password)
        self.tunnels: list[tuple[str, int]] = []

    def _clear(self) -> None:
        self.tunnels.clear()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        version, count = await reader.readexactly(2)
        if version != SOCKS_VERSION:
            return
        offered = await reader.readexactly(count)
        method = NO_AUTH if self.username is None else USERNAME_PASSWORD
        if method not in offered:
            if method == USERNAME_PASSWORD:  # the client did not even offer to authenticate
                with self._lock:
                    self.auth_failures += 1
            writer.write(bytes([SOCKS_VERSION, NO_ACCEPTABLE_METHOD]))
            await writer.drain()
            return
        writer.write(bytes([SOCKS_VERSION, method]))
        if method == USERNAME_PASSWORD and not await self._authenticate(reader, writer):
            return

        _, command, _, address_type = await reader.readexactly(4)
        if address_type == ATYP_IPV4:
            host = socket.inet_ntoa(await reader.readexactly(4))
        elif address_type == ATYP_DOMAIN:
            host = (await reader.readexactly((await reader.readexactly(1))[0])).decode("latin-1")
        elif address_type == ATYP_IPV6:
            host = socket.inet_ntop(socket.AF_INET6, await reader.readexactly(16))
        else:
            return  # cannot even tell how long the request is
        (port,) = struct.unpack("!H", await reader.readexactly(2))
        if command != CMD_CONNECT:
            writer.write(_socks_reply(COMMAND_NOT_SUPPORTED))
            return
        with self._lock:
            self.tunnels.append((host, port))
        if address_type == ATYP_IPV6:
            writer.write(_socks_reply(ADDRESS_TYPE_NOT_SUPPORTED))
            return
        if not _local(host):
            writer.write(_socks_reply(NOT_ALLOWED))  # the safety net: decided before any connection is attempted
            return
        try:
            origin_reader, origin_writer = await _dial(host, port)
        except OSError as exc:
            writer.write(_socks_reply(REFUSED if isinstance(exc, ConnectionRefusedError) else GENERAL_FAILURE))
            return
        try:
            bound_host, bound_port = origin_writer.get_extra_info("sockname")[:2]
            writer.write(_socks_reply(SUCCEEDED, bound_host, bound_port))
            await writer.drain()
            await _relay_both(reader, writer, origin_reader, origin_writer)
        finally:
            origin_writer.close()

    async def _authenticate(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """RFC 1929: VER=1, ULEN, UNAME, PLEN, PASSWD; the answer's status 0 means success."""
        assert self.username is not None and self.password is not None
        version, length = await reader.readexactly(2)
        username = await reader.readexactly(length)
        password = await reader.readexactly((await reader.readexactly(1))[0])
        ok = version == 1 and (username, password) == (self.username.encode(), self.password.encode())
        if not ok:
            with self._lock:
                self.auth_failures += 1
        writer.write(bytes([1, 0 if ok else 1]))
        await writer.drain()
        return ok
