"""The gateway served from the test process itself (uvicorn in a thread, a real socket),
for what a subprocess cannot be given: an injected credential or SDK transport."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import Any

import uvicorn

from core import gateway as gateway_module
from core.localhost import build_app


class InProcessGateway:
    def __init__(self, environ: Mapping[str, str], **options: Any) -> None:
        self._environ = dict(environ)
        self._options = options
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    def start(self, timeout: float = 10.0) -> InProcessGateway:
        gateway_module.reset()
        gateway_module.start(self._environ, **self._options)  # function_app.py then finds it started
        config = uvicorn.Config(build_app(), host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="inprocess-gateway", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("the in-process gateway did not start")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        gateway_module.reset()

    def __enter__(self) -> InProcessGateway:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
