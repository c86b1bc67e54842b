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

from core.localhost import build_app


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request head is not complete
    within `header_timeout` seconds of its first byte (or of the connection, for the first
    request). uvicorn itself times out only idle kept-alive connections, so a client sending
    its head a byte at a time (slowloris) held a connection for ever."""

    def __init__(self, *args: Any, header_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_timeout = header_timeout
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._start_header_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._header_timer is None:  # the next request on a kept-alive connection
            self._start_header_timer()

    def on_headers_complete(self) -> None:
        self._cancel_header_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def _start_header_timer(self) -> None:
        self._header_timer = self.loop.call_later(self._header_timeout, self._header_timed_out)

    def _cancel_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        self.transport.close()


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
        http=functools.partial(HeaderTimeoutProtocol, header_timeout=header_timeout),  # type: ignore[arg-type]
        limit_concurrency=limit_concurrency,
        access_log=False,  # the gateway writes its own structured line per request
        log_level="warning",
        lifespan="on",
    )
    server = _AnnouncingServer(config)
    with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C after its graceful shutdown
        server.run()
    sys.stdout.flush()
