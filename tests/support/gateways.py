"""What the gateway fixtures (conftest.py) hand a test: a gateway process, or with GATEWAY_IN_PROCESS=1 one served
from this process. Tests annotate with these, so the same test types check in either mode."""

from __future__ import annotations

from collections.abc import Callable

from tests.support.gateway_process import GatewayProcess
from tests.support.inprocess_gateway import InProcessGateway

Gateway = GatewayProcess | InProcessGateway
StartGateway = Callable[..., Gateway]  # start_gateway / start_gateway_session: (config text, environment) -> Gateway
