"""Key Vault references, in App Service syntax, resolved with the app's identity.

`@Microsoft.KeyVault(SecretUri=https://V.vault.azure.net/secrets/N[/version])` or
`@Microsoft.KeyVault(VaultName=V;SecretName=N[;SecretVersion=x])` may stand for any
string in the configuration, and for any app setting the platform did not resolve
(it leaves the reference text in place when it fails, and local runs never resolve
them). Values are cached for one load, so every reload fetches them afresh; so does a secret refresh
(core/reload.py), which re-reads the secrets a load used and loads again when one changed.
Problems name the setting and the secret, never a value.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

KEY_VAULT_PREFIX = r"@Microsoft\.KeyVault\("
_REFERENCE = re.compile(rf"^\s*{KEY_VAULT_PREFIX}(?P<body>.*)\)\s*$", re.IGNORECASE | re.DOTALL)


@dataclass(frozen=True, slots=True)
class SecretReference:
    vault_url: str  # https://V.vault.azure.net
    name: str
    version: str | None

    def describe(self) -> str:
        return f"secret {self.name!r} in {self.vault_url}"


def is_reference(value: object) -> bool:
    return isinstance(value, str) and _REFERENCE.match(value) is not None


def parse_reference(value: str) -> SecretReference:
    """Raises ValueError (without echoing the value) for a malformed reference."""
    match = _REFERENCE.match(value)
    if match is None:
        raise ValueError("not a Key Vault reference")
    fields = {}
    for part in match.group("body").split(";"):
        key, sep, field_value = part.partition("=")
        if sep:
            fields[key.strip().lower()] = field_value.strip()
    if "secreturi" in fields:
        url = urlsplit(fields["secreturi"])
        segments = [s for s in url.path.split("/") if s]
        if url.scheme != "https" or not url.hostname or len(segments) not in (2, 3) or segments[0] != "secrets":
            raise ValueError("SecretUri must look like https://VAULT.vault.azure.net/secrets/NAME[/VERSION]")
        version = segments[2] if len(segments) == 3 else None
        return SecretReference(f"https://{url.hostname}", segments[1], version)
    if "vaultname" in fields and "secretname" in fields:
        return SecretReference(
            f"https://{fields['vaultname']}.vault.azure.net", fields["secretname"], fields.get("secretversion") or None
        )
    raise ValueError("a Key Vault reference needs SecretUri=..., or VaultName=...;SecretName=...")


# Short, bounded calls: the SDK's defaults (300 s timeouts, 10 retries with backoff) could hold a
# start for minutes; a failed load is retried as a whole anyway (reload interval, start retries).
_BOUNDED = {"connection_timeout": 5, "read_timeout": 10, "retry_total": 2}


class SecretResolver:
    """Fetches referenced secrets with SecretClient; `transport` is for tests."""

    def __init__(self, credential: Any, *, transport: Any = None) -> None:
        self._credential = credential
        self._transport = transport
        self._clients: dict[str, Any] = {}
        self._values: dict[SecretReference, str] = {}

    def resolve(self, reference: SecretReference) -> str:
        """Raises RuntimeError with a message safe to show (no secret value)."""
        if reference not in self._values:
            try:
                secret = self._client(reference.vault_url).get_secret(reference.name, reference.version)
            except Exception as exc:  # azure.core errors: not found, forbidden, unreachable...
                reason = getattr(exc, "reason", None) or type(exc).__name__
                raise RuntimeError(f"{reference.describe()} could not be read ({reason})") from exc
            if secret.value is None:
                raise RuntimeError(f"{reference.describe()} has no value")
            self._values[reference] = secret.value
        return self._values[reference]

    def resolved(self) -> dict[SecretReference, str]:
        """The secrets this resolver has read, by reference: what a load used."""
        return dict(self._values)

    def fresh(self) -> SecretResolver:
        """A resolver for the next load: same clients, no cached values."""
        resolver = SecretResolver(self._credential, transport=self._transport)
        resolver._clients = self._clients
        return resolver

    def _client(self, vault_url: str) -> Any:
        if vault_url not in self._clients:
            from azure.keyvault.secrets import SecretClient

            options = {"transport": self._transport} if self._transport is not None else {}
            self._clients[vault_url] = SecretClient(vault_url, self._credential, **options, **_BOUNDED)
        return self._clients[vault_url]


def resolve_value(value: str, resolver: SecretResolver | None, where: str) -> str:
    """`value`, or the secret it refers to. Raises ValueError naming `where`."""
    if not is_reference(value):
        return value
    try:
        reference = parse_reference(value)
    except ValueError as exc:
        raise ValueError(f"{where}: malformed Key Vault reference: {exc}.") from None
    if resolver is None:
        raise ValueError(f"{where}: Key Vault reference found but no credential to resolve it.")
    try:
        return resolver.resolve(reference)
    except RuntimeError as exc:
        raise ValueError(f"{where}: Key Vault reference could not be resolved: {exc}.") from None


def resolve_document(value: Any, resolver: SecretResolver | None, problems: list[str], path: str = "") -> Any:
    """A copy of a parsed YAML tree with every Key Vault reference replaced by its secret."""
    if isinstance(value, dict):
        return {k: resolve_document(v, resolver, problems, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve_document(v, resolver, problems, f"{path}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, str) and is_reference(value):
        try:
            return resolve_value(value, resolver, path)
        except ValueError as exc:
            problems.append(str(exc))
            return value  # left in place, like an unresolved ${VAR}: reported once, not checked further
    return value


class SecretEnviron(Mapping[str, str]):
    """The process environment with unresolved Key Vault references resolved on read.

    A setting that fails to resolve reads as absent and its problem is recorded, so
    the loader reports it with every other problem.
    """

    def __init__(self, environ: Mapping[str, str], resolver: SecretResolver | None) -> None:
        self._environ = environ
        self._resolver = resolver
        self._resolved: dict[str, str | None] = {}
        self.problems: list[str] = []

    def __getitem__(self, key: str) -> str:
        if key not in self._resolved:
            value = self._environ[key]
            try:
                self._resolved[key] = resolve_value(value, self._resolver, f"app setting {key}")
            except ValueError as exc:
                self.problems.append(str(exc))
                self._resolved[key] = None
        resolved = self._resolved[key]
        if resolved is None:
            raise KeyError(key)
        return resolved

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)
