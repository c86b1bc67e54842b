"""The process-wide gateway: the current configuration snapshot and the shared transport.

A request reads `gateway.state` once and uses that snapshot to the end, so a
later config swap never changes a request in flight.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from core.affinity import ResourceLocator
from core.auth import Authenticator
from core.config.load import load_config
from core.config.model import RuntimeConfig
from core.routing import Router
from core.transport import Transport


@dataclass(frozen=True, slots=True)
class State:
    config: RuntimeConfig
    router: Router
    auth: Authenticator

    @classmethod
    def build(cls, config: RuntimeConfig) -> State:
        return cls(config, Router(config.routes), Authenticator(config.settings))


class Gateway:
    def __init__(self, config: RuntimeConfig) -> None:
        self.state = State.build(config)
        settings = config.settings
        self.transport = Transport(connect_timeout=settings.connect_timeout, read_timeout=settings.read_timeout)
        self.locator = ResourceLocator()

    async def aclose(self) -> None:
        await self.transport.aclose()


_gateway: Gateway | None = None


def start(environ: Mapping[str, str] | None = None) -> Gateway:
    """Load and validate the configuration once per process; raises ConfigError
    listing every problem, so an invalid configuration never serves."""
    global _gateway
    if _gateway is None:
        _gateway = Gateway(load_config(os.environ if environ is None else environ))
    return _gateway


def current() -> Gateway:
    return _gateway if _gateway is not None else start()
