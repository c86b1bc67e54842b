"""Caller authentication.

Callers present a key as `Authorization: Bearer KEY` (what OpenAI SDKs send) or
`api-key: KEY` (what Azure SDKs send). The presented key is looked up by its BLAKE2s
digest, so finding it costs the same however many keys there are (comparing it with
each key in turn cost a gateway of 1,000 keys a million instructions per call:
`python -m bench.instructions --keys 1000`), and timing tells nothing about the keys:
what a lookup's time can depend on is the digest of what the caller sent, and no
digest says anything about the key behind it. (BLAKE2s, a cryptographic hash as strong
for this as SHA-256, is hashlib's own: OpenSSL's SHA-256 cost a call 2.7 thousand
instructions more, most of them copying its context to finish the digest.)
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

from core.config.model import CallerKey, GatewaySettings
from core.errors import invalid_api_key, model_not_found


@dataclass(slots=True)
class Caller:
    """Who calls: one per gateway key, made with the configuration, and one per call of a pass-through caller (never
    changed: not a frozen dataclass only because a frozen one costs each call that makes it three times as much)."""

    name: str  # logged; never the key itself
    key: CallerKey | None  # the matched gateway key, None when keys are not in use
    presented_key: str | None  # what the caller sent; forwarded only to pass-through backends

    def check_model(self, model: str) -> None:
        # The same answer as for an unknown model, so a key cannot probe which ids exist.
        if self.key is not None and not self.key.allows(model):
            raise model_not_found(model)


ANONYMOUS = Caller("anonymous", None, None)


def presented_key(headers: Mapping[str, str]) -> str | None:
    authorization = headers.get("authorization")
    if authorization:
        # HTTP allows any run of spaces and tabs after the scheme, whose case does not matter.
        parts = authorization.split(None, 1)
        if len(parts) == 2 and parts[0].lower() == "bearer":
            return parts[1].rstrip()
    api_key = headers.get("api-key")
    return api_key.strip() or None if api_key else None


class Authenticator:
    def __init__(self, settings: GatewaySettings) -> None:
        # (Validation refuses two entries with one key; were there two, the last would be the one matched.)
        # Each key's caller is made once, not per call.
        self._callers = {_digest(key.key): Caller(key.name, key, None) for key in settings.api_keys}

    def authenticate(self, headers: Mapping[str, str]) -> Caller:
        presented = presented_key(headers)
        if not self._callers:
            # Anonymous access was allowed explicitly, or the upstream checks the
            # caller's own key (pass-through); config validation ensures one of them.
            return Caller("pass-through", None, presented) if presented else ANONYMOUS
        if presented is None:
            raise invalid_api_key()
        caller = self._callers.get(_digest(presented))
        if caller is None:
            raise invalid_api_key()
        return caller


def _digest(key: str) -> bytes:
    return hashlib.blake2s(key.encode()).digest()
