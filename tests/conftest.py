"""Shared fixtures: a real Azure OpenAI simulator and real gateway processes, all on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from azure_sim import AzureSimulator
from tests.support.gateway_process import GatewayProcess
from tests.support.standard import DEPLOYMENTS, SECRETS, STANDARD_CONFIG

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
