"""Load configuration text in tests: `load` for a RuntimeConfig, `problems` for what it rejects."""

from __future__ import annotations

import textwrap

import pytest

from core.config import ConfigError
from core.config.load import load_config_text
from core.config.model import RuntimeConfig


def load(text: str, env: dict[str, str] | None = None) -> RuntimeConfig:
    return load_config_text(textwrap.dedent(text), env or {}, "test")


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(text, env)
    return caught.value.problems
