"""The upstream transport: one pooled aiohttp session per process.

Why aiohttp and not httpx: measured on this project's 2-core machines, httpx's
default pool (httpcore) collapses under concurrency (about 160 req/s at 32
concurrent requests, 6 ms CPU per request) while aiohttp sustains over 2,000
req/s at under 0.5 ms; see README "Performance" and bench/.

The transport knows nothing about OpenAI or Azure: it sends bytes and hands back
status, headers and a body that can be read whole or streamed as it arrives.
Errors are classified (unreachable vs timeout) so the proxy can decide whether
to try another backend before anything reached the client.
"""

from __future__ import annotations

import asyncio
import base64
import zlib
from collections.abc import AsyncIterable, Iterable
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp
import yarl

from core.errors import (
    GatewayError,
    upstream_bad_response,
    upstream_closed,
    upstream_response_too_large,
    upstream_timeout,
    upstream_unreachable,
)

ERROR_BODY_BYTES = 64 * 1024  # of an upstream error body: its message is at the start
_COMPRESSED = frozenset({"gzip", "x-gzip", "deflate"})
_GZIP_OR_ZLIB = 32 + zlib.MAX_WBITS  # zlib detects the gzip or zlib header itself
_DECODED_PIECE = 1024 * 1024  # at most this much decoded data per compressed chunk of a stream


class UpstreamResponse:
    """An upstream answer whose headers have arrived; the body may still be in flight.

    Bodies the gateway parses (JSON, SSE, errors) are decoded from gzip or deflate,
    in case an upstream ignores `accept-encoding: identity`; a body relayed byte for
    byte keeps its encoding (and its content-encoding header goes with it).
    """

    __slots__ = ("_response", "_group", "_decoder", "status", "headers")

    def __init__(self, response: aiohttp.ClientResponse, group: str) -> None:
        self._response = response
        self._group = group
        self._decoder: zlib._Decompress | None = None  # once decode() was called on a compressed body
        self.status = response.status
        self.headers = response.headers  # case-insensitive multidict

    def decode(self) -> None:
        """Decode the body from here on; GatewayError 502 for an encoding the gateway cannot decode."""
        encoding = self.headers.get("content-encoding", "identity").strip().lower()
        if encoding in _COMPRESSED:
            self._decoder = zlib.decompressobj(_GZIP_OR_ZLIB)
        elif encoding != "identity":
            self.close()
            raise upstream_bad_response(self._group, f"answered in an encoding the gateway cannot decode ({encoding})")

    async def read(self, limit: int) -> bytes:
        """The whole body, decoded. GatewayError 502 as soon as it exceeds `limit` bytes (nothing more is read)."""
        self.decode()
        try:
            length = self._response.content_length
            if length is not None and length > limit:
                raise upstream_response_too_large(self._group, limit)
            parts: list[bytes] = []
            size = 0
            while chunk := await self._next(limit + 1 - size):
                size += len(chunk)
                if size > limit:
                    raise upstream_response_too_large(self._group, limit)
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
            while size < limit and (chunk := await self._next(limit - size)):
                parts.append(chunk)
                size += len(chunk)
        except GatewayError:
            pass  # the status says enough
        except BaseException:
            self.close()
            raise
        self.release()  # aiohttp keeps the connection only when the body was read to its end
        return b"".join(parts)[:limit]

    async def next_chunk(self) -> bytes:
        """The next piece of the body as it arrives, without re-chunking; b"" at its end."""
        return await self._next(_DECODED_PIECE)

    async def _next(self, most: int) -> bytes:
        decoder = self._decoder
        while True:
            if decoder is not None and decoder.unconsumed_tail:
                chunk = decoder.unconsumed_tail  # what the last call left for want of room
            else:
                try:
                    chunk = await self._response.content.readany()
                except (TimeoutError, aiohttp.ClientError) as exc:
                    raise _classify(exc, self._group, answered=True) from exc
            if decoder is None:
                return chunk
            try:
                # `most` bounds what a small compressed chunk may expand to (a zip bomb).
                decoded = decoder.decompress(chunk, most) if chunk else decoder.flush()
            except zlib.error as exc:
                raise upstream_bad_response(self._group, "sent a body that does not decode") from exc
            if decoded or not chunk:
                return decoded

    def close(self) -> None:
        """Drop the connection (the client went away, or the answer is broken or unwanted)."""
        self._response.close()

    def release(self) -> None:
        """Give the connection back to the pool; aiohttp closes it instead when the body was not read to its end."""
        self._response.release()


class Transport:
    """A pooled HTTP/1.1 keep-alive client, created lazily inside the running loop.

    `proxy` routes every upstream connection through an egress proxy: `socks5://...`
    through a SOCKS connector, `http(s)://[user:password@]host:port` as an HTTP
    proxy (CONNECT for https upstreams). Either way connections stay pooled.
    """

    def __init__(
        self, *, connect_timeout: float, read_timeout: float, proxy: str | None = None, max_connections: int = 0
    ) -> None:
        self.set_timeouts(connect_timeout, read_timeout)
        self._max_connections = max_connections
        self._socks_proxy = proxy if proxy is not None and proxy.startswith("socks") else None
        self._http_proxy: str | None = None
        self._proxy_headers: dict[str, str] | None = None
        if proxy is not None and self._socks_proxy is None:
            self._http_proxy, self._proxy_headers = _http_proxy(proxy)
        self._session: aiohttp.ClientSession | None = None

    def set_timeouts(self, connect_timeout: float, read_timeout: float) -> None:
        """Applies to requests sent from now on (a reloaded configuration may change them)."""
        self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=connect_timeout, sock_read=read_timeout)

    def _connector(self) -> aiohttp.TCPConnector:
        options: dict[str, Any] = {"limit": self._max_connections, "ttl_dns_cache": 300}
        if self._socks_proxy is not None:
            from aiohttp_socks import ProxyConnector

            return ProxyConnector.from_url(self._socks_proxy, **options)
        return aiohttp.TCPConnector(**options)

    def _get_session(self) -> aiohttp.ClientSession:
        session = self._session
        if session is None or session.closed:
            connector = self._connector()
            session = aiohttp.ClientSession(
                connector=connector,
                # Bytes pass through untouched (upstream requests ask for identity encoding).
                auto_decompress=False,
                skip_auto_headers=("User-Agent", "Accept-Encoding", "Content-Type"),
            )
            self._session = session
        return session

    async def send(
        self,
        method: str,
        url: str,
        headers: Iterable[tuple[str, str]],
        body: bytes | AsyncIterable[bytes] | None,
        *,
        group: str,
    ) -> UpstreamResponse:
        """Send a request and wait for the response headers. An iterable body (an upload) is streamed as it comes.

        Raises GatewayError 502 when the upstream cannot be reached and 504 when it
        does not answer within the configured timeouts.
        """
        session = self._get_session()
        if self._proxy_headers is not None and url.startswith("http://"):
            # aiohttp sends proxy_headers only with CONNECT (https upstreams); a plain-http
            # request is forwarded as is, so it carries the proxy's credentials itself.
            headers = [*headers, *self._proxy_headers.items()]
        try:
            response = await session.request(
                # Sent exactly as built: aiohttp would otherwise re-normalise it (resolve dot-segments, re-encode).
                method,
                yarl.URL(url, encoded=True),
                headers=list(headers),
                data=body,
                allow_redirects=False,
                timeout=self._timeout,
                proxy=self._http_proxy,
                proxy_headers=self._proxy_headers,
            )
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise _classify(exc, group) from exc
        return UpstreamResponse(response, group)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


def _classify(exc: BaseException, group: str, *, answered: bool = False) -> GatewayError:
    """`answered`: the response headers had come, so the upstream was reached and then went away."""
    # aiohttp's timeouts subclass both asyncio.TimeoutError and ClientError.
    if isinstance(exc, asyncio.TimeoutError):
        return upstream_timeout(group)
    return upstream_closed(group) if answered else upstream_unreachable(group)


def _http_proxy(url: str) -> tuple[str, dict[str, str] | None]:
    """The proxy URL without credentials, and the Proxy-Authorization they become
    (aiohttp does not take credentials from the URL itself)."""
    parts = urlsplit(url)
    if parts.username is None:
        return url, None
    credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    netloc = parts.hostname or ""
    if parts.port:
        netloc += f":{parts.port}"
    bare = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    return bare, {"Proxy-Authorization": "Basic " + base64.b64encode(credentials).decode()}
