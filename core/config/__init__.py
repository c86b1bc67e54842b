"""Configuration: load a source, validate it completely, resolve it into a RuntimeConfig."""

from __future__ import annotations

from collections.abc import Iterable


class ConfigError(Exception):
    """An unusable configuration, with every problem found (and the warnings so far)."""

    def __init__(self, problems: Iterable[str], warnings: Iterable[str] = ()) -> None:
        self.problems = list(dict.fromkeys(problems))  # each message once, first-seen order
        self.warnings = list(warnings)
        super().__init__("\n".join(self.problems))
