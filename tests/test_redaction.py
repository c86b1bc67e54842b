"""A password in a URL (baseURL, blob URL, proxy) or a SAS signature never shows in `check`'s
output or in the gateway's log: one helper masks them wherever a URL is printed."""

import subprocess
import sys

import pytest

from core.config import ConfigError
from core.config.provider import ConfigProvider
from core.config.redaction import redact
from tests.support.azurite import FakeStorageCredential
from tests.support.gateway_process import ROOT

PASSWORD = "pa55-in-url-0xdeadbeef"
SIGNATURE = "sas-signature-0xfeedface"
BLOB_URL = f"https://reader:{PASSWORD}@127.0.0.1:9/config/gateway.yaml?sv=2024-08-04&sp=r&sig={SIGNATURE}"

# A group whose baseURL carries credentials, serving the Assistants API too (check's second table).
CONFIG_WITH_USERINFO = f"""
endpoints:
  azureOpenAI:
    assistants: true
    groups:
      - group: apim
        apiKey: k
        instanceName: apim
        baseURL: "https://gw-user:{PASSWORD}@127.0.0.1:9"
        version: "2024-10-21"
        assistants: true
        models:
          gpt-4o: {{deploymentName: gpt-4o-dep}}
      - group: sls
        apiKey: k
        baseURL: "https://sls-user:{PASSWORD}@127.0.0.1:9/v1/chat/completions"
        serverless: true
        models:
          mistral-large: true
gateway:
  allowAnonymous: true
"""


def run_check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "core", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **env},
    )


@pytest.mark.parametrize(
    "url, shown",
    [
        ("http://user:secret@proxy:3128", "http://***@proxy:3128"),
        ("https://user@host/openai", "https://***@host/openai"),
        ("https://u:p@[::1]:8443/a/b?sig=s#f", "https://***@[::1]:8443/a/b"),
        ("https://host/c/b?sv=1&sig=s", "https://host/c/b"),
        ("https://host:443/path", "https://host:443/path"),
    ],
)
def test_redact_masks_userinfo_and_drops_the_query(url, shown) -> None:
    assert redact(url) == shown


def test_check_never_prints_a_password_in_a_base_url() -> None:
    result = run_check({"CONFIG_YAML": CONFIG_WITH_USERINFO})
    assert result.returncode == 0, result.stdout + result.stderr
    assert PASSWORD not in result.stdout + result.stderr
    assert "https://***@127.0.0.1:9/openai/deployments/gpt-4o-dep/{operation}" in result.stdout
    assert "https://***@127.0.0.1:9/v1/chat/completions" in result.stdout
    assert "https://***@127.0.0.1:9/openai " in result.stdout  # the resource-scoped APIs' base URL


def test_blob_source_label_and_errors_never_show_them() -> None:
    """What `check` and the refusing gateway print, and what a reload logs: the source's label
    and its errors. In-process, with a fake credential (no real Entra ID lookup)."""
    provider = ConfigProvider({"CONFIG_PATH": BLOB_URL}, credential=FakeStorageCredential())
    assert provider.label == "blob:https://***@127.0.0.1:9/config/gateway.yaml"
    with pytest.raises(ConfigError) as refused:
        provider.load()  # nothing listens on port 9
    message = str(refused.value)
    assert "Cannot read blob:https://***@127.0.0.1:9/config/gateway.yaml" in message
    assert PASSWORD not in message and SIGNATURE not in message
