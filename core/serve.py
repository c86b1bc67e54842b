"""Run the local host under uvicorn, announcing the bound address once it listens.

On Azure the platform's front end bounds connections; here uvicorn faces clients
directly, so it gets a connection limit and a deadline for each request head.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import socket
import sys
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from core import heap
from core.localhost import build_app


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request head is not complete
    within `header_timeout` seconds of its first byte (or of the connection, for the first
    request). uvicorn itself times out only idle kept-alive connections, so a client sending
    its head a byte at a time (slowloris) held a connection for ever.

    A timer per request would cost one on every call; instead each connection notes when its
    head began, and one sweep per server, a few times per `header_timeout`, closes the late."""

    def __init__(self, *args: Any, heads: HeadSweep, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._heads = heads
        self.head_began: float | None = None  # event loop time; None while no head is awaited

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.head_began = self.loop.time()
        self._heads.watch(self)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self.head_began is None:  # the next request on a kept-alive connection
            self.head_began = self.loop.time()

    def on_headers_complete(self) -> None:
        self.head_began = None
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._heads.forget(self)
        super().connection_lost(exc)

    def head_timed_out(self) -> None:
        self.head_began = None
        self.transport.close()


class HeadSweep:
    """Closes the connections whose request head is late: one timer per server, not one per request."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._every = min(max(timeout / 4, 0.05), 1.0)  # a late head is closed within a quarter of the timeout
        self._connections: set[HeaderTimeoutProtocol] = set()
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, connection: HeaderTimeoutProtocol) -> None:
        self._connections.add(connection)
        if self._timer is None:
            self._timer = connection.loop.call_later(self._every, self._sweep)

    def forget(self, connection: HeaderTimeoutProtocol) -> None:
        self._connections.discard(connection)

    def _sweep(self) -> None:
        self._timer = None
        loop = asyncio.get_running_loop()
        late = loop.time() - self._timeout
        for connection in [c for c in self._connections if c.head_began is not None and c.head_began <= late]:
            connection.head_timed_out()
        if self._connections:
            self._timer = loop.call_later(self._every, self._sweep)


class _AnnouncingServer(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            # Tests and `make run` read this line to learn the port.
            print(f"aoai-gateway listening on http://{host}:{port}", flush=True)


HEADER_TIMEOUT_SECONDS = 10.0
CONNECTION_LIMIT = 1000


def run(
    host: str, port: int, *, header_timeout: float = HEADER_TIMEOUT_SECONDS, limit_concurrency: int = CONNECTION_LIMIT
) -> None:
    """`limit_concurrency`: connections (or requests in flight) beyond which uvicorn answers 503."""
    config = uvicorn.Config(
        build_app(),
        host=host,
        port=port,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http=functools.partial(HeaderTimeoutProtocol, heads=HeadSweep(header_timeout)),  # type: ignore[arg-type]
        limit_concurrency=limit_concurrency,
        access_log=False,  # the gateway writes its own structured line per request
        proxy_headers=False,  # nothing reads the client's address; X-Forwarded-* would cost every request a parse
        server_header=False,  # no `server: uvicorn` telling every caller what to probe for (Date stays: HTTP asks it)
        log_level="warning",
        lifespan="on",
    )
    server = _AnnouncingServer(config)
    heap.settle()  # everything is loaded: the app, its configuration, its clients
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C after its graceful shutdown
        server.run()
    sys.stdout.flush()
