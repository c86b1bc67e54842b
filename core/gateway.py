"""The process-wide gateway: the current configuration snapshot and the shared clients.

A request reads `gateway.state` once and uses that snapshot to the end, so a
configuration swap (hot reload) never changes a request in flight.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from core import heap, shutdown, telemetry
from core.auth import Authenticator
from core.budgets import Budgets
from core.config import ConfigError, in_file_order, located
from core.config.model import RuntimeConfig
from core.config.provider import ConfigProvider
from core.identity import TokenProvider
from core.models.fit import LearnedFits
from core.reload import ConfigRefresher
from core.resources.affinity import ResourceLocator
from core.routing import ModelRouter
from core.startup import BackgroundStart
from core.telemetry import Telemetry
from core.translation.usage import CountedOnce
from core.upstream.failover import Pools
from core.upstream.transport import Transport
from core.usage_table import TableAddress, UsageTable

DEFAULT_REFRESH_SECONDS = 60
DEFAULT_SECRET_REFRESH_SECONDS = 300
CONFIG_REFRESH_VARIABLE = "CONFIG_REFRESH_SECONDS"
SECRET_REFRESH_VARIABLE = "SECRET_REFRESH_SECONDS"
# How long the Functions host's import waits for the first load: under Flex Consumption's 30 s
# limit for app initialisation, with room for the host's own start.
START_WAIT_SECONDS = 20.0
logger = logging.getLogger("aoai_gateway")


@dataclass(frozen=True, slots=True)
class State:
    config: RuntimeConfig
    router: ModelRouter
    auth: Authenticator
    # Some caller key has limits: answers' tokens are counted. Known once per configuration, not looked up
    # among the keys on every call (a thousand keys cost each call a thousand steps).
    limited: bool

    @classmethod
    def build(cls, config: RuntimeConfig) -> State:
        limited = any(key.limits is not None for key in config.settings.api_keys)
        return cls(config, ModelRouter(config.routes), Authenticator(config.settings), limited)


class Gateway:
    def __init__(
        self,
        provider: ConfigProvider,
        config: RuntimeConfig,
        *,
        refresh_seconds: float,
        secret_refresh_seconds: float = 0.0,
        usage_table: TableAddress | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        self.state = State.build(config)
        settings = config.settings
        self.transport = Transport(
            connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout, proxy=settings.egress_proxy
        )
        self.locator = ResourceLocator()
        self.counted = CountedOnce()  # runs and background responses counted: a poll counts one once
        self.pools = Pools()  # pool members' health: kept across configuration reloads
        self.fits = LearnedFits()  # what each deployment's refusals taught (core/models/fit.py), likewise
        self.tokens = TokenProvider(provider.credential)
        self.refresher = (
            ConfigRefresher(provider, self.replace, refresh_seconds, secret_refresh_seconds)
            if provider.reloadable or provider.uses_secrets
            else None
        )
        self.budgets = Budgets(UsageTable(usage_table, provider.credential) if usage_table is not None else None)
        self.budgets.configure(settings.api_keys)
        self.telemetry = telemetry
        if telemetry is not None:
            telemetry.know_models(self.state.router.names())

    def replace(self, config: RuntimeConfig) -> None:
        """Serve `config` from the next request on (the egress proxy is the process's: not reloaded)."""
        log_warnings(config)
        self.state = State.build(config)
        self.budgets.configure(config.settings.api_keys)
        if self.telemetry is not None:
            self.telemetry.know_models(self.state.router.names())
        self.transport.set_timeouts(config.settings.connect_timeout, config.settings.read_timeout)

    def counts_usage(self, state: State) -> bool:
        """Whether answers' tokens are needed (metrics or budgets on), streams' too; off, nothing extra is asked."""
        return self.telemetry is not None or state.limited

    def on_request(self) -> None:
        if self.refresher is not None:
            self.refresher.ensure_running()

    async def aclose(self) -> None:
        if self.refresher is not None:
            self.refresher.stop()
        await self.budgets.aclose()
        if self.telemetry is not None:
            self.telemetry.shutdown()
        await self.transport.aclose()


_gateway: Gateway | None = None
_background: BackgroundStart[Gateway] | None = None
# A gateway bound to a context (a thread and the tasks it starts) instead of the process: the
# tests' in-process host runs several, each with its own configuration, in one process.
_bound: ContextVar[Gateway | None] = ContextVar("aoai_gateway_bound", default=None)


def start(environ: Mapping[str, str] | None = None, **options: Any) -> Gateway:
    """Load and validate the configuration once per process; raises ConfigError listing
    every problem, so an invalid configuration never serves (the local host). `options` are the
    ConfigProvider's (tests inject a credential and a Key Vault transport)."""
    global _gateway
    if _gateway is None:
        _gateway = load(os.environ if environ is None else environ, **options)
    return _gateway


def start_in_background(environ: Mapping[str, str] | None = None, **options: Any) -> None:
    """The Functions host's start: never raises, so function_app.py always indexes its routes.
    Until a load succeeds, requests get a 503 (`current()`) and /health the reason; loading is
    retried with backoff. A no-op when the process already has a gateway or is loading one."""
    global _background
    if _gateway is not None or _background is not None or _bound.get() is not None:
        return
    environ = os.environ if environ is None else environ
    _background = BackgroundStart(lambda: load(environ, **options), _serve_from_now_on)
    _background.start(START_WAIT_SECONDS)
    # The worker imports function_app.py on its event loop; SIGTERM (scale-in) would end it with counts unwritten.
    shutdown.flush_on_terminate(_flush_before_stopping)


async def _flush_before_stopping() -> None:
    if _gateway is not None:
        await _gateway.budgets.aclose()
        logger.info("stopping: usage counts flushed")


def load(environ: Mapping[str, str], **options: Any) -> Gateway:
    """A gateway for this configuration, not made the process's (`start` and `bind` do that)."""
    # The Azure SDKs log every HTTP call at INFO; the gateway's own lines are the ones to read.
    logging.getLogger("azure").setLevel(logging.WARNING)
    provider = ConfigProvider(environ, **options)
    config = provider.load()
    gateway = Gateway(
        provider, config,
        refresh_seconds=refresh_seconds(environ),
        secret_refresh_seconds=secret_refresh_seconds(environ),
        usage_table=TableAddress.from_environ(environ),
        telemetry=telemetry.configure(environ, provider.credential),
    )  # fmt: skip
    logger.info("configuration loaded from %s", provider.label)
    log_warnings(config)
    return gateway


def log_warnings(config: RuntimeConfig) -> None:
    """Every warning of a configuration now in use, with its line: an unknown key is often a mistyped one."""
    for warning in in_file_order(list(config.warnings)):
        logger.warning("configuration warning: %s", located(warning))


def _serve_from_now_on(gateway: Gateway) -> None:
    global _gateway
    _gateway = gateway
    heap.settle()  # the Functions host's process: what it loaded stays


def bind(gateway: Gateway) -> None:
    """Serve `gateway` in this context (a thread, and the tasks and threads it starts) whatever
    the process's is: how several gateways share a process."""
    _bound.set(gateway)


def current() -> Gateway:
    """The gateway this context serves; while the Functions host is still loading the process's,
    a 503 GatewayError."""
    if (bound := _bound.get()) is not None:
        return bound
    if _gateway is not None:
        return _gateway
    if _background is not None:
        raise _background.unavailable()
    return start()


def unready_reason() -> str | None:
    """Why the gateway cannot serve yet (safe to show: names sources and settings, never a secret),
    or None when it can."""
    if _gateway is not None or _bound.get() is not None:
        return None
    return _background.reason if _background is not None else "the gateway has not been started"


def retry_after_seconds() -> int:
    return _background.retry_after() if _background is not None else 1


def refresh_seconds(environ: Mapping[str, str]) -> float:
    return _seconds(environ, CONFIG_REFRESH_VARIABLE, DEFAULT_REFRESH_SECONDS, never_allowed=False)


def secret_refresh_seconds(environ: Mapping[str, str]) -> float:
    """SECRET_REFRESH_SECONDS: how often the configuration's Key Vault secrets are read again (0: only when an
    upstream refuses a key)."""
    return _seconds(environ, SECRET_REFRESH_VARIABLE, DEFAULT_SECRET_REFRESH_SECONDS, never_allowed=True)


def _seconds(environ: Mapping[str, str], name: str, default: float, *, never_allowed: bool) -> float:
    """An app setting in seconds: `default` when unset; positive, or also 0 ("never") when `never_allowed`."""
    value = environ.get(name, "").strip()
    if not value:
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if never_allowed and seconds >= 0:
        return seconds
    if not never_allowed and seconds > 0:
        return seconds
    what = "a number of seconds (0: never)" if never_allowed else "a positive number of seconds"
    raise ConfigError([f"{name} must be {what}, not {value!r}."])
