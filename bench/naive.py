"""`python -m bench.naive`: the floor the gateway is measured against, a proxy that only forwards.

One route, POST /v1/chat/completions: the body goes as it is to the simulator's gpt-4o deployment with the
simulator's api-key (what the benchmark's direct target sends), and the answer comes back with the upstream's status
and content type, relayed chunk by chunk when the request says "stream": true. No auth, no routing, no checks, no
logging, no limits: what any 30-line proxy costs on the gateway's own stack (uvicorn with uvloop and httptools,
Starlette, one pooled aiohttp session). Prints `naive-proxy listening on http://host:port` once it listens.
The upstream is $BENCH_SIM_URL (or --upstream). `--client httpx` forwards through one httpx.AsyncClient with its
defaults instead, the transport the gateway did not choose (`python -m bench.transports` measures both).
See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import os
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

import aiohttp
import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

if TYPE_CHECKING:
    import httpx  # imported when used: the aiohttp proxy, the benchmark's floor, loads nothing it does not use

READY = "naive-proxy listening on "
UPSTREAM_PATH = "/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
UPSTREAM_HEADERS = {"api-key": "bench-upstream-key", "content-type": "application/json"}


CLIENTS = ("aiohttp", "httpx")
Chat = Callable[[Request], Awaitable[Response]]


def make_app(upstream_url: str, client: str = "aiohttp") -> Starlette:
    url = upstream_url.rstrip("/") + UPSTREAM_PATH
    chat, aclose = _aiohttp_chat(url) if client == "aiohttp" else _httpx_chat(url)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        await aclose()

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])], lifespan=lifespan)


def _aiohttp_chat(url: str) -> tuple[Chat, Callable[[], Awaitable[None]]]:
    """The endpoint through one aiohttp session with aiohttp's defaults (no cap on connections), and its closing."""
    session: aiohttp.ClientSession | None = None

    async def chat(request: Request) -> Response:
        nonlocal session
        if session is None:  # created in the running loop, on first use
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        body = await request.body()
        upstream = await session.post(url, data=body, headers=UPSTREAM_HEADERS)
        media_type = upstream.headers.get("content-type")
        if orjson.loads(body).get("stream") is True:
            return StreamingResponse(relay(upstream), upstream.status, media_type=media_type)
        return Response(await upstream.read(), upstream.status, media_type=media_type)

    async def relay(upstream: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.content.iter_any():
                yield chunk
        finally:
            upstream.release()

    async def aclose() -> None:
        if session is not None:
            await session.close()

    return chat, aclose


def _httpx_chat(url: str) -> tuple[Chat, Callable[[], Awaitable[None]]]:
    """The endpoint through one httpx.AsyncClient with httpx's defaults, and its closing."""
    client: httpx.AsyncClient | None = None

    async def chat(request: Request) -> Response:
        nonlocal client
        if client is None:  # created in the running loop, on first use
            import httpx

            client = httpx.AsyncClient()
        body = await request.body()
        stream = orjson.loads(body).get("stream") is True
        upstream = await client.send(
            client.build_request("POST", url, content=body, headers=UPSTREAM_HEADERS), stream=stream
        )
        media_type = upstream.headers.get("content-type")
        if stream:
            return StreamingResponse(relay(upstream), upstream.status_code, media_type=media_type)
        return Response(upstream.content, upstream.status_code, media_type=media_type)

    async def relay(upstream: httpx.Response) -> AsyncIterator[bytes]:
        try:
            async for chunk in upstream.aiter_raw():
                yield chunk
        finally:
            await upstream.aclose()

    async def aclose() -> None:
        if client is not None:
            await client.aclose()

    return chat, aclose


class _AnnouncingServer(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            print(f"{READY}http://{host}:{port}", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.naive", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--upstream", default=os.environ.get("BENCH_SIM_URL"), help="default: $BENCH_SIM_URL")
    parser.add_argument("--client", choices=CLIENTS, default="aiohttp", help="the upstream client (default: aiohttp)")
    args = parser.parse_args(argv)
    if not args.upstream:
        parser.error("no upstream: set BENCH_SIM_URL or pass --upstream")
    # As core/serve.py runs the gateway, less what is the gateway's own (its header-timeout protocol, its limit).
    config = uvicorn.Config(
        make_app(args.upstream, args.client),
        host=args.host,
        port=args.port,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools",
        access_log=False,
        log_level="warning",
        lifespan="on",
    )
    with contextlib.suppress(KeyboardInterrupt):
        _AnnouncingServer(config).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
