"""The gateway served from the test process itself: uvicorn in a thread, on a real 127.0.0.1 socket.

For what a subprocess cannot be given (an injected credential or SDK transport), and for coverage
and mutation tools, which see only the lines this process runs (GATEWAY_IN_PROCESS=1, conftest.py).
Each gateway is bound to its server thread (core.gateway.bind), so several with different
configurations serve side by side; its log lines are the ones that thread and its tasks write.
"""

from __future__ import annotations

import io
import logging
import threading
import time
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import Any

import uvicorn
from starlette.types import ASGIApp

from core import gateway as gateway_module
from core.localhost import build_app

# Which in-process gateway a log record comes from: set in its server thread, inherited by its tasks.
_serving: ContextVar[InProcessGateway | None] = ContextVar("inprocess_gateway", default=None)


class _GatewayLog(logging.Handler):
    """What `python -m core serve` writes to stderr (`%(message)s`, tracebacks included), for one gateway."""

    def __init__(self, owner: InProcessGateway) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter("%(message)s"))
        self._owner = owner
        self._text = io.StringIO()
        self._text_lock = threading.Lock()  # emit() runs in the server thread, text() in the test's

    def emit(self, record: logging.LogRecord) -> None:
        if _serving.get() is self._owner:
            line = self.format(record) + "\n"
            with self._text_lock:
                self._text.write(line)

    def text(self) -> str:
        with self._text_lock:
            return self._text.getvalue()


class InProcessGateway:
    def __init__(
        self, environ: Mapping[str, str], *, wrap_app: Callable[[ASGIApp], ASGIApp] | None = None, **options: Any
    ) -> None:
        """`wrap_app`: wraps the app in what another ASGI server would do differently (a scope it fills otherwise)."""
        self._environ = dict(environ)
        self._wrap_app = wrap_app
        self._options = options  # the ConfigProvider's: an injected credential or Key Vault transport
        self._log = _GatewayLog(self)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self.url = ""

    def start(self, timeout: float = 20.0) -> InProcessGateway:
        # The gateway's own lines at the level `serve` would log them (LOG_LEVEL, default INFO).
        logging.getLogger("aoai_gateway").setLevel(self._environ.get("LOG_LEVEL", "INFO").upper())
        logging.getLogger().addHandler(self._log)
        self._thread = threading.Thread(target=self._serve, name="inprocess-gateway", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while self._server is None or not self._server.started:
            if self._failure is not None or not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"gateway did not start: {self._failure!r}\n{self.logs()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"gateway did not start within {timeout}s:\n{self.logs()}")
            time.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def _serve(self) -> None:
        _serving.set(self)
        try:
            gateway_module.bind(gateway_module.load(self._environ, **self._options))
            # log_config=None: uvicorn's own lines propagate to the root logger, and so to this gateway's log.
            app: ASGIApp = build_app()
            if self._wrap_app is not None:
                app = self._wrap_app(app)
            config = uvicorn.Config(
                app, host="127.0.0.1", port=0, log_level="warning", log_config=None, lifespan="on", server_header=False
            )
            self._server = uvicorn.Server(config)
        except Exception as exc:  # reported by start(), with the log
            self._failure = exc
            return
        self._server.run()

    def logs(self) -> str:
        return self._log.text()

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        logging.getLogger().removeHandler(self._log)

    def __enter__(self) -> InProcessGateway:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
