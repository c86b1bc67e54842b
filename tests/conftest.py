"""Shared fixtures: a real Azure OpenAI simulator and real gateways, all on 127.0.0.1.

A gateway is `python -m core serve` in a subprocess, the way it ships; with GATEWAY_IN_PROCESS=1
the same host runs in this process instead (uvicorn in a thread, a real socket), so coverage and
mutation tools see which test runs which line (`make mutate`).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from azure_sim import AzureSimulator
from tests.support.gateway_process import GatewayProcess, gateway_environ
from tests.support.gateways import Gateway, StartGateway
from tests.support.inprocess_gateway import InProcessGateway
from tests.support.standard import DEPLOYMENTS, SECRETS, STANDARD_CONFIG

IN_PROCESS = os.environ.get("GATEWAY_IN_PROCESS") == "1"


def new_gateway(config_text: str | None, env: dict[str, str], workdir: Path) -> Gateway:
    if IN_PROCESS:
        return InProcessGateway(gateway_environ(config_text, env, workdir))
    return GatewayProcess(config_text, env, workdir)


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
    started: list[Gateway] = []

    def start(config_text: str | None, env: dict[str, str] | None = None) -> Gateway:
        process = new_gateway(config_text, env or {}, tmp_path_factory.mktemp("gateway"))
        started.append(process.start())
        return process

    yield start
    for process in started:
        process.stop()


@pytest.fixture
def start_gateway(tmp_path: Path) -> Iterator[StartGateway]:
    """Start a gateway with a config of the test's own; stopped after the test."""
    started: list[Gateway] = []

    def start(config_text: str | None, env: dict[str, str] | None = None) -> Gateway:
        workdir = tmp_path / f"gateway{len(started)}"
        workdir.mkdir()
        process = new_gateway(config_text, env or {}, workdir)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()


@pytest.fixture(scope="session")
def gateway(sim: AzureSimulator, start_gateway_session: StartGateway) -> Gateway:
    """The standard gateway: STANDARD_CONFIG in front of the session simulator."""
    return start_gateway_session(STANDARD_CONFIG, {**SECRETS, "SIM_URL": sim.url})
