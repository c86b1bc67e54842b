"""A gateway configuration kept in (Azurite's) blob storage."""

from __future__ import annotations

from tests.support.azurite import Azurite
from tests.support.standard import SECRETS

CONFIG = """
endpoints:
  azureOpenAI:
    groups:
      - group: east
        apiKey: "${EASTUS_KEY}"
        instanceName: east
        baseURL: "${SIM_URL}"
        version: "2024-10-21"
        models:
%s
gateway:
  apiKeys: [{name: alice, key: "${ALICE_KEY}"}]
  forwardHeaders: ["x-sim-*"]
"""


def config(*models: str) -> bytes:
    return (CONFIG % "\n".join(f"          {m}: {{deploymentName: gpt-4o-dep}}" for m in models)).encode()


def blob_env(storage: Azurite, sim) -> dict[str, str]:
    return {
        **SECRETS,
        "SIM_URL": sim.url,
        "CONFIG_REFRESH_SECONDS": "0.5",
        "CONFIG_BLOB_CONNECTION_STRING": storage.connection_string,
        "CONFIG_BLOB_CONTAINER": "config",
        "CONFIG_BLOB_NAME": "gateway.yaml",
    }
