"""Load configuration text in tests: `load` for a RuntimeConfig, `problems` for what it rejects; the
configuration files in tests/fixtures/config and the environment the full librechat.yaml needs."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from core.config import ConfigError
from core.config.load import load_config_text
from core.config.model import RuntimeConfig

FIXTURES = Path(__file__).parent.parent / "fixtures" / "config"
# What tests/fixtures/config/librechat_full.yaml references.
FULL_ENV = {
    "EASTUS_API_KEY": "eastus-secret",
    "SWEDEN_API_KEY": "sweden-secret",
    "MISTRAL_AZURE_KEY": "mistral-secret",
    "GATEWAY_KEY_LIBRECHAT": "gw-librechat",
    "GATEWAY_KEY_BATCH": "gw-batch",
}


def load(text: str, env: dict[str, str] | None = None) -> RuntimeConfig:
    return load_config_text(textwrap.dedent(text), env or {}, "test")


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(text, env)
    return caught.value.problems
