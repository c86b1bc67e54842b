"""The app's Azure credential: what the configuration's sources, its Key Vault references, the usage table,
telemetry and Entra-authenticated groups all sign in with.

DefaultAzureCredential (a user-assigned managed identity when AZURE_CLIENT_ID is set), built only when
something needs it: importing azure-identity costs cold-start time, and building it probes the instance
metadata endpoint. Tests pass their own credential instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # azure-core comes with azure-identity, imported only when a token is needed
    from azure.core.credentials import AccessToken, TokenCredential


class LazyCredential:
    """Builds the real credential on first use."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._client_id = environ.get("AZURE_CLIENT_ID") or None
        self._credential: TokenCredential | None = None

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        if self._credential is None:
            from azure.identity import DefaultAzureCredential

            self._credential = DefaultAzureCredential(managed_identity_client_id=self._client_id)
        return self._credential.get_token(*scopes, **kwargs)
