"""Where the configuration text comes from.

- `CONFIG_PATH`: a local file, or an `https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB`
  URL read with the app's identity.
- `CONFIG_BLOB_CONNECTION_STRING` + `CONFIG_BLOB_CONTAINER` + `CONFIG_BLOB_NAME`: a blob
  read with a connection string (storage keys, Azurite).
- `CONFIG_YAML`: the whole configuration in one app setting, as YAML or base64 of it.
Blob sources can be re-read cheaply: a conditional GET by ETag that answers
"unchanged" without a body.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

from .redaction import redact

# azure-storage-blob's newest API version is ahead of what Azurite serves; this one
# is served by both Azure Storage and Azurite.
BLOB_API_VERSION = "2025-11-05"


def _blob_client_options() -> dict[str, Any]:
    """Fail fast: storage's default retry waits 15 s before its first retry, and a reload
    that cannot read the blob simply tries again at the next interval."""
    from azure.storage.blob import LinearRetry

    return {
        "api_version": BLOB_API_VERSION,
        "retry_policy": LinearRetry(backoff=1, random_jitter_range=0, retry_total=1),
        "connection_timeout": 10,
        "read_timeout": 30,
    }


SOURCE_VARIABLES = ("CONFIG_PATH", "CONFIG_BLOB_CONNECTION_STRING", "CONFIG_YAML")


class SourceError(Exception):
    """The source could not be read; the message is safe to show (no secrets)."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    text: str
    etag: str | None  # None for sources without versions


class ConfigSource(Protocol):
    label: str  # for logs and `check`; never a secret
    reloadable: bool

    def read(self) -> Snapshot: ...

    def read_if_changed(self, etag: str | None) -> Snapshot | None:
        """The new snapshot, or None when the content still has `etag`."""
        ...


class FileSource:
    reloadable = False

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(os.path.expanduser(path))
        self.label = f"file:{self.path}"

    def read(self) -> Snapshot:
        try:
            with open(self.path, encoding="utf-8") as file:
                return Snapshot(file.read(), None)
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise SourceError(f"Cannot read CONFIG_PATH {self.path}: {reason}.") from None

    def read_if_changed(self, etag: str | None) -> Snapshot | None:
        return None


class AppSettingSource:
    """CONFIG_YAML: YAML, or base64 of it (app settings mangle newlines in some tools)."""

    reloadable = False
    label = "app setting CONFIG_YAML"

    def __init__(self, value: str) -> None:
        self._value = value

    def read(self) -> Snapshot:
        return Snapshot(decode_setting(self._value), None)

    def read_if_changed(self, etag: str | None) -> Snapshot | None:
        return None


def decode_setting(value: str) -> str:
    """Plain YAML stays as it is; a value that is valid base64 of UTF-8 text is decoded."""
    compact = "".join(value.split())
    if compact and ":" not in value:
        try:
            return base64.b64decode(compact, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            pass
    return value


class BlobSource:
    reloadable = True

    def __init__(self, blob_client: Any, label: str) -> None:
        self._blob = blob_client
        self.label = label

    @classmethod
    def from_url(cls, url: str, credential: Any) -> BlobSource:
        from azure.storage.blob import BlobClient

        client = BlobClient.from_blob_url(url, credential=credential, **_blob_client_options())
        return cls(client, f"blob:{redact(url)}")

    @classmethod
    def from_connection_string(cls, connection_string: str, container: str, blob: str) -> BlobSource:
        from azure.storage.blob import BlobClient

        client = BlobClient.from_connection_string(
            connection_string, container_name=container, blob_name=blob, **_blob_client_options()
        )
        return cls(client, f"blob:{client.account_name}/{container}/{blob}")

    def read(self) -> Snapshot:
        return self._download(None)  # type: ignore[return-value]

    def read_if_changed(self, etag: str | None) -> Snapshot | None:
        return self._download(etag)

    def _download(self, etag: str | None) -> Snapshot | None:
        from azure.core import MatchConditions
        from azure.core.exceptions import AzureError, HttpResponseError

        try:
            if etag is None:
                downloader = self._blob.download_blob()
            else:
                downloader = self._blob.download_blob(etag=etag, match_condition=MatchConditions.IfModified)
            data = downloader.readall()
        except HttpResponseError as exc:
            if etag is not None and exc.status_code == 304:  # azure-storage-blob raises on "not modified"
                return None
            status = f"HTTP {exc.status_code} {exc.reason or ''}".strip()
            raise SourceError(f"Cannot read {self.label}: {status}.") from None
        except AzureError as exc:
            raise SourceError(f"Cannot read {self.label}: {type(exc).__name__}.") from None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise SourceError(f"{self.label} is not UTF-8 text.") from None
        return Snapshot(text, downloader.properties.etag)


def source_from_environ(environ: Mapping[str, str], credential: Any) -> ConfigSource | None:
    """The configured source, or None (stulzq env mode or no configuration).
    Raises SourceError when the settings are contradictory or incomplete."""
    chosen = [name for name in SOURCE_VARIABLES if environ.get(name, "").strip()]
    if len(chosen) > 1:
        raise SourceError(f"Set only one configuration source; found {', '.join(chosen)}.")
    if not chosen:
        return None
    if chosen[0] == "CONFIG_YAML":
        return AppSettingSource(environ["CONFIG_YAML"])
    if chosen[0] == "CONFIG_BLOB_CONNECTION_STRING":
        missing = [n for n in ("CONFIG_BLOB_CONTAINER", "CONFIG_BLOB_NAME") if not environ.get(n, "").strip()]
        if missing:
            raise SourceError(f"CONFIG_BLOB_CONNECTION_STRING needs {' and '.join(missing)} too.")
        try:
            return BlobSource.from_connection_string(
                environ["CONFIG_BLOB_CONNECTION_STRING"].strip(),
                environ["CONFIG_BLOB_CONTAINER"].strip(),
                environ["CONFIG_BLOB_NAME"].strip(),
            )
        except ValueError:
            raise SourceError("CONFIG_BLOB_CONNECTION_STRING is not a valid storage connection string.") from None
    path = environ["CONFIG_PATH"].strip()
    if path.startswith(("https://", "http://")):
        parts = urlsplit(path)
        if len([s for s in parts.path.split("/") if s]) < 2:
            raise SourceError(
                "CONFIG_PATH as a URL must name a blob: https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB."
            )
        return BlobSource.from_url(path, credential)
    return FileSource(path)
