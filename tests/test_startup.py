"""The first deploy heals itself: on the Functions host the app always indexes its routes, answers 503
(with the reason on /health) while its configuration cannot be loaded, and serves once it can, without a
restart. Locally `python -m core serve` still refuses to start on a bad configuration.

The Functions host cannot run here, so a subprocess does what it does: import function_app.py (indexing),
then serve that module's route table (core.serve, the local host)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.azurite import Azurite
from tests.support.blob import blob_env, config
from tests.support.gateway_process import ROOT, GatewayProcess
from tests.support.standard import ALICE, SECRETS

READY = "aoai-gateway listening on "
# What the Functions host does: capture logs at INFO, index function_app.py, then route requests to its functions.
FUNCTIONS_HOST = (
    "import logging; logging.basicConfig(level=logging.INFO, format='%(message)s')\n"
    "import function_app; from core.serve import run; run('127.0.0.1', 0)"
)


class FunctionsHostProcess:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self._env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_OPENAI_", "CONFIG_"))}
        self._env.update(env, PYTHONUNBUFFERED="1")
        self._log_path = log_path
        self._process: subprocess.Popen[str] | None = None
        self.url = ""

    def __enter__(self) -> FunctionsHostProcess:
        self._process = subprocess.Popen(
            [sys.executable, "-c", FUNCTIONS_HOST],
            cwd=ROOT,
            env=self._env,
            stdout=subprocess.PIPE,
            stderr=self._log_path.open("w"),
            text=True,
        )
        assert self._process.stdout is not None
        line = self._process.stdout.readline()
        assert line.startswith(READY), f"the app did not come up:\n{self.logs()}"
        self.url = line[len(READY) :].strip()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._process is not None
        self._process.terminate()
        self._process.wait(timeout=10)
        if self._process.stdout is not None:
            self._process.stdout.close()

    def logs(self) -> str:
        return self._log_path.read_text()


@pytest.fixture(scope="module")
def azurite() -> Iterator[Azurite]:
    with Azurite() as storage:
        yield storage


def wait_until_healthy(url: str, timeout: float = 20.0) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(f"{url}/health")
        if response.status_code == 200 or time.monotonic() > deadline:
            return response
        time.sleep(0.2)


def test_a_missing_config_blob_is_a_503_until_it_is_uploaded_then_served_without_restart(
    azurite, sim, tmp_path
) -> None:
    env = {**blob_env(azurite, sim), "CONFIG_BLOB_NAME": "later.yaml"}
    with FunctionsHostProcess(env, tmp_path / "host.log") as host:
        health = httpx.get(f"{host.url}/health")
        assert health.status_code == 503
        assert health.json()["status"] == "unavailable"
        assert "blob:devstoreaccount1/config/later.yaml: HTTP 404" in health.json()["reason"]
        assert azurite.account_key not in health.text

        models = httpx.get(f"{host.url}/v1/models", headers={"Authorization": f"Bearer {ALICE}"})
        assert models.status_code == 503
        error = models.json()["error"]
        assert set(error) == {"message", "type", "param", "code"}
        assert error["code"] == "config_unavailable" and error["type"] == "api_error"
        assert int(models.headers["retry-after"]) >= 1

        azurite.put_blob("config", "later.yaml", config("gpt-4o"))
        assert wait_until_healthy(host.url).json() == {"status": "ok"}
        models = httpx.get(f"{host.url}/v1/models", headers={"Authorization": f"Bearer {ALICE}"})
        assert models.status_code == 200 and [m["id"] for m in models.json()["data"]] == ["gpt-4o"]
        chat = httpx.post(
            f"{host.url}/v1/chat/completions",
            headers={"Authorization": f"Bearer {ALICE}"},
            json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert chat.status_code == 200, chat.text
        logs = host.logs()
    assert "configuration not loaded" in logs and "configuration loaded from blob:devstoreaccount1" in logs
    assert azurite.account_key not in logs


def test_an_invalid_config_is_a_503_with_every_problem_and_no_secret(sim, tmp_path) -> None:
    path = tmp_path / "gateway.yaml"
    path.write_text(config("gpt-4o").decode().replace("${ALICE_KEY}", "${NOT_SET_ANYWHERE}"))
    env = {**SECRETS, "SIM_URL": sim.url, "CONFIG_PATH": str(path)}
    with FunctionsHostProcess(env, tmp_path / "host.log") as host:
        health = httpx.get(f"{host.url}/health")
        assert health.status_code == 503 and "NOT_SET_ANYWHERE" in health.json()["reason"]
        assert SECRETS["EASTUS_KEY"] not in health.text
        chat = httpx.post(f"{host.url}/v1/chat/completions", json={"model": "gpt-4o", "messages": []})
        assert chat.status_code == 503 and chat.json()["error"]["code"] == "config_unavailable"


def test_function_app_indexes_every_route_when_the_config_is_missing(tmp_path) -> None:
    script = (
        "import json, function_app\n"
        "print(json.dumps(sorted(f.get_trigger().get_dict_repr()['route'] for f in function_app.app.get_functions())))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_OPENAI_", "CONFIG_"))}
    env["CONFIG_PATH"] = str(tmp_path / "not-there-yet.yaml")
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    routes = json.loads(result.stdout.strip().splitlines()[-1])
    assert {"health", "v1/chat/completions", "v1/models", "v1/files/{*rest}", "{*path}"} <= set(routes)
    assert "not-there-yet.yaml" in result.stderr  # one clear log line says why it is not serving yet


def test_core_serve_locally_still_refuses_a_missing_config(tmp_path) -> None:
    process = GatewayProcess(None, {"CONFIG_PATH": str(tmp_path / "absent.yaml")}, tmp_path)
    code, stderr = process.run_to_exit()
    assert code == 2 and "refusing to start" in stderr and "absent.yaml" in stderr
