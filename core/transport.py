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
from collections.abc import AsyncIterator, Iterable
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

import aiohttp
import yarl

from core.errors import GatewayError, upstream_timeout, upstream_unreachable


class UpstreamResponse:
    """An upstream answer whose headers have arrived; the body may still be in flight."""

    __slots__ = ("_response", "_group", "status", "headers")

    def __init__(self, response: aiohttp.ClientResponse, group: str) -> None:
        self._response = response
        self._group = group
        self.status = response.status
        self.headers = response.headers  # case-insensitive multidict

    async def read(self) -> bytes:
        try:
            return await self._response.read()
        except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
            raise _classify(exc, self._group) from exc
        finally:
            self._response.release()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """Yield body bytes as they arrive, without re-chunking."""
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
            raise _classify(exc, self._group) from exc

    def close(self) -> None:
        """Drop the connection (used when the client went away mid-stream)."""
        self._response.close()

    def release(self) -> None:
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
        self, method: str, url: str, headers: Iterable[tuple[str, str]], body: bytes | None, *, group: str
    ) -> UpstreamResponse:
        """Send a request and wait for the response headers.

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
                method, yarl.URL(url, encoded=True),
                headers=list(headers), data=body, allow_redirects=False, timeout=self._timeout,
                proxy=self._http_proxy, proxy_headers=self._proxy_headers,
            )
        except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
            raise _classify(exc, group) from exc
        return UpstreamResponse(response, group)

    async def aclose(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None


def _classify(exc: BaseException, group: str) -> GatewayError:
    # aiohttp's timeouts subclass both asyncio.TimeoutError and ClientError.
    if isinstance(exc, asyncio.TimeoutError):
        return upstream_timeout(group)
    return upstream_unreachable(group)


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
