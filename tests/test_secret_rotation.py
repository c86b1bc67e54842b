"""A rotated Key Vault secret takes effect without a restart: the secrets the running configuration used are read
again every SECRET_REFRESH_SECONDS, and at once (at most once a minute) when Azure refuses the key they gave.

Key Vault is the offline fake behind the real SecretClient (tests/support/fake_keyvault.py); Azure is the simulator,
which takes only the key it is told to."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from azure_sim import AzureSimulator
from tests.support.fake_keyvault import FakeCredential, FakeKeyVaultTransport
from tests.support.inprocess_gateway import InProcessGateway
from tests.support.standard import ALICE, SECRETS

CONFIG = """
endpoints:
  azureOpenAI:
    groups:
      - group: eastus
        apiKey: "@Microsoft.KeyVault(VaultName=gatewayvault;SecretName=eastus-key)"
        instanceName: eastus-instance
        baseURL: "${SIM_URL}"
        version: "2024-10-21"
        models:
          gpt-4o: {deploymentName: gpt-4o-dep}
gateway:
  apiKeys:
    - {name: alice, key: "${ALICE_KEY}"}
"""
SECRET = ("gatewayvault", "eastus-key")
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def azure() -> Iterator[AzureSimulator]:
    with AzureSimulator(api_keys={"key-one"}, deployments={"gpt-4o-dep"}) as simulator:
        yield simulator


def chat(gateway: InProcessGateway) -> int:
    answer = httpx.post(
        f"{gateway.url}/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {ALICE}"}, timeout=10
    )
    return answer.status_code


def rotate(transport: FakeKeyVaultTransport, azure: AzureSimulator, key: str) -> None:
    """The new key goes into Key Vault, and Azure's old key is retired."""
    transport.secrets[SECRET] = (*SECRET, key)
    azure.api_keys = {key}


def eventually(check: Callable[[], bool], seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def secret_reads(transport: FakeKeyVaultTransport) -> int:
    return sum(1 for r in transport.requests if "/secrets/eastus-key" in r.url and r.status == 200)


def start(azure: AzureSimulator, transport: FakeKeyVaultTransport, refresh: str) -> InProcessGateway:
    env = {**SECRETS, "CONFIG_YAML": CONFIG, "SIM_URL": azure.url, "SECRET_REFRESH_SECONDS": refresh}
    return InProcessGateway(env, credential=FakeCredential(), secret_transport=transport)


def test_a_rotated_key_is_read_again_on_the_refresh_interval(azure) -> None:
    transport = FakeKeyVaultTransport({SECRET: "key-one"})
    with start(azure, transport, "0.5") as gateway:
        assert chat(gateway) == 200
        rotate(transport, azure, "key-two")
        assert eventually(lambda: chat(gateway) == 200)
        assert "configuration loaded again with rotated Key Vault secrets" in gateway.logs()
        assert "key-two" not in gateway.logs() and "key-one" not in gateway.logs()


def test_a_refused_key_reads_the_secrets_at_once_and_at_most_once_a_minute(azure) -> None:
    transport = FakeKeyVaultTransport({SECRET: "key-one"})
    with start(azure, transport, "0") as gateway:  # no interval: only a refusal reads them again
        assert chat(gateway) == 200
        read_at_start = secret_reads(transport)
        rotate(transport, azure, "key-two")
        assert chat(gateway) == 401  # the first call after the old key was retired
        assert eventually(lambda: chat(gateway) == 200)
        assert secret_reads(transport) == read_at_start + 2  # checked once, then loaded again with the new key
        # A key Azure keeps refusing reads Key Vault once, not once per call.
        azure.api_keys = {"key-three"}
        assert [chat(gateway) for _ in range(5)] == [401] * 5
        time.sleep(0.5)
        assert secret_reads(transport) == read_at_start + 2
