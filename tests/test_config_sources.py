"""Configuration sources chosen from the environment (blob sources: tests/test_blob_config.py)."""

import base64
import subprocess
import sys

import pytest

from core.config import ConfigError
from core.config.provider import egress_proxy, load_config
from core.config.redaction import redact
from core.config.sources import decode_setting
from tests.support.gateway_process import ROOT

YAML = """
endpoints:
  azureOpenAI:
    groups:
      - {group: g, apiKey: k, instanceName: i, deploymentName: d, version: "2024-10-21", models: {gpt-4o: true}}
gateway:
  allowAnonymous: true
"""


def test_config_yaml_plain_and_base64() -> None:
    plain = load_config({"CONFIG_YAML": YAML})
    encoded = load_config({"CONFIG_YAML": base64.b64encode(YAML.encode()).decode()})
    assert list(plain.routes) == list(encoded.routes) == ["gpt-4o"]
    assert plain.source == "app setting CONFIG_YAML"


def test_decode_setting_keeps_yaml_and_decodes_base64() -> None:
    assert decode_setting("a: b") == "a: b"
    assert decode_setting(base64.b64encode(b"a: b").decode() + "\n") == "a: b"
    assert decode_setting("groups") == "groups"  # not base64 of UTF-8 text: taken as it is


@pytest.mark.parametrize(
    "env, message",
    [
        (
            {"CONFIG_YAML": YAML, "CONFIG_PATH": "x.yaml"},
            "Set only one configuration source; found CONFIG_PATH, CONFIG_YAML.",
        ),
        (
            {"CONFIG_BLOB_CONNECTION_STRING": "UseDevelopmentStorage=true"},
            "CONFIG_BLOB_CONNECTION_STRING needs CONFIG_BLOB_CONTAINER and CONFIG_BLOB_NAME too.",
        ),
        (
            {"CONFIG_BLOB_CONNECTION_STRING": "nonsense", "CONFIG_BLOB_CONTAINER": "c", "CONFIG_BLOB_NAME": "b"},
            "CONFIG_BLOB_CONNECTION_STRING is not a valid storage connection string.",
        ),
        (
            {"CONFIG_PATH": "https://acct.blob.core.windows.net/only-container"},
            "CONFIG_PATH as a URL must name a blob: https://ACCOUNT.blob.core.windows.net/CONTAINER/BLOB.",
        ),
    ],
)
def test_source_settings_problems(env, message) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(env)
    assert caught.value.problems == [message]


def test_egress_proxy_settings() -> None:
    assert egress_proxy({"PROXY": "http://p:3128"}) == ("http://p:3128", [])
    assert egress_proxy({"AZURE_OPENAI_HTTP_PROXY": "http://u:pw@p:1", "PROXY": "http://q:2"})[0] == "http://u:pw@p:1"
    assert egress_proxy({"AZURE_OPENAI_SOCKS_PROXY": "socks5://s:1080", "PROXY": "http://q:2"})[0] == "socks5://s:1080"
    assert egress_proxy({"AZURE_OPENAI_SOCKS_PROXY": "http://s:1080"}) == (
        None,
        ["AZURE_OPENAI_SOCKS_PROXY must be a URL like socks5://[user:password@]host:port."],
    )
    assert redact("http://user:secret@proxy:3128") == "http://***@proxy:3128"
    config = load_config({"CONFIG_YAML": YAML, "AZURE_OPENAI_HTTP_PROXY": "http://u:pw@127.0.0.1:3128"})
    assert config.settings.egress_proxy == "http://u:pw@127.0.0.1:3128"


def test_check_reads_an_app_setting_source() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "core", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", "CONFIG_YAML": base64.b64encode(YAML.encode()).decode()},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration OK: app setting CONFIG_YAML" in result.stdout


def test_check_shows_the_egress_proxy_without_its_password() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "core", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        env={
            "PATH": "/usr/bin:/bin",
            "CONFIG_YAML": YAML,
            "AZURE_OPENAI_HTTP_PROXY": "http://me:pa55word@127.0.0.1:3128",
        },
    )
    assert "Egress: upstream connections go through http://***@127.0.0.1:3128" in result.stdout
    assert "pa55word" not in result.stdout
