"""Loading the configuration in the background until it succeeds (the Functions host).

An exception while the Functions host imports function_app.py leaves the instance with no
functions indexed: every route, /health included, answers 404 until someone restarts the app.
On a first deploy that is the normal case for a while (role assignments still propagating, the
config blob or a Key Vault secret not there yet). So on that host a background thread loads the
configuration and retries with backoff; meanwhile requests get a 503 that says why, and the
first successful load is served without a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from core.config import ConfigError
from core.errors import GatewayError

logger = logging.getLogger("aoai_gateway")
Loaded = TypeVar("Loaded")

FIRST_RETRY_SECONDS = 1.0
MAX_RETRY_SECONDS = 60.0


class BackgroundStart(Generic[Loaded]):
    def __init__(self, load: Callable[[], Loaded], on_loaded: Callable[[Loaded], None]) -> None:
        self._load = load
        self._on_loaded = on_loaded
        self._first_attempt_done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aoai-gateway-config-loader", daemon=True)
        self.reason = "the configuration is still loading"
        self._next_attempt = time.monotonic()

    def start(self, wait_seconds: float) -> None:
        """Start loading; wait up to `wait_seconds` for the first attempt, so a healthy app serves its
        first request loaded (Flex Consumption allows 30 s for app initialisation)."""
        self._thread.start()
        self._first_attempt_done.wait(wait_seconds)

    def unavailable(self) -> GatewayError:
        """What a request gets while the configuration is not loaded."""
        return GatewayError(
            503,
            "The gateway has not loaded its configuration yet and keeps retrying; GET /health says why.",
            type="api_error",
            code="config_unavailable",
            headers={"Retry-After": str(self.retry_after())},
        )

    def retry_after(self) -> int:
        return max(1, round(self._next_attempt - time.monotonic()))

    def _run(self) -> None:
        delay = FIRST_RETRY_SECONDS
        attempt = 0
        while True:  # a daemon thread: it ends with the process
            attempt += 1
            try:
                loaded = self._load()
            except ConfigError as exc:
                self.reason = "; ".join(exc.problems)
            except Exception as exc:  # an SDK failing in an unforeseen way must not end the retries
                logger.exception("configuration load failed unexpectedly")
                self.reason = f"loading the configuration failed ({type(exc).__name__}; see the log)"
            else:
                self._on_loaded(loaded)
                logger.info("serving from attempt %d on", attempt)
                self._first_attempt_done.set()
                return
            self._next_attempt = time.monotonic() + delay
            logger.error("configuration not loaded (attempt %d, next in %.0f s): %s", attempt, delay, self.reason)
            self._first_attempt_done.set()
            time.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_SECONDS)
