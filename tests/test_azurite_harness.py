"""The Azurite harness itself: a real blob emulator on 127.0.0.1, as the config-from-blob tests will use it."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.core.exceptions import ClientAuthenticationError, ResourceModifiedError
from azure.storage.blob import BlobClient, BlobServiceClient
from azure.storage.blob.aio import BlobClient as AsyncBlobClient

from tests.support.azurite import (
    ACCOUNT_KEY,
    ACCOUNT_NAME,
    API_VERSION,
    STORAGE_SCOPE,
    AsyncFakeStorageCredential,
    Azurite,
    AzuriteError,
    FakeStorageCredential,
    ensure_installed,
)

CONTAINER = "gateway-config"


@pytest.fixture(scope="module")
def azurite() -> Iterator[Azurite]:
    with Azurite() as az:
        yield az


@pytest.fixture(scope="module")
def azurite_oauth() -> Iterator[Azurite]:
    with Azurite(oauth=True) as az:
        yield az


def download_if_changed(blob: BlobClient, etag: str | None) -> tuple[bytes, str] | None:
    """The hot-reload read: the blob and its ETag, or None when it still has `etag`.

    azure-storage-blob maps the 304 of an `If-None-Match` download to ResourceModifiedError
    (not ResourceNotModifiedError): tell it apart from a real failure by `status_code == 304`.
    """
    try:
        stream = (
            blob.download_blob(etag=etag, match_condition=MatchConditions.IfModified) if etag else blob.download_blob()
        )
    except ResourceModifiedError as exc:
        if exc.status_code == 304:
            return None
        raise
    return stream.readall(), stream.properties.etag


def test_ensure_installed_is_idempotent() -> None:
    first = ensure_installed()
    assert first.name == "azurite-blob" and first.exists()
    assert ensure_installed() == first


def test_addresses(azurite: Azurite) -> None:
    port = azurite.port
    assert azurite.blob_endpoint == f"http://127.0.0.1:{port}/devstoreaccount1"
    assert azurite.account_name == ACCOUNT_NAME and azurite.account_key == ACCOUNT_KEY
    assert f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;" in azurite.connection_string
    assert azurite.blob_url("c1", "a/b.yaml") == f"http://127.0.0.1:{port}/devstoreaccount1/c1/a/b.yaml"
    with pytest.raises(AzuriteError):
        azurite.https_blob_url("c1", "x")


def test_upload_then_download(azurite: Azurite) -> None:
    etag = azurite.put_blob(CONTAINER, "roundtrip.yaml", b"version: 1\n")
    with azurite.blob_service() as service:
        stream = service.get_blob_client(CONTAINER, "roundtrip.yaml").download_blob()
        assert stream.readall() == b"version: 1\n"
        assert stream.properties.etag == etag


def test_put_blob_creates_container_and_overwrites(azurite: Azurite) -> None:
    first = azurite.put_blob("fresh-container", "c.yaml", b"one")
    second = azurite.put_blob("fresh-container", "c.yaml", b"two")
    assert first != second
    with azurite.blob_service() as service:
        assert service.get_blob_client("fresh-container", "c.yaml").download_blob().readall() == b"two"


def test_conditional_get_by_etag(azurite: Azurite) -> None:
    etag = azurite.put_blob(CONTAINER, "conditional.yaml", b"a: 1\n")
    with azurite.blob_service() as service:
        blob = service.get_blob_client(CONTAINER, "conditional.yaml")

        # Unchanged: the service answers 304, which the SDK raises as ResourceModifiedError.
        with pytest.raises(ResourceModifiedError) as caught:
            blob.download_blob(etag=etag, match_condition=MatchConditions.IfModified)
        assert caught.value.status_code == 304
        assert download_if_changed(blob, etag) is None

        # Overwritten: a new ETag, and the conditional read returns the new body with it.
        new_etag = azurite.put_blob(CONTAINER, "conditional.yaml", b"a: 2\n")
        assert new_etag != etag
        assert blob.get_blob_properties().etag == new_etag
        assert download_if_changed(blob, etag) == (b"a: 2\n", new_etag)
        assert download_if_changed(blob, new_etag) is None
        assert download_if_changed(blob, None) == (b"a: 2\n", new_etag)


def test_failed_if_match_is_412_not_304(azurite: Azurite) -> None:
    """The other condition (If-Match, used for writes) fails with 412, also as ResourceModifiedError."""
    etag = azurite.put_blob(CONTAINER, "ifmatch.yaml", b"x")
    azurite.put_blob(CONTAINER, "ifmatch.yaml", b"y")
    with azurite.blob_service() as service:
        blob = service.get_blob_client(CONTAINER, "ifmatch.yaml")
        with pytest.raises(ResourceModifiedError) as caught:
            blob.download_blob(etag=etag, match_condition=MatchConditions.IfNotModified)
        assert caught.value.status_code == 412


def test_blob_url_with_shared_key_and_default_api_version(azurite: Azurite) -> None:
    """A client built from a blob URL (as a gateway would be), with the SDK's own default API
    version: Azurite runs with --skipApiVersionCheck, so unpinned clients work too."""
    azurite.put_blob(CONTAINER, "by-url.yaml", b"url")
    credential = {"account_name": azurite.account_name, "account_key": azurite.account_key}
    with BlobClient.from_blob_url(azurite.blob_url(CONTAINER, "by-url.yaml"), credential=credential) as blob:
        assert blob.download_blob().readall() == b"url"
    with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        assert service.get_blob_client(CONTAINER, "by-url.yaml").download_blob().readall() == b"url"


def test_stop_ends_the_process_and_frees_the_port() -> None:
    az = Azurite().start()
    port, process, running = az.port, az._process, az.running  # a local: mypy would keep az.running True past stop()
    assert running and process is not None
    az.stop()
    assert process.poll() is not None and not az.running and az.workdir is None
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    az.stop()  # idempotent


# ----------------------------------------------------------------- HTTPS + basic OAuth


def test_oauth_download_with_fake_token_credential(azurite_oauth: Azurite) -> None:
    az = azurite_oauth
    assert az.blob_endpoint.startswith("https://127.0.0.1:") and az.cert_path is not None
    az.put_blob(CONTAINER, "oauth.yaml", b"oauth: true\n")
    credential = FakeStorageCredential()
    with BlobClient.from_blob_url(
        az.https_blob_url(CONTAINER, "oauth.yaml"),
        credential=credential,
        connection_verify=str(az.cert_path),
        api_version=API_VERSION,
    ) as blob:
        stream = blob.download_blob()
        assert stream.readall() == b"oauth: true\n"
        # Conditional reads work the same way over OAuth.
        with pytest.raises(ResourceModifiedError) as caught:
            blob.download_blob(etag=stream.properties.etag, match_condition=MatchConditions.IfModified)
        assert caught.value.status_code == 304
    assert credential.scopes and all(scopes == (STORAGE_SCOPE,) for scopes in credential.scopes)


def test_oauth_async_client(azurite_oauth: Azurite) -> None:
    az = azurite_oauth
    az.put_blob(CONTAINER, "oauth-aio.yaml", b"aio")

    async def read() -> bytes:
        async with (
            AsyncFakeStorageCredential() as credential,
            AsyncBlobClient.from_blob_url(
                az.https_blob_url(CONTAINER, "oauth-aio.yaml"), credential=credential, **az.client_kwargs()
            ) as blob,
        ):
            return await (await blob.download_blob()).readall()

    assert asyncio.run(read()) == b"aio"


@pytest.mark.parametrize(
    "bad",
    [
        {"lifetime": -60},  # expired
        {"audience": "https://vault.azure.net"},  # another resource's token
        {"issuer": "https://login.example.invalid/tenant/"},  # not an Entra issuer
    ],
)
def test_oauth_rejects_bad_tokens(azurite_oauth: Azurite, bad: dict[str, Any]) -> None:
    az = azurite_oauth
    az.put_blob(CONTAINER, "guarded.yaml", b"secret")
    blob = BlobClient.from_blob_url(
        az.https_blob_url(CONTAINER, "guarded.yaml"), credential=FakeStorageCredential(**bad), **az.client_kwargs()
    )
    with blob, pytest.raises(ClientAuthenticationError) as caught:
        blob.download_blob()
    assert caught.value.status_code == 403


def test_oauth_cert_must_be_trusted(azurite_oauth: Azurite) -> None:
    from azure.core.exceptions import ServiceRequestError

    az = azurite_oauth
    az.put_blob(CONTAINER, "tls.yaml", b"tls")
    blob = BlobClient.from_blob_url(
        az.https_blob_url(CONTAINER, "tls.yaml"),
        credential=FakeStorageCredential(),
        api_version=API_VERSION,
        retry_total=0,
    )
    with blob, pytest.raises(ServiceRequestError, match="CERTIFICATE_VERIFY_FAILED"):
        blob.download_blob()
    assert set(az.ca_env().values()) == {str(az.cert_path)}
