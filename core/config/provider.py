"""The configured source, read and turned into a RuntimeConfig, at start and on reload.

Owns what loading needs beyond the text: the app's credential (for blob URLs, Key
Vault references and Entra-authenticated groups), the secret resolver, and the
process settings that live outside the config file (egress proxies).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from . import ConfigError
from .credential import LazyCredential
from .load import ENV_SOURCE, NO_CONFIGURATION, load_config_text, load_stulzq_env
from .model import RuntimeConfig
from .secrets import SecretEnviron, SecretReference, SecretResolver
from .sources import ConfigSource, SourceError, source_from_environ

HTTP_PROXY_VARIABLES = ("AZURE_OPENAI_HTTP_PROXY", "PROXY")  # stulzq's name, then LibreChat's
SOCKS_PROXY_VARIABLE = "AZURE_OPENAI_SOCKS_PROXY"
_SOCKS_SCHEMES = ("socks5", "socks5h", "socks4", "socks4a")


class ConfigProvider:
    def __init__(self, environ: Mapping[str, str], *, credential: Any = None, secret_transport: Any = None) -> None:
        self._environ = environ
        self.credential = credential if credential is not None else LazyCredential(environ)
        self._resolver = SecretResolver(self.credential, transport=secret_transport)
        secret_environ = SecretEnviron(environ, self._resolver)
        try:
            self.source: ConfigSource | None = source_from_environ(secret_environ, self.credential)
        except SourceError as exc:
            raise ConfigError([str(exc), *secret_environ.problems]) from None
        if secret_environ.problems:
            raise ConfigError(secret_environ.problems)
        self.etag: str | None = None
        self._text: str | None = None  # the last text loaded: what a secret refresh loads again
        self._secrets: dict[SecretReference, str] = {}  # the Key Vault secrets the last load used

    @property
    def label(self) -> str:
        return self.source.label if self.source is not None else ENV_SOURCE

    @property
    def reloadable(self) -> bool:
        return self.source is not None and self.source.reloadable

    @property
    def uses_secrets(self) -> bool:
        """Whether the configuration in use came with Key Vault secrets (which may be rotated)."""
        return bool(self._secrets)

    def load(self) -> RuntimeConfig:
        if self.source is None:
            return self._build_from_environ()
        try:
            snapshot = self.source.read()
        except SourceError as exc:
            raise ConfigError([str(exc)]) from None
        config = self._build(snapshot.text)
        self.etag = snapshot.etag
        return config

    def reload(self) -> RuntimeConfig | None:
        """The new configuration if the source changed, else None. Raises SourceError when
        the source cannot be read and ConfigError when the new version is invalid."""
        if self.source is None:
            return None
        snapshot = self.source.read_if_changed(self.etag)
        if snapshot is None:
            return None
        try:
            return self._build(snapshot.text)
        finally:
            self.etag = snapshot.etag  # an invalid version is reported once, not at every check

    def refresh_secrets(self) -> RuntimeConfig | None:
        """The configuration loaded again when a Key Vault secret it used has a new value (a rotated key), else
        None. Raises ConfigError when a secret cannot be read or the new load is invalid."""
        if not self._secrets:
            return None
        resolver = self._resolver.fresh()
        problems = []
        for reference, value in self._secrets.items():
            try:
                if resolver.resolve(reference) != value:
                    break
            except RuntimeError as exc:
                problems.append(str(exc))
        else:
            if problems:
                raise ConfigError(problems)
            return None
        if self.source is None:
            return self._build_from_environ()
        assert self._text is not None
        return self._build(self._text)

    def _build_from_environ(self) -> RuntimeConfig:
        resolver = self._resolver.fresh()
        secret_environ = SecretEnviron(self._environ, resolver)
        if not secret_environ.get("AZURE_OPENAI_ENDPOINT", "").strip():
            raise ConfigError([NO_CONFIGURATION])
        return self._finish(lambda: load_stulzq_env(secret_environ), secret_environ, resolver)

    def _build(self, text: str) -> RuntimeConfig:
        assert self.source is not None
        label = self.source.label
        resolver = self._resolver.fresh()  # every load reads its secrets afresh
        secret_environ = SecretEnviron(self._environ, resolver)
        config = self._finish(lambda: load_config_text(text, secret_environ, label, resolver), secret_environ, resolver)
        self._text = text
        return config

    def _finish(
        self, build: Callable[[], RuntimeConfig], secret_environ: SecretEnviron, resolver: SecretResolver
    ) -> RuntimeConfig:
        try:
            config = build()
        except ConfigError as exc:
            raise ConfigError([*secret_environ.problems, *exc.problems], exc.warnings) from None
        proxy, proxy_problems = egress_proxy(secret_environ)
        problems = secret_environ.problems + proxy_problems
        if problems:
            raise ConfigError(problems, config.warnings)
        self._secrets = resolver.resolved()
        return dataclasses.replace(config, settings=dataclasses.replace(config.settings, egress_proxy=proxy))


def load_config(environ: Mapping[str, str], **options: Any) -> RuntimeConfig:
    """Load once (for `check` and start); `options` as for ConfigProvider."""
    return ConfigProvider(environ, **options).load()


def egress_proxy(environ: Mapping[str, str]) -> tuple[str | None, list[str]]:
    """The proxy upstream traffic goes through: SOCKS if set, else HTTP. Problems never
    print the URL, which may carry a password."""
    for name in (SOCKS_PROXY_VARIABLE, *HTTP_PROXY_VARIABLES):
        value = environ.get(name, "").strip()
        if not value:
            continue
        expected = _SOCKS_SCHEMES if name == SOCKS_PROXY_VARIABLE else ("http", "https")
        parts = urlsplit(value)
        if parts.scheme not in expected or not parts.hostname:
            return None, [f"{name} must be a URL like {expected[0]}://[user:password@]host:port."]
        return value, []
    return None, []
