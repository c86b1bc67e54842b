"""Cold-start figures: `import function_app` time, and process spawn to the first 200 from a real completion.

Both matter on Azure Functions, where a scale-out instance imports function_app before it can serve.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench import procs
from bench.client import CHAT_BODY, BadStatus, Connection, gateway_target, timed_request

# Timed inside the child so interpreter start-up is excluded: this is the import alone (it loads the config).
_IMPORT_CODE = (
    "import time; t = time.perf_counter(); import function_app; print(f'{(time.perf_counter() - t) * 1000:.3f}')"
)


def import_ms(env: dict[str, str], runs: int, cpus: str | None) -> list[float]:
    """`import function_app` in `runs` fresh interpreters, milliseconds each."""
    out = []
    for _ in range(runs):
        argv = procs.pinned([sys.executable, "-c", _IMPORT_CODE], cpus)
        done = subprocess.run(argv, cwd=procs.ROOT, env=env, capture_output=True, text=True, timeout=60, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"import function_app failed:\n{done.stderr[-2000:]}")
        out.append(float(done.stdout.strip().splitlines()[-1]))
    return out


def start_to_first_200_s(
    env: dict[str, str], runs: int, workdir: Path, cpus: str | None, timeout: float = 30.0
) -> list[float]:
    """Seconds from spawning `python -m core serve --port 0` to a 200 chat completion through it."""
    return [_one_start(env, workdir / f"start-{i}.log", cpus, timeout) for i in range(runs)]


def _one_start(env: dict[str, str], log_path: Path, cpus: str | None, timeout: float) -> float:
    started = time.perf_counter()
    service = procs.spawn(
        "gateway (cold start)", procs.pinned(procs.gateway_argv(), cpus), env, procs.GATEWAY_READY, log_path, timeout
    )
    try:
        target = gateway_target(service.url)
        request = target.request(CHAT_BODY)
        deadline = time.monotonic() + timeout
        # The port is announced once uvicorn listens, so the first try normally succeeds; retry briefly if not.
        while time.monotonic() < deadline:
            try:
                conn = Connection(target)
                try:
                    timed_request(conn, request)
                finally:
                    conn.close()
                return time.perf_counter() - started
            except (OSError, BadStatus):
                time.sleep(0.005)
        raise TimeoutError(f"no 200 within {timeout}s:\n{service.log_tail()}")
    finally:
        procs.stop(service)


def median(values: list[float]) -> float:
    return statistics.median(values)
