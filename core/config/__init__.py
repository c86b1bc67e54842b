"""Configuration: load a source, validate it completely, resolve it into a RuntimeConfig."""

from __future__ import annotations

from collections.abc import Iterable

Path = tuple[str | int, ...]  # keys and list indices from the document's root


class Finding(str):
    """A problem or warning message that knows where in the document it was found.

    A string, so messages compare, log and join as before; `check` shows the line.
    """

    path: Path | None
    line: int | None

    def __new__(cls, message: str, path: Path | None = None, line: int | None = None) -> Finding:
        finding = super().__new__(cls, message)
        finding.path = path
        finding.line = line
        return finding


class ConfigError(Exception):
    """An unusable configuration, with every problem found (and the warnings so far)."""

    def __init__(self, problems: Iterable[str], warnings: Iterable[str] = ()) -> None:
        # Each problem once, first-seen order; the same message about two places is two problems.
        unique: dict[tuple[str, Path | None], str] = {}
        for problem in problems:
            unique.setdefault((str(problem), getattr(problem, "path", None)), problem)
        self.problems = list(unique.values())
        self.warnings = list(warnings)
        super().__init__("\n".join(located(problem) for problem in in_file_order(self.problems)))


def in_file_order(messages: list[str]) -> list[str]:
    """By line; messages about no single place (missing variables, open relays) first."""
    return sorted(messages, key=lambda message: _line(message) or 0)


def located(message: str) -> str:
    """The message with its line in the configuration, when it has one: what `check`, `serve` and the log print."""
    line = _line(message)
    return f"line {line}: {message}" if line else message


def _line(message: str) -> int | None:
    return message.line if isinstance(message, Finding) else None
