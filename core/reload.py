"""Hot reload: re-read a blob configuration every CONFIG_REFRESH_SECONDS.

Each check is a conditional GET by ETag. A changed configuration is validated in
full before it replaces the running one; an invalid or unreachable one is logged
and the last good configuration keeps serving. Requests in flight keep the
snapshot they started with. Every instance runs its own loop, so all converge
without coordination.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from core.config import ConfigError
from core.config.model import RuntimeConfig
from core.config.provider import ConfigProvider
from core.config.sources import SourceError

logger = logging.getLogger("aoai_gateway")


class ConfigRefresher:
    def __init__(self, provider: ConfigProvider, apply: Callable[[RuntimeConfig], None], interval: float) -> None:
        self._provider = provider
        self._apply = apply
        self._interval = interval
        self._task: asyncio.Task[None] | None = None

    def ensure_running(self) -> None:
        """Start the loop in the running event loop (Functions has no startup hook: the
        first request starts it)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.refresh_once()

    async def refresh_once(self) -> bool:
        """True when a new configuration was applied."""
        try:
            # Blob and Key Vault clients are synchronous: keep them off the event loop.
            config = await asyncio.to_thread(self._provider.reload)
        except SourceError as exc:
            logger.warning(
                "config reload skipped, the source could not be read (still serving the last good one): %s", exc
            )
            return False
        except ConfigError as exc:
            logger.error(
                "config reload rejected, the new version is invalid (still serving the last good one):\n%s", exc
            )
            return False
        except Exception:
            logger.exception("config reload failed (still serving the last good one)")
            return False
        if config is None:
            return False
        self._apply(config)
        logger.info("configuration reloaded from %s", self._provider.label)
        return True
