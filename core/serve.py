"""Run the local host under uvicorn, announcing the bound address once it listens."""

from __future__ import annotations

import importlib.util
import socket
import sys

import uvicorn

from core.localhost import build_app


class _AnnouncingServer(uvicorn.Server):
    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            host, port = self.servers[0].sockets[0].getsockname()[:2]
            # Tests and `make run` read this line to learn the port.
            print(f"aoai-gateway listening on http://{host}:{port}", flush=True)


def run(host: str, port: int) -> None:
    config = uvicorn.Config(
        build_app(),
        host=host,
        port=port,
        loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
        http="httptools" if importlib.util.find_spec("httptools") else "h11",
        access_log=False,  # the gateway writes its own structured line per request
        log_level="warning",
        lifespan="on",
    )
    server = _AnnouncingServer(config)
    try:
        server.run()
    except KeyboardInterrupt:
        pass  # uvicorn re-raises Ctrl-C after its graceful shutdown; nothing left to report
    sys.stdout.flush()
