"""Shared fixtures: a real Azure OpenAI simulator and real gateway processes, all on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.azure_sim import AzureSimulator
from tests.gateway_process import GatewayProcess

# Secrets of the standard test configuration. The no-leak test checks that none
# of them ever appears in a response or a log line.
SECRETS = {
    "EASTUS_KEY": "azure-key-eastus-0123456789abcdef",
    "SERVERLESS_KEY": "azure-key-serverless-fedcba9876543210",
    "ALICE_KEY": "gw-key-alice-5f1e2d3c4b5a",
    "BOB_KEY": "gw-key-bob-a5b4c3d2e1f0",
}
ALICE = SECRETS["ALICE_KEY"]
BOB = SECRETS["BOB_KEY"]

STANDARD_CONFIG = """
version: 1.2.1
cache: true
interface:
  privacyPolicy: {externalUrl: "https://example.invalid/privacy"}
endpoints:
  azureOpenAI:
    titleModel: "gpt-4o-mini"
    titleConvo: true
    groups:
      - group: eastus
        apiKey: "${EASTUS_KEY}"
        instanceName: eastus-instance
        baseURL: "${SIM_URL}"
        version: "2024-10-21"
        models:
          gpt-4o:
            deploymentName: gpt-4o-dep
          gpt-4o-mini:
            deploymentName: gpt-4o-mini-dep
            version: "2025-04-01-preview"
          text-embedding-3-small:
            deploymentName: embed-dep
      - group: tuned
        apiKey: "${EASTUS_KEY}"
        instanceName: eastus-instance
        baseURL: "${SIM_URL}/openai/deployments/${DEPLOYMENT_NAME}"
        deploymentName: tuned-dep
        version: "2024-10-21"
        additionalHeaders:
          x-custom-header: "from-config"
        addParams:
          temperature: 0.2
          top_p: 0.5
        dropParams: [top_p, frequency_penalty]
        models:
          gpt-tuned: true
      - group: legacy-prompt
        apiKey: "${EASTUS_KEY}"
        instanceName: eastus-instance
        baseURL: "${SIM_URL}"
        version: "2024-10-21"
        forcePrompt: true
        models:
          gpt-instruct:
            deploymentName: instruct-dep
      - group: serverless
        apiKey: "${SERVERLESS_KEY}"
        baseURL: "${SIM_URL}/v1/chat/completions"
        serverless: true
        models:
          mistral-large: true
gateway:
  apiKeys:
    - name: alice
      key: "${ALICE_KEY}"
    - name: bob
      key: "${BOB_KEY}"
      models: [gpt-4o-mini]
  maxBodyBytes: 65536
  timeouts:
    connect: 2
    read: 2
  forwardHeaders: ["x-sim-*"]  # the tests steer the simulator with x-sim-* headers sent through the gateway
"""
DEPLOYMENTS = {"gpt-4o-dep", "gpt-4o-mini-dep", "embed-dep", "tuned-dep", "instruct-dep", "dalle3-dep", "whisper-dep", "tts-dep"}

StartGateway = Callable[..., GatewayProcess]


@pytest.fixture(scope="session")
def sim() -> Iterator[AzureSimulator]:
    simulator = AzureSimulator(
        api_keys={SECRETS["EASTUS_KEY"], SECRETS["SERVERLESS_KEY"]}, deployments=DEPLOYMENTS
    ).start()
    yield simulator
    simulator.stop()


@pytest.fixture(autouse=True)
def _fresh_sim(request: pytest.FixtureRequest) -> None:
    if "sim" in request.fixturenames:
        request.getfixturevalue("sim").reset()


@pytest.fixture(scope="session")
def start_gateway_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartGateway]:
    started: list[GatewayProcess] = []

    def start(config_text: str | None, env: dict[str, str] | None = None) -> GatewayProcess:
        process = GatewayProcess(config_text, env or {}, tmp_path_factory.mktemp("gateway"))
        started.append(process.start())
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[StartGateway]:
    """Start a gateway with a config of the test's own; stopped after the test."""
    started: list[GatewayProcess] = []

    def start(config_text: str | None, env: dict[str, str] | None = None) -> GatewayProcess:
        workdir = tmp_path / f"gateway{len(started)}"
        workdir.mkdir()
        process = GatewayProcess(config_text, env or {}, workdir)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def gateway(sim: AzureSimulator, start_gateway_session: StartGateway) -> GatewayProcess:
    """The standard gateway: STANDARD_CONFIG in front of the session simulator."""
    return start_gateway_session(STANDARD_CONFIG, {**SECRETS, "SIM_URL": sim.url})
