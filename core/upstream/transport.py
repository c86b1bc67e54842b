"""The upstream transport: one pooled aiohttp session per process.

Why aiohttp and not httpx: measured on this project's 2-core machines, httpx's
default pool (httpcore) collapses under concurrency (about 160 req/s at 32
concurrent requests, 6 ms CPU per request) while aiohttp sustains over 2,000
req/s at under 0.5 ms; see docs/architecture.md, "Performance", and bench/.

The transport knows nothing about OpenAI, Azure or groups: it sends bytes and hands
back status, headers and a body that can be read whole or streamed as it arrives.
It raises its own typed errors (TransportError), saying how far an exchange got, so
a pool can decide whether another member may be tried; core/upstream/errors.py turns
them into the client's 502 or 504.

A request is sent through aiohttp's parts (its request, its pooled connector, its
response) rather than `ClientSession.request`, whose general path (redirects, cookies,
total timeouts, traces, netrc and environment proxies, middlewares) the gateway uses
none of and which cost some 65 thousand instructions a call, 9% of one (bench/README.md).
These parts are aiohttp 3.14's (requirements.txt pins it); tests/test_upstream_transport.py
and tests/test_egress.py drive each path through real servers and proxies.
"""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import AsyncIterable, Iterable
from typing import Any

import aiohttp
import yarl
from aiohttp.helpers import TimerNoop
from multidict import CIMultiDict

ERROR_BODY_BYTES = 64 * 1024  # of an upstream error body: its message is at the start
_COMPRESSED = frozenset({"gzip", "x-gzip", "deflate"})
_GZIP_OR_ZLIB = 32 + zlib.MAX_WBITS  # zlib detects the gzip or zlib header itself
USER_AGENT = "aoai-gateway"  # the User-Agent of a request that names none
_DECODED_PIECE = 1024 * 1024  # at most this much decoded data per compressed chunk of a stream
_MAX_URLS = 1024  # parsed URLs kept; a resource call's names an object, so they are forgotten, all at once, when full
_NO_TOTAL_DEADLINE = TimerNoop()  # aiohttp's timer for a request without a total timeout (the callers keep their own)
# Methods whose request may be sent again when a kept-alive connection turns out closed before it answered (RFC 9112,
# 9.3.1), as aiohttp's own sessions do; a POST's never is.
_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"})


class TransportError(Exception):
    """No usable answer came back from the upstream; the subclass says how far the exchange got."""


class ConnectFailed(TransportError):
    """Refused, reset, TLS or DNS failure, or dropped before any response header: safe to try elsewhere."""


class ConnectTimedOut(ConnectFailed):
    """No connection within the connect timeout: nothing was sent."""


class HeadersTimedOut(TransportError):
    """The request was sent but no response headers came within the read timeout: it may still run upstream."""


class ReadFailed(TransportError):
    """The connection broke while the body was arriving."""


class ReadTimedOut(ReadFailed):
    """The body stopped arriving for longer than the read timeout."""


class BadBody(TransportError):
    """A body the gateway cannot use: `problem` says why, as the end of a sentence about the upstream."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class BodyTooLarge(TransportError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"more than {limit} bytes")
        self.limit = limit


class UpstreamResponse:
    """An upstream answer whose headers have arrived; the body may still be in flight.

    Bodies the gateway parses (JSON, SSE, errors) are decoded from gzip or deflate,
    in case an upstream ignores `accept-encoding: identity`; a body relayed byte for
    byte keeps its encoding (and its content-encoding header goes with it).
    """

    __slots__ = ("_response", "_decoder", "status", "headers", "raw_headers")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self._decoder: zlib._Decompress | None = None  # once decode() was called on a compressed body
        self.status = response.status
        self.headers = response.headers  # case-insensitive multidict
        self.raw_headers = response.raw_headers  # as they came: (name, value) bytes, in order

    def decode(self) -> None:
        """Decode the body from here on; BadBody for an encoding the gateway cannot decode."""
        encoding = self.headers.get("content-encoding", "identity").strip().lower()
        if encoding in _COMPRESSED:
            self._decoder = zlib.decompressobj(_GZIP_OR_ZLIB)
        elif encoding != "identity":
            self.close()
            raise BadBody(f"answered in an encoding the gateway cannot decode ({encoding})")

    async def read(self, limit: int) -> bytes:
        """The whole body, decoded. BodyTooLarge as soon as it exceeds `limit` bytes (nothing more is read)."""
        if "content-encoding" in self.headers:  # (most bodies have none: decode() would find it out again)
            self.decode()
        try:
            length = self._response.content_length
            if length is not None and length > limit:
                raise BodyTooLarge(limit)
            if length is not None and self._decoder is None:
                # Its length is known and within the limit, and aiohttp reads no more than the length says:
                # aiohttp's own read, which gives the connection back at the end.
                try:
                    return await self._response.read()
                except (TimeoutError, aiohttp.ClientError) as exc:
                    raise _read_failure(exc) from exc
            parts: list[bytes] = []
            size = 0
            while chunk := await self.next_chunk(limit + 1 - size):
                size += len(chunk)
                if size > limit:
                    raise BodyTooLarge(limit)
                parts.append(chunk)
        except BaseException:
            self.close()
            raise
        self.release()
        return b"".join(parts)

    async def read_error(self, limit: int = ERROR_BODY_BYTES) -> bytes:
        """At most `limit` bytes of an error body, decoded where possible: enough for its message.
        The rest is never read (the connection is dropped instead), and a failed read leaves what was read."""
        parts: list[bytes] = []
        size = 0
        try:
            self.decode()
            while size < limit and (chunk := await self.next_chunk(limit - size)):
                parts.append(chunk)
                size += len(chunk)
        except TransportError:
            pass  # the status says enough
        except BaseException:
            self.close()
            raise
        self.release()  # aiohttp keeps the connection only when the body was read to its end
        return b"".join(parts)[:limit]

    async def next_chunk(self, most: int = _DECODED_PIECE) -> bytes:
        """The next piece of the body as it arrives, without re-chunking; b"" at its end. `most`: what a compressed
        piece may decode to at most (the rest comes with the next call)."""
        decoder = self._decoder
        while True:
            if decoder is not None and decoder.unconsumed_tail:
                chunk = decoder.unconsumed_tail  # what the last call left for want of room
            else:
                try:
                    chunk = await self._response.content.readany()
                except (TimeoutError, aiohttp.ClientError) as exc:
                    raise _read_failure(exc) from exc
            if decoder is None:
                return chunk
            try:
                # `most` bounds what a small compressed chunk may expand to (a zip bomb).
                decoded = decoder.decompress(chunk, most) if chunk else decoder.flush()
            except zlib.error as exc:
                raise BadBody("sent a body that does not decode") from exc
            if decoded or not chunk:
                return decoded

    def close(self) -> None:
        """Drop the connection (the client went away, or the answer is broken or unwanted)."""
        self._response.close()

    def release(self) -> None:
        """Give the connection back to the pool; aiohttp closes it instead when the body was not read to its end."""
        self._response.release()


def _read_failure(error: TimeoutError | aiohttp.ClientError) -> TransportError:
    """What a failed read of an answer's body is: ReadTimedOut for aiohttp's socket read timeout (a TimeoutError,
    whichever other class it has too), ReadFailed otherwise."""
    return ReadTimedOut() if isinstance(error, TimeoutError) else ReadFailed()


class Transport:
    """A pooled HTTP/1.1 keep-alive client, created lazily inside the running loop.

    `proxy` routes every upstream connection through an egress proxy: `socks5://...`
    through a SOCKS connector, `http(s)://[user:password@]host:port` as an HTTP
    proxy (CONNECT for https upstreams; aiohttp turns the URL's credentials into
    Proxy-Authorization). Either way connections stay pooled.
    """

    def __init__(self, *, connect_timeout: float, read_timeout: float, proxy: str | None = None) -> None:
        self.set_timeouts(connect_timeout, read_timeout)
        self._socks_proxy = proxy if proxy is not None and proxy.startswith("socks") else None
        self._http_proxy = yarl.URL(proxy) if proxy is not None and self._socks_proxy is None else None
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None  # the session's
        # The URLs requested, parsed: a deployment's is the same for every call, and yarl keeps what aiohttp asks of
        # one (its host, port, path) once worked out, so a call to a URL seen before parses nothing.
        self._urls: dict[str, yarl.URL] = {}

    def set_timeouts(self, connect_timeout: float, read_timeout: float) -> None:
        """Applies to requests sent from now on (a reloaded configuration may change them)."""
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=read_timeout)
        self._unbounded_reads = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=None)

    def _connector(self) -> aiohttp.TCPConnector:
        # No cap on connections (limit 0): the host bounds the requests in flight.
        options: dict[str, Any] = {"limit": 0, "ttl_dns_cache": 300}
        if self._socks_proxy is not None:
            from aiohttp_socks import ProxyConnector

            return ProxyConnector.from_url(self._socks_proxy, **options)
        return aiohttp.TCPConnector(**options)

    def _new_session(self) -> aiohttp.ClientSession:
        """The session, made on first use (inside the running loop) and again after it was closed. It owns the
        connection pool; requests go through its connector (`send`), so no cookie it is sent is ever kept or sent
        back: one pool serves every caller, and a cookie an upstream sets (a front door's affinity, a session) must
        never ride along on the next call, which may be another caller's."""
        self._loop = asyncio.get_running_loop()
        self._session = aiohttp.ClientSession(connector=self._connector(), cookie_jar=aiohttp.DummyCookieJar())
        return self._session

    async def send(
        self,
        method: str,
        url: str,
        headers: Iterable[tuple[str, str]],
        body: bytes | AsyncIterable[bytes] | None,
        *,
        bounded_reads: bool = True,
    ) -> UpstreamResponse:
        """Send a request and wait for the response headers. An iterable body (an upload) is streamed as it comes.

        Raises ConnectFailed (ConnectTimedOut) when the request could not be delivered or
        was dropped unanswered, and HeadersTimedOut when it was sent but not answered in time.
        `bounded_reads`: each read waits at most the read timeout (HeadersTimedOut, ReadTimedOut); False for a
        caller whose own deadlines always come first, which then spares the request a timer moved at every read.
        """
        session = self._session
        if session is None or session.closed:
            session = self._new_session()
        target = self._urls.get(url)
        if target is None:
            # Sent exactly as built: aiohttp would otherwise re-normalise it (resolve dot-segments, re-encode).
            target = yarl.URL(url, encoded=True)
            if len(self._urls) >= _MAX_URLS:
                self._urls.clear()
            self._urls[url] = target
        fields = CIMultiDict(headers)
        # Who calls, unless a request names its own (a client's library): never aiohttp's Python/3.x aiohttp/3.x.
        # aiohttp adds only what a request lacks: Host, `Accept: */*`, its Accept-Encoding, a body's Content-Type.
        fields.setdefault("User-Agent", USER_AGENT)
        limits = self._timeout if bounded_reads else self._unbounded_reads
        sent = 0
        while True:
            try:
                return UpstreamResponse(await self._exchange(session, method, target, fields, body, limits))
            except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError) as exc:
                # A kept-alive connection the upstream had closed: the request is sent once more on another, as
                # aiohttp's sessions do, when sending it again cannot do anything twice and its body can be sent again.
                sent += 1
                if sent > 1 or method.upper() not in _IDEMPOTENT or not (body is None or isinstance(body, bytes)):
                    raise ConnectFailed() from exc
            except TimeoutError as exc:  # aiohttp's socket read timeout subclasses it
                raise HeadersTimedOut() from exc
            except (aiohttp.ClientError, OSError) as exc:
                raise ConnectFailed() from exc

    async def _exchange(
        self,
        session: aiohttp.ClientSession,
        method: str,
        url: yarl.URL,
        fields: CIMultiDict[str],
        body: bytes | AsyncIterable[bytes] | None,
        limits: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        """Sends the request on a pooled connection and reads the response's head, as `ClientSession.request`
        would with `allow_redirects=False` and no total timeout. A failed connect is a typed error here (its timeout
        is ConnectTimedOut); a failure after it, aiohttp's own, with the connection closed: `send` types it."""
        request = aiohttp.ClientRequest(
            method, url, headers=fields, data=body, loop=self._loop, session=session, proxy=self._http_proxy,
            # The proxy's own request (a CONNECT) names the gateway too; aiohttp adds the proxy URL's credentials.
            proxy_headers=None if self._http_proxy is None else {"User-Agent": USER_AGENT},
            timer=_NO_TOTAL_DEADLINE, traces=[],
        )  # fmt: skip
        connector = session.connector
        assert connector is not None  # an open session has one
        try:
            connection = await connector.connect(request, traces=[], timeout=limits)
        except TimeoutError as exc:
            raise ConnectTimedOut() from exc
        except aiohttp.ClientError as exc:
            raise ConnectFailed() from exc
        assert connection.protocol is not None  # a connection just handed out has one
        # Bytes as they came (no auto_decompress): UpstreamResponse decodes only the bodies the gateway parses.
        connection.protocol.set_response_params(
            timer=_NO_TOTAL_DEADLINE, skip_payload=request.method == "HEAD", read_until_eof=True, auto_decompress=False,
            read_timeout=limits.sock_read,
        )  # fmt: skip
        try:
            response = await request.send(connection)
            try:
                await response.start(connection)
            except BaseException:
                response.close()
                raise
        except BaseException:
            connection.close()
            raise
        return response

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()  # a later send opens a new one
