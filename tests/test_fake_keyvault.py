"""The fake Key Vault speaks enough of the service for the real SecretClient, and nothing touches the network."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, ResourceNotFoundError, ServiceRequestError
from azure.keyvault.secrets import SecretClient

from tests.support.fake_keyvault import (
    FAKE_TOKEN,
    TENANT_ID,
    VAULT_SCOPE,
    FakeCredential,
    FakeKeyVaultTransport,
    SecretValues,
    reset_challenge_cache,
    secret_client,
)

VERSION_1 = "0123456789abcdef0123456789abcdef"
VERSION_2 = "fedcba9876543210fedcba9876543210"
SECRETS: dict[tuple[str, str], SecretValues] = {
    ("kv-gateway", "eastus-key"): "azure-key-from-vault",
    ("kv-gateway", "rotated"): {VERSION_1: "old-value", VERSION_2: "new-value", "": "new-value"},
}


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[object]]:
    """Any connection attempt or name lookup fails the test; so does building a real Azure credential."""
    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    import azure.identity

    for name in ("DefaultAzureCredential", "ManagedIdentityCredential"):
        monkeypatch.setattr(azure.identity, name, refuse)
    reset_challenge_cache()
    yield attempts
    reset_challenge_cache()
    assert attempts == []


def make_client(credential: FakeCredential | None = None) -> tuple[SecretClient, FakeKeyVaultTransport, FakeCredential]:
    credential = credential or FakeCredential()
    transport = FakeKeyVaultTransport(SECRETS)
    return SecretClient("https://kv-gateway.vault.azure.net", credential, transport=transport), transport, credential


def test_get_secret_goes_through_the_challenge_flow() -> None:
    client, transport, credential = make_client()

    secret = client.get_secret("eastus-key")

    assert secret.value == "azure-key-from-vault"
    assert secret.name == "eastus-key"
    assert secret.id is not None and secret.id.startswith("https://kv-gateway.vault.azure.net/secrets/eastus-key/")
    assert secret.properties.enabled is True
    first, retry = transport.requests
    assert (first.method, first.had_auth, first.status) == ("GET", False, 401)
    assert (retry.had_auth, retry.authorization, retry.status) == (True, f"Bearer {FAKE_TOKEN}", 200)
    assert first.url == retry.url
    assert first.url.startswith("https://kv-gateway.vault.azure.net/secrets/eastus-key")
    assert "api-version=" in first.url
    [token_request] = credential.requests
    assert token_request.method == "get_token_info"  # azure-core 1.41 prefers it when the credential has it
    assert token_request.scopes == (VAULT_SCOPE,)
    assert token_request.tenant_id == TENANT_ID


def test_later_requests_reuse_the_token_and_versions_resolve() -> None:
    client, transport, credential = make_client()

    assert client.get_secret("rotated").value == "new-value"
    assert client.get_secret("rotated", VERSION_1).value == "old-value"
    current = client.get_secret("rotated", VERSION_2)

    assert current.value == "new-value"
    assert current.properties.version == VERSION_2
    assert client.get_secret("rotated").properties.version == VERSION_2  # "" names the current version
    assert [r.status for r in transport.requests] == [401, 200, 200, 200, 200]
    assert all(r.had_auth for r in transport.requests[1:])
    assert len(credential.requests) == 1


def test_cached_challenge_means_no_401_for_a_new_client() -> None:
    make_client()[0].get_secret("eastus-key")
    client, transport, credential = make_client()

    assert client.get_secret("eastus-key").value == "azure-key-from-vault"
    assert [(r.had_auth, r.status) for r in transport.requests] == [(True, 200)]
    assert credential.requests[0].scopes == (VAULT_SCOPE,)
    assert credential.requests[0].tenant_id == TENANT_ID


def test_names_are_case_insensitive() -> None:
    client = secret_client("KV-Gateway", SECRETS)
    assert client.get_secret("EastUS-Key").value == "azure-key-from-vault"


def test_unknown_secret_or_version_is_not_found() -> None:
    client, transport, _ = make_client()

    with pytest.raises(ResourceNotFoundError) as missing:
        client.get_secret("nope")
    with pytest.raises(ResourceNotFoundError) as missing_version:
        client.get_secret("rotated", "00000000000000000000000000000000")

    assert missing.value.status_code == 404
    assert missing.value.error is not None and missing.value.error.code == "SecretNotFound"
    assert "A secret with (name/id) nope was not found in this key vault" in missing.value.message
    assert "rotated/00000000000000000000000000000000" in missing_version.value.message
    assert [r.status for r in transport.requests] == [401, 404, 404]


def test_credential_failure_raises_client_authentication_error() -> None:
    client, transport, credential = make_client(FakeCredential(fail=True))

    with pytest.raises(ClientAuthenticationError, match="fail=True"):
        client.get_secret("eastus-key")

    assert [(r.had_auth, r.status) for r in transport.requests] == [(False, 401)]
    assert credential.requests[0].scopes == (VAULT_SCOPE,)


def test_wrong_token_is_unauthorized() -> None:
    client, transport, _ = make_client(FakeCredential(token="someone-elses-token"))

    with pytest.raises(ClientAuthenticationError) as error:
        client.get_secret("eastus-key")

    assert error.value.status_code == 401
    assert error.value.error is not None and error.value.error.code == "Unauthorized"
    assert {r.status for r in transport.requests} == {401}
    assert transport.requests[-1].authorization == "Bearer someone-elses-token"


def test_plain_get_token_credentials_work_too() -> None:
    class GetTokenOnly:
        def __init__(self) -> None:
            self.inner = FakeCredential()

        def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
            return self.inner.get_token(*scopes, **kwargs)

    credential = GetTokenOnly()
    client = SecretClient("https://kv-gateway.vault.azure.net", credential, transport=FakeKeyVaultTransport(SECRETS))

    assert client.get_secret("eastus-key").value == "azure-key-from-vault"
    [request] = credential.inner.requests
    assert (request.method, request.scopes, request.tenant_id) == ("get_token", (VAULT_SCOPE,), TENANT_ID)


def test_other_hosts_fail_like_dns_without_waiting() -> None:
    transport = FakeKeyVaultTransport(SECRETS)
    client = SecretClient("https://kv-gateway.example.com", FakeCredential(), transport=transport)

    with pytest.raises(ServiceRequestError):
        client.get_secret("eastus-key")
    assert transport.requests == []
    assert transport.sleeps  # the retry policy backed off through the transport, which did not wait


def test_the_offline_guard_itself_trips(offline: list[object]) -> None:
    with pytest.raises(AssertionError, match="network access attempted"):
        socket.create_connection(("127.0.0.1", 9))
    with socket.socket() as sock, pytest.raises(AssertionError, match="network access attempted"):
        sock.connect(("169.254.169.254", 80))
    offline.clear()
