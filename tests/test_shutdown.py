"""A scale-in loses no counts: when the Functions host stops its worker with SIGTERM, the gateway writes what it
used to the usage table first, then exits as the signal would have made it.

The Functions host cannot run here, so a subprocess does what its Python worker does: import function_app.py on
its running event loop, serve the app's functions with no shutdown hook of its own and no signal handler (a
uvicorn server whose signal capture and lifespan are off)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.azurite import AzuriteTable
from tests.support.budgets import fresh_minute, limited, post, usage_report
from tests.support.standard import ALICE, SECRETS

ROOT = Path(__file__).resolve().parents[1]
READY = "aoai-gateway listening on "
WORKER = """
import asyncio, contextlib, logging
import uvicorn
logging.basicConfig(level=logging.INFO, format="%(message)s")

async def main():
    import function_app  # indexed on the worker's running loop
    from core.serve import _AnnouncingServer, build_app

    class Worker(_AnnouncingServer):
        @contextlib.contextmanager
        def capture_signals(self):  # the worker handles no signal itself
            yield

    config = uvicorn.Config(build_app(), host="127.0.0.1", port=0, lifespan="off", log_level="warning")
    await Worker(config).serve()

asyncio.run(main())
"""


class WorkerProcess:
    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_OPENAI_", "CONFIG_"))}
        self._log_path = log_path
        self.process = subprocess.Popen(
            [sys.executable, "-c", WORKER],
            cwd=ROOT,
            env={**environ, **env, "PYTHONUNBUFFERED": "1"},
            stdout=subprocess.PIPE,
            stderr=log_path.open("w"),
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith(READY), f"the worker did not come up:\n{self.logs()}"
        self.url = line[len(READY) :].strip()

    def logs(self) -> str:
        return self._log_path.read_text()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        if self.process.stdout is not None:
            self.process.stdout.close()


@pytest.fixture
def tables() -> Iterator[AzuriteTable]:
    with AzuriteTable() as service:
        yield service


def test_sigterm_writes_the_counts_then_ends_the_process_as_the_signal_would(sim, tables, tmp_path) -> None:
    limit = 1000
    config_path = tmp_path / "gateway.yaml"
    config_path.write_text(limited(f"{{requestsPerMinute: {limit}}}"))
    env = {
        **SECRETS,
        "SIM_URL": sim.url,
        "CONFIG_PATH": str(config_path),
        "USAGE_TABLE_CONNECTION_STRING": tables.connection_string,
    }
    fresh_minute(30)
    worker = WorkerProcess(env, tmp_path / "worker.log")
    try:
        assert [post(worker, ALICE).status_code for _ in range(10)] == [200] * 10
        worker.process.send_signal(signal.SIGTERM)  # at once: the counts are in memory, not yet synced
        assert worker.process.wait(timeout=10) == -signal.SIGTERM
    finally:
        worker.stop()
    alice = [line for line in usage_report(env, config_path).splitlines() if line.startswith("alice")]
    assert len(alice) == 1 and f"requests 10/{limit}" in alice[0], alice
    assert "stopping: usage counts flushed" in worker.logs()
