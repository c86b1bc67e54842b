"""`make run` without a configuration of your own: the local Azure OpenAI simulator, and the gateway in front of it.

Both or neither: a port already taken is one clear line and a non-zero exit before anything starts, and the
gateway never starts without its upstream (with the simulator's port taken, something else would answer every call).
The simulator is this process's child, stopped with it however it stops (Ctrl-C, or SIGTERM from an IDE's stop
button or a supervisor); `config/local.yaml` names port 8081, rewritten here when the simulator gets another.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

LOCAL_CONFIG = Path(__file__).resolve().parents[1] / "config" / "local.yaml"
CONFIG_SIM_URL = "http://127.0.0.1:8081"  # what config/local.yaml names
SIM_READY = "azure-sim listening on "
SIM_START_SECONDS = 30.0


class DemoError(Exception):
    """Why the demo cannot start, in one line for the terminal."""


def port_taken(host: str, port: int) -> bool:
    if port == 0:
        return False
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError:
            return True
    return False


def check_ports(host: str, port: int, sim_port: int) -> None:
    if port == sim_port and port != 0:
        raise DemoError(f"the gateway and the simulator cannot share port {port}: set PORT or SIM_PORT")
    wanted = (("gateway", host, port, "PORT"), ("simulator", "127.0.0.1", sim_port, "SIM_PORT"))
    for what, where, number, variable in wanted:
        if port_taken(where, number):
            raise DemoError(f"port {number} (the {what}) is already in use: stop what holds it, or set {variable}=...")


@contextlib.contextmanager
def simulator(port: int) -> Iterator[str]:
    """The simulator as a child process, ready; its URL. Stopped on the way out."""
    child = subprocess.Popen(
        [sys.executable, "-m", "azure_sim", "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # its ready line, or nothing once it has died
        if not line.startswith(SIM_READY):
            child.wait(timeout=SIM_START_SECONDS)
            reason = (child.stderr.read() if child.stderr else "").strip().splitlines()
            raise DemoError(f"the simulator did not start: {reason[-1] if reason else 'no reason given'}")
        yield line[len(SIM_READY) :].strip()
    finally:
        if child.poll() is None:
            child.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=5)
        if child.poll() is None:
            child.kill()


def local_config(sim_url: str, directory: str) -> Path:
    """config/local.yaml, pointed at `sim_url`."""
    text = LOCAL_CONFIG.read_text()
    path = Path(directory) / "local.yaml"
    path.write_text(text.replace(CONFIG_SIM_URL, sim_url))
    return path
