"""Hot reload: re-read a blob configuration every CONFIG_REFRESH_SECONDS, and its Key Vault secrets every
SECRET_REFRESH_SECONDS.

Each check of the blob is a conditional GET by ETag. A changed configuration is validated in
full before it replaces the running one; an invalid or unreachable one is logged
and the last good configuration keeps serving. Requests in flight keep the
snapshot they started with. Every instance runs its own loop, so all converge
without coordination.

Secrets rotate without the configuration changing: the secrets the running configuration used are read again, and
when one has a new value the configuration is loaded again with it. An upstream that refuses the gateway's key
(401) may mean the key was rotated and the old one retired: that checks the secrets at once, at most once every
SECRET_RETRY_SECONDS.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from core.config import ConfigError
from core.config.model import RuntimeConfig
from core.config.provider import ConfigProvider
from core.config.sources import SourceError

logger = logging.getLogger("aoai_gateway")

SECRET_RETRY_SECONDS = 60.0


class ConfigRefresher:
    def __init__(
        self,
        provider: ConfigProvider,
        apply: Callable[[RuntimeConfig], None],
        interval: float,
        secret_interval: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`interval`: seconds between checks of a reloadable source; `secret_interval`: between reads of the
        configuration's Key Vault secrets (0: only when an upstream refuses a key)."""
        self._provider = provider
        self._apply = apply
        self._interval = interval
        self._secret_interval = secret_interval
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._checking_secrets: asyncio.Task[bool] | None = None
        self._secrets_checked_at = clock()
        self._refused_at = float("-inf")

    def ensure_running(self) -> None:
        """Start the loop in the running event loop (Functions has no startup hook: the
        first request starts it)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._checking_secrets is not None:
            self._checking_secrets.cancel()

    def key_refused(self) -> None:
        """An upstream answered 401: check the secrets now, unless that was done in the last SECRET_RETRY_SECONDS."""
        now = self._clock()
        if not self._provider.uses_secrets or now - self._refused_at < SECRET_RETRY_SECONDS:
            return
        self._refused_at = now
        self._start_secret_check()

    async def _run(self) -> None:
        reload_at = self._clock() + self._interval
        while True:
            secrets_at = self._secrets_checked_at + self._secret_interval if self._secret_interval > 0 else None
            due = reload_at if secrets_at is None else min(reload_at, secrets_at)
            await asyncio.sleep(max(due - self._clock(), 0.0))
            now = self._clock()
            if now >= reload_at:
                reload_at = now + self._interval
                if self._provider.reloadable:
                    await self.refresh_once()
            if secrets_at is not None and now >= secrets_at:
                if self._provider.uses_secrets:
                    await self._start_secret_check()
                else:
                    self._secrets_checked_at = now

    def _start_secret_check(self) -> asyncio.Task[bool]:
        if self._checking_secrets is None or self._checking_secrets.done():
            self._checking_secrets = asyncio.get_running_loop().create_task(self.refresh_secrets_once())
        return self._checking_secrets

    async def refresh_once(self) -> bool:
        """True when a new configuration was applied."""
        return await self._refresh(self._provider.reload, "config reload")

    async def refresh_secrets_once(self) -> bool:
        """True when a rotated secret brought a new configuration."""
        self._secrets_checked_at = self._clock()
        return await self._refresh(self._provider.refresh_secrets, "secret refresh")

    async def _refresh(self, load: Callable[[], RuntimeConfig | None], what: str) -> bool:
        try:
            # Blob and Key Vault clients are synchronous: keep them off the event loop.
            config = await asyncio.to_thread(load)
        except SourceError as exc:
            logger.warning("%s skipped, the source could not be read (still serving the last good one): %s", what, exc)
            return False
        except ConfigError as exc:
            logger.error("%s rejected, the new version is invalid (still serving the last good one):\n%s", what, exc)
            return False
        except Exception:
            logger.exception("%s failed (still serving the last good one)", what)
            return False
        if config is None:
            return False
        self._apply(config)
        if what == "config reload":
            logger.info("configuration reloaded from %s", self._provider.label)
        else:
            logger.info("configuration loaded again with rotated Key Vault secrets")
        return True
