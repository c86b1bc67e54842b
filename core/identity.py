"""Entra ID access tokens for the upstream, from the app's credential (core/config/credential.py)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from core.errors import GatewayError

if TYPE_CHECKING:  # azure-core comes with azure-identity, imported only when a token is needed
    from azure.core.credentials import AccessToken, TokenCredential

COGNITIVE_SERVICES_SCOPE = "https://cognitiveservices.azure.com/.default"
logger = logging.getLogger("aoai_gateway")


class TokenProvider:
    """A bearer token for one scope, refreshed before it expires.

    A token inside the refresh margin is still served while one background
    refresh runs; only an expired (or missing) token makes callers wait, and then
    all of them wait on the same refresh.
    """

    REFRESH_MARGIN_SECONDS = 300
    MIN_VALIDITY_SECONDS = 30
    # A caller waits this long for a token at most: an identity endpoint that hangs (a first deploy whose
    # identity is not ready yet) must not hold requests, nor the Functions host's start, without end.
    WAIT_SECONDS = 15.0

    def __init__(
        self, credential: TokenCredential, scope: str = COGNITIVE_SERVICES_SCOPE, clock: Callable[[], float] = time.time
    ) -> None:
        self._credential = credential
        self._scope = scope
        self._clock = clock
        self._token: AccessToken | None = None
        self._refreshing: asyncio.Future[AccessToken] | None = None

    async def token(self) -> str:
        current = self._token
        left = current.expires_on - self._clock() if current is not None else 0.0
        if current is not None and left > self.REFRESH_MARGIN_SECONDS:
            return current.token
        if self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._refresh())
            # A background refresh may fail with nobody awaiting it: it is logged in _refresh.
            self._refreshing.add_done_callback(lambda done: done.cancelled() or done.exception())
        if current is not None and left > self.MIN_VALIDITY_SECONDS:
            return current.token  # still good: let the refresh finish in the background
        try:
            return (await asyncio.wait_for(asyncio.shield(self._refreshing), self.WAIT_SECONDS)).token
        except Exception as exc:
            raise GatewayError(
                502,
                "The gateway could not get an Entra ID token for the upstream.",
                type="api_error",
                code="upstream_auth_failed",
            ) from exc

    async def _refresh(self) -> AccessToken:
        try:
            token = await asyncio.to_thread(self._credential.get_token, self._scope)
            self._token = token
            return token
        except Exception:
            logger.exception("Entra ID token refresh failed for %s", self._scope)
            raise
        finally:
            self._refreshing = None
