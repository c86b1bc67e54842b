"""An offline Azure Key Vault for the real `azure.keyvault.secrets.SecretClient`.

Why it exists: Key Vault references are resolved with the SDK's `SecretClient`, and tests must neither touch the
network nor build a real `DefaultAzureCredential` (its managed-identity probe targets 169.254.169.254). So tests give
the client two fakes:

- `FakeCredential`: the azure-core token protocol (`get_token` and `get_token_info`; azure-core 1.41 and the Key
  Vault challenge policy call `get_token_info` when a credential has it). It records what it was asked for.
- `FakeKeyVaultTransport`: a synchronous azure-core `HttpTransport` that answers the secrets GET like the service:
  401 challenge without a token, 200 with the expected token, 404 `SecretNotFound`, 401 `Unauthorized` for another
  token. It records every request, so tests can assert that the challenge flow happened.

    client = SecretClient("https://v.vault.azure.net", FakeCredential(),
                          transport=FakeKeyVaultTransport({("v", "db-password"): "s3cret"}))

The SDK caches each vault's challenge process-wide: once a vault was challenged, later clients send the token on
their first request and no 401 is seen. `reset_challenge_cache()` forgets those challenges.
"""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import parse_qs, unquote, urlsplit

from azure.core.credentials import AccessToken, AccessTokenInfo
from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest import HttpRequest
from azure.core.rest._http_response_impl import HttpResponseImpl  # what azure-core's own sync transports return

if TYPE_CHECKING:
    from azure.keyvault.secrets import SecretClient

FAKE_TOKEN = "fake-key-vault-token"
TENANT_ID = "00000000-0000-0000-0000-000000000001"
VAULT_SCOPE = "https://vault.azure.net/.default"
CHALLENGE = f'Bearer authorization="https://login.microsoftonline.com/{TENANT_ID}", resource="https://vault.azure.net"'
VAULT_DOMAIN = ".vault.azure.net"
_CREATED = 1_700_000_000


# --- credential ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenRequest:
    """One call to the credential: which method, for which scopes and tenant."""

    method: str  # "get_token" or "get_token_info"
    scopes: tuple[str, ...]
    tenant_id: str | None
    claims: str | None
    enable_cae: bool


class FakeCredential:
    """A TokenCredential / SupportsTokenInfo that hands out `token`, or raises ClientAuthenticationError if `fail`."""

    def __init__(self, token: str = FAKE_TOKEN, *, fail: bool = False) -> None:
        self.token = token
        self.fail = fail
        self.requests: list[TokenRequest] = []

    def _issue(self, request: TokenRequest) -> int:
        self.requests.append(request)
        if self.fail:
            raise ClientAuthenticationError(message="FakeCredential: authentication failed (fail=True)")
        return int(time.time()) + 3600

    def get_token(
        self,
        *scopes: str,
        claims: str | None = None,
        tenant_id: str | None = None,
        enable_cae: bool = False,
        **kwargs: Any,
    ) -> AccessToken:
        expires_on = self._issue(TokenRequest("get_token", scopes, tenant_id, claims, enable_cae))
        return AccessToken(self.token, expires_on)

    def get_token_info(self, *scopes: str, options: Mapping[str, Any] | None = None) -> AccessTokenInfo:
        options = options or {}
        request = TokenRequest(
            "get_token_info", scopes, options.get("tenant_id"), options.get("claims"), bool(options.get("enable_cae"))
        )
        return AccessTokenInfo(self.token, self._issue(request))

    def close(self) -> None:
        pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *args: object) -> None:
        pass


# --- transport ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    url: str
    had_auth: bool  # an Authorization header was sent
    authorization: str | None
    status: int  # what the fake answered


class FakeKeyVaultResponse(HttpResponseImpl):
    """A complete in-memory `azure.core.rest.HttpResponse`, as the SDK's pipeline expects from a sync transport."""

    def __init__(self, request: HttpRequest, status: int, reason: str, headers: dict[str, str], body: bytes) -> None:
        from azure.core.utils import case_insensitive_dict

        super().__init__(
            request=request,
            internal_response=io.BytesIO(body),
            status_code=status,
            reason=reason,
            headers=case_insensitive_dict(headers),
            content_type=headers.get("Content-Type"),
            stream_download_generator=lambda response, pipeline, **kwargs: iter([body]),
        )


SecretValues = Mapping[str, str] | str


class FakeKeyVaultTransport(HttpTransport[HttpRequest, FakeKeyVaultResponse]):
    """Serves `GET https://{vault}.vault.azure.net/secrets/{name}[/{version}]` from `secrets`.

    `secrets` maps (vault name, secret name) to the current value, or to {version: value, "": current value}
    (without "", the last version listed is current). Vault and secret names match case-insensitively, as in Azure.
    A host outside *.vault.azure.net fails like a DNS error (ServiceRequestError). Nothing touches the network.
    """

    def __init__(self, secrets: Mapping[tuple[str, str], SecretValues], *, token: str = FAKE_TOKEN) -> None:
        self.secrets = {
            (vault.lower(), name.lower()): (vault, name, values) for (vault, name), values in secrets.items()
        }
        self.token = token
        self.requests: list[RecordedRequest] = []
        self.sleeps: list[float] = []

    # HttpTransport
    def __enter__(self) -> Self:
        return self

    def __exit__(self, *args: object) -> None:
        pass

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def sleep(self, duration: float) -> None:  # retry back-off: record it, don't wait
        self.sleeps.append(duration)

    def send(self, request: HttpRequest, **kwargs: Any) -> FakeKeyVaultResponse:
        if not isinstance(request, HttpRequest):
            raise TypeError("FakeKeyVaultTransport serves azure.core.rest.HttpRequest only")
        parts = urlsplit(request.url)
        host = (parts.hostname or "").lower()
        if parts.scheme != "https" or not host.endswith(VAULT_DOMAIN):
            raise ServiceRequestError(f"FakeKeyVaultTransport: no such host {parts.netloc!r}")
        authorization = request.headers.get("Authorization")
        status, body = self._answer(request.method, host[: -len(VAULT_DOMAIN)], parts.path, authorization)
        self.requests.append(
            RecordedRequest(request.method, request.url, authorization is not None, authorization, status)
        )

        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "x-ms-request-id": str(uuid.uuid4()),
            "x-ms-keyvault-service-version": "1.9.0.0",
            "x-ms-keyvault-region": "eastus",
        }
        if status == 401:
            headers["WWW-Authenticate"] = CHALLENGE
        api_version = parse_qs(parts.query).get("api-version")
        if api_version:
            headers["x-ms-keyvault-api-version"] = api_version[0]
        content = json.dumps(body).encode() if body is not None else b""
        if not content:
            headers["Content-Length"] = "0"
            del headers["Content-Type"]
        response = FakeKeyVaultResponse(request, status, _REASONS[status], headers, content)
        if not kwargs.get("stream", False):
            response.read()
        return response

    # the service
    def _answer(self, method: str, vault: str, path: str, authorization: str | None) -> tuple[int, Any]:
        if authorization is None:
            return 401, {
                "error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}
            }
        if authorization != f"Bearer {self.token}":
            return 401, {"error": {"code": "Unauthorized", "message": "AKV10032: Invalid issuer or token."}}
        segments = [unquote(s) for s in path.strip("/").split("/")]
        if method != "GET" or not 2 <= len(segments) <= 3 or segments[0] != "secrets":
            return 405, {
                "error": {"code": "BadRequest", "message": f"FakeKeyVaultTransport: {method} {path} is not served."}
            }
        name = segments[1]
        version = segments[2] if len(segments) == 3 else ""
        found = self._lookup(vault, name, version)
        if found is None:
            what = f"{name}/{version}" if version else name
            return 404, {
                "error": {
                    "code": "SecretNotFound",
                    "message": f"A secret with (name/id) {what} was not found in this key vault. If you recently "
                    "deleted this secret you may be able to recover it using the correct recovery command. "
                    "For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182",
                }
            }
        vault_name, secret_name, version_id, value = found
        return 200, {
            "value": value,
            "id": f"https://{vault_name}{VAULT_DOMAIN}/secrets/{secret_name}/{version_id}",
            "attributes": {
                "enabled": True,
                "created": _CREATED,
                "updated": _CREATED,
                "recoveryLevel": "Recoverable+Purgeable",
                "recoverableDays": 90,
            },
            "tags": {},
        }

    def _lookup(self, vault: str, name: str, version: str) -> tuple[str, str, str, str] | None:
        """(vault, secret name as configured, version id, value), or None when there is no such secret/version."""
        entry = self.secrets.get((vault.lower(), name.lower()))
        if entry is None:
            return None
        vault_name, secret_name, values = entry
        versions = {"": values} if isinstance(values, str) else dict(values)
        named = {v: value for v, value in versions.items() if v}
        if version:
            return (vault_name, secret_name, version, named[version]) if version in named else None
        if "" in versions:
            current = versions[""]
        elif named:
            current = list(named.values())[-1]
        else:
            return None
        same = [v for v, value in named.items() if value == current]
        version_id = same[-1] if same else uuid.uuid5(uuid.NAMESPACE_URL, f"{vault_name}/{secret_name}").hex
        return vault_name, secret_name, version_id, current


_REASONS = {200: "OK", 401: "Unauthorized", 404: "Not Found", 405: "Method Not Allowed"}


# --- conveniences -------------------------------------------------------------------------------------------------


def reset_challenge_cache() -> None:
    """Forget the Key Vault challenges the SDK cached process-wide, so the next request is challenged again."""
    from azure.keyvault.secrets._shared import http_challenge_cache

    http_challenge_cache.clear()


def secret_client(
    vault: str,
    secrets: Mapping[tuple[str, str], SecretValues],
    credential: FakeCredential | None = None,
) -> SecretClient:
    """A real SecretClient for https://{vault}.vault.azure.net on a FakeKeyVaultTransport."""
    from azure.keyvault.secrets import SecretClient

    transport = FakeKeyVaultTransport(secrets)
    return SecretClient(f"https://{vault}{VAULT_DOMAIN}", credential or FakeCredential(), transport=transport)
