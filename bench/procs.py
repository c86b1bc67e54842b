"""Child processes (simulator, naive proxy, gateway) and what the kernel says about them.

Readiness is read from each server's "listening on" line with a deadline (select on the pipe, never a blocking
readline), and every process is stopped with terminate-then-kill so a failed run leaves nothing behind.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
CONFIG_PATH = Path(__file__).resolve().parent / "config.yaml"
SIM_READY = "azure-sim listening on "
GATEWAY_READY = "aoai-gateway listening on "
NAIVE_READY = "naive-proxy listening on "  # bench/naive.py's READY (not imported: that would load uvicorn here)
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(slots=True)
class Service:
    """A started server: its process, the URL it announced, and where its stderr goes."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    log_path: Path
    log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def child_env(sim_url: str) -> dict[str, str]:
    """The environment for the gateway and `import function_app`: this benchmark's config, nothing inherited
    that could point the gateway elsewhere (AZURE_OPENAI_*, CONFIG_*) or turn its metrics on (APPLICATIONINSIGHTS_*:
    the goals are for metrics off; bench.usage sets its own)."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AZURE_OPENAI_", "CONFIG_", "APPLICATIONINSIGHTS_"))
    }
    env["CONFIG_PATH"] = str(CONFIG_PATH)
    env["BENCH_SIM_URL"] = sim_url
    return env


def pinned(argv: list[str], cpus: str | None) -> list[str]:
    """Prefix argv with `taskset -c cpus` when pinning was asked for (and taskset exists)."""
    if cpus is None or shutil.which("taskset") is None:
        return argv
    return ["taskset", "-c", cpus, *argv]


def sim_argv(port: int = 0) -> list[str]:
    return [sys.executable, "-m", "azure_sim", "--host", "127.0.0.1", "--port", str(port)]


def gateway_argv() -> list[str]:
    return [sys.executable, "-m", "core", "serve", "--host", "127.0.0.1", "--port", "0"]


def naive_argv() -> list[str]:
    """The naive proxy (bench/naive.py); its upstream is BENCH_SIM_URL from child_env."""
    return [sys.executable, "-m", "bench.naive", "--host", "127.0.0.1", "--port", "0"]


def spawn(name: str, argv: list[str], env: dict[str, str], ready: str, log_path: Path, timeout: float) -> Service:
    """Start argv and wait (bounded) for its ready line; stops it and raises if it never comes."""
    log = log_path.open("wb")
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
    service = Service(name, process, "", log_path, log)
    try:
        service.url = wait_ready(process, ready, time.monotonic() + timeout)
    except BaseException:
        stop(service)
        raise RuntimeError(f"{name} did not start:\n{service.log_tail()}") from None
    return service


def wait_ready(process: subprocess.Popen[bytes], ready: str, deadline: float) -> str:
    """The URL from the first stdout line starting with `ready`; raises TimeoutError or RuntimeError."""
    assert process.stdout is not None
    fd = process.stdout.fileno()
    pending = b""
    prefix = ready.encode()
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([fd], [], [], min(left, 0.05))
        if readable:
            data = os.read(fd, 4096)
            if not data:
                raise RuntimeError(f"exited with {process.wait(timeout=5)}")
            pending += data
            for line in pending.split(b"\n")[:-1]:
                if line.startswith(prefix):
                    return line[len(prefix) :].strip().decode()
            pending = pending.rsplit(b"\n", 1)[-1]
        elif process.poll() is not None:
            raise RuntimeError(f"exited with {process.returncode}")
    raise TimeoutError("no ready line before the deadline")


def stop(service: Service | None, grace: float = 5.0) -> None:
    """Terminate, then kill after `grace` seconds; safe to call twice."""
    if service is None:
        return
    process = service.process
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=grace)
    if process.stdout is not None:
        process.stdout.close()
    if service.log is not None:
        service.log.close()


def cpu_seconds(pid: int) -> float:
    """utime + stime of the whole process (all threads), from /proc/PID/stat."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may contain spaces: skip past it
    # After the name: field 3 (state) is index 0, so utime (14) and stime (15) are indexes 11 and 12.
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def peak_rss_kib(pid: int) -> int:
    """VmHWM (peak resident set) from /proc/PID/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmHWM for pid {pid}")
