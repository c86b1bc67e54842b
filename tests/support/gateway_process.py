"""Run the gateway's local host (`python -m core serve`) as a real process on 127.0.0.1.

Tests talk to it over a real socket, through the same route table Azure indexes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_READY = "aoai-gateway listening on "


class GatewayProcess:
    def __init__(self, config_text: str | None, env: dict[str, str], workdir: Path, args: tuple[str, ...] = ()) -> None:
        self._args = args  # more `serve` options
        self._env = {k: v for k, v in os.environ.items() if not k.startswith(("AZURE_OPENAI_", "CONFIG_"))}
        self._env.update(env)
        self._env["PYTHONUNBUFFERED"] = "1"
        if config_text is not None:
            config_path = workdir / "gateway.yaml"
            config_path.write_text(config_text)
            self._env["CONFIG_PATH"] = str(config_path)
        self._log_path = workdir / "gateway.log"
        self._process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self, timeout: float = 20.0) -> GatewayProcess:
        log = self._log_path.open("w")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "core", "serve", "--host", "127.0.0.1", "--port", "0", *self._args],
            cwd=ROOT,
            env=self._env,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        deadline = time.monotonic() + timeout
        assert self._process.stdout is not None
        while time.monotonic() < deadline:
            line = self._process.stdout.readline()
            if line.startswith(_READY):
                self.url = line[len(_READY) :].strip()
                return self
            if not line and self._process.poll() is not None:
                raise RuntimeError(f"gateway exited with {self._process.returncode}:\n{self.logs()}")
        self.stop()
        raise RuntimeError(f"gateway did not start within {timeout}s:\n{self.logs()}")

    def run_to_exit(self, timeout: float = 20.0) -> tuple[int, str]:
        """Start, expecting the process to refuse and exit; returns (code, stderr)."""
        result = subprocess.run(
            [sys.executable, "-m", "core", "serve", "--host", "127.0.0.1", "--port", "0", *self._args],
            cwd=ROOT,
            env=self._env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        return result.returncode, result.stderr

    def logs(self) -> str:
        return self._log_path.read_text() if self._log_path.exists() else ""

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()
