"""Configuration in blob storage, from a real Azurite: load, hot reload by ETag, bad
updates and unreachable storage keep the last good configuration."""

import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import httpx
import pytest

from core.config.provider import ConfigProvider
from tests.support.azurite import Azurite, FakeStorageCredential
from tests.support.blob import blob_env, config
from tests.support.gateway_process import ROOT
from tests.support.standard import ALICE, SECRETS


@pytest.fixture(scope="module")
def azurite() -> Iterator[Azurite]:
    with Azurite() as storage:
        yield storage


def models(gateway) -> list[str]:
    body = httpx.get(f"{gateway.url}/v1/models", headers={"Authorization": f"Bearer {ALICE}"}).json()
    return [m["id"] for m in body["data"]]


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


def test_blob_config_loads_and_reloads_by_etag_keeping_the_last_good_one(azurite, sim, start_gateway) -> None:
    azurite.put_blob("config", "gateway.yaml", config("gpt-4o"))
    gateway = start_gateway(None, blob_env(azurite, sim))
    assert models(gateway) == ["gpt-4o"]  # the first request also starts the reload loop

    azurite.put_blob("config", "gateway.yaml", config("gpt-4o", "gpt-4o-mini"))
    assert wait_for(lambda: models(gateway) == ["gpt-4o", "gpt-4o-mini"])
    assert "configuration reloaded from blob:devstoreaccount1/config/gateway.yaml" in gateway.logs()

    azurite.put_blob("config", "gateway.yaml", config("gpt-4o", "gpt-4o-mini").replace(b"apiKey:", b"apiKey: [", 1))
    assert wait_for(lambda: "config reload rejected" in gateway.logs())
    assert models(gateway) == ["gpt-4o", "gpt-4o-mini"]  # still the last good one
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "still here"}]}
    answer = httpx.post(f"{gateway.url}/v1/chat/completions", json=chat, headers={"Authorization": f"Bearer {ALICE}"})
    assert answer.json()["choices"][0]["message"]["content"] == "Echo: still here"

    azurite.put_blob("config", "gateway.yaml", config("gpt-4.1"))
    assert wait_for(lambda: models(gateway) == ["gpt-4.1"])


def test_unreachable_storage_keeps_the_last_good_config(sim, start_gateway) -> None:
    with Azurite() as storage:
        storage.put_blob("config", "gateway.yaml", config("gpt-4o"))
        gateway = start_gateway(None, blob_env(storage, sim))
        assert models(gateway) == ["gpt-4o"]
    # storage is gone now
    assert wait_for(lambda: "config reload skipped, the source could not be read" in gateway.logs())
    assert models(gateway) == ["gpt-4o"]


def test_missing_blob_refuses_to_start(azurite, sim, tmp_path) -> None:
    from tests.support.gateway_process import GatewayProcess

    env = {**blob_env(azurite, sim), "CONFIG_BLOB_NAME": "absent.yaml"}
    code, stderr = GatewayProcess(None, env, tmp_path).run_to_exit()
    assert code == 2 and "Cannot read blob:devstoreaccount1/config/absent.yaml: HTTP 404" in stderr
    assert azurite.account_key not in stderr


def test_check_reads_the_blob(azurite, sim) -> None:
    azurite.put_blob("config", "gateway.yaml", config("gpt-4o"))
    result = subprocess.run(
        [sys.executable, "-m", "core", "check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", **blob_env(azurite, sim)},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Configuration OK: blob:devstoreaccount1/config/gateway.yaml" in result.stdout
    assert azurite.account_key not in result.stdout


def test_blob_url_read_with_the_apps_identity(sim, monkeypatch) -> None:
    with Azurite(oauth=True) as storage:  # HTTPS + OAuth: Azurite checks the bearer token
        for name, value in storage.ca_env().items():
            monkeypatch.setenv(name, value)
        storage.put_blob("config", "gateway.yaml", config("gpt-4o"))
        credential = FakeStorageCredential()
        env = {**SECRETS, "SIM_URL": sim.url, "CONFIG_PATH": storage.https_blob_url("config", "gateway.yaml")}
        provider = ConfigProvider(env, credential=credential)
        assert list(provider.load().routes) == ["gpt-4o"]
        assert provider.reloadable and provider.reload() is None  # unchanged: 304 by ETag
        storage.put_blob("config", "gateway.yaml", config("gpt-4o", "gpt-4.1"))
        reloaded = provider.reload()
        assert reloaded is not None and list(reloaded.routes) == ["gpt-4o", "gpt-4.1"]
        assert provider.label == f"blob:{storage.https_blob_url('config', 'gateway.yaml')}"


def test_a_stream_in_flight_finishes_on_the_config_it_started_with(azurite, sim, start_gateway) -> None:
    azurite.put_blob("config", "gateway.yaml", config("gpt-4o"))
    gateway = start_gateway(None, blob_env(azurite, sim))
    chat = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": "a slow answer"}]}
    headers = {"Authorization": f"Bearer {ALICE}", "x-sim-chunk-delay-ms": "400"}
    with httpx.stream("POST", f"{gateway.url}/v1/chat/completions", json=chat, headers=headers, timeout=20) as stream:
        chunks = stream.iter_raw()
        next(chunks)
        azurite.put_blob("config", "gateway.yaml", config("gpt-4.1"))  # gpt-4o is gone from the new one
        assert wait_for(lambda: models(gateway) == ["gpt-4.1"])
        rest = b"".join(chunks)
    assert rest.rstrip().endswith(b"data: [DONE]")
    gone = httpx.post(f"{gateway.url}/v1/chat/completions", json={**chat, "stream": False}, headers=headers)
    assert gone.status_code == 404
