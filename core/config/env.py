"""`${VAR}` references in configuration values, replaced by environment variables."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from . import Finding

ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

# Inside baseURL these name the selected model's instance and deployment
# (filled in by resolve.py), as in LibreChat; they are not environment variables.
PLACEHOLDERS: dict[str, str] = {
    "INSTANCE_NAME": "the group's instanceName",
    "DEPLOYMENT_NAME": "the model's deployment",
}
PLACEHOLDER_KEYS = frozenset({"baseURL"})


def missing_message(name: str) -> str:
    """LibreChat's message for an unresolved reference."""
    return f'Azure configuration environment variable "${{{name}}}" was not found.'


class EnvReferences:
    """Replaces references in a parsed YAML tree and remembers what it could not resolve.

    Only string values are rewritten (never keys: they are model ids and field names).
    An unresolved reference is left in place so later checks still see a value.
    """

    def __init__(self, environ: Mapping[str, str]) -> None:
        self.environ = environ
        self.missing: list[str] = []  # variable names, first-seen order
        self.placeholders_used: set[str] = set()
        self._where: dict[str, tuple[str | int, ...]] = {}  # each missing name's first place in the document

    def resolve(self, value: Any, key: object = None, path: tuple[str | int, ...] = ()) -> Any:
        """A copy of `value` with every reference in every string replaced. `path`: where `value` is in the
        document, so that a missing variable's problem has its line."""
        if isinstance(value, str):
            keep = PLACEHOLDERS.keys() if key in PLACEHOLDER_KEYS else ()
            return self.substitute(value, keep, path)
        if isinstance(value, dict):
            return {k: self.resolve(v, k, (*path, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(item, None, (*path, index)) for index, item in enumerate(value)]
        return value

    def substitute(self, text: str, keep: Any = (), path: tuple[str | int, ...] = ()) -> str:
        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in keep:
                self.placeholders_used.add(name)
                return match.group(0)
            # An empty variable counts as missing: `apiKey: ${KEY}` with KEY=""
            # must not quietly turn a group into passthrough.
            found = self.environ.get(name)
            if not found:
                if path:
                    self._where.setdefault(name, path)
                if name not in self.missing:
                    self.missing.append(name)
                return match.group(0)
            return found

        return ENV_REFERENCE.sub(replace, text)

    def problems(self) -> list[str]:
        return [Finding(missing_message(name), self._where.get(name)) for name in self.missing]

    def warnings(self) -> list[str]:
        return [
            f'Environment variable {name} is set, but "${{{name}}}" in baseURL is a placeholder for '
            f"{meaning}, not that variable; rename the variable to avoid confusion."
            for name, meaning in PLACEHOLDERS.items()
            if name in self.placeholders_used and name in self.environ
        ]


def has_unresolved(text: str) -> bool:
    """True when `text` still holds a reference other than the baseURL placeholders."""
    return any(match.group(1) not in PLACEHOLDERS for match in ENV_REFERENCE.finditer(text))
