"""Fixed-duration load at a given concurrency: wrk when installed, else a Python asyncio raw-socket generator.

Why wrk first: on a 2-core box the load generator competes with the processes it measures. wrk is C and spends a
few microseconds per request; a Python generator spends tens, taking CPU from the gateway and the simulator and
understating both. The Python fallback exists so the benchmark runs anywhere; the output says which was used.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import orjson

from bench.client import Target

CpuProbe = Callable[[], float]

# Lua for wrk: method, body, headers; `done` prints one machine-readable line we parse (wrk's own text is for humans).
_WRK_SCRIPT = """\
wrk.method = "POST"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
wrk.headers[ {auth_name} ] = {auth_value}
done = function(summary, latency, requests)
  io.write(string.format(
    "BENCH_JSON {{\\"requests\\":%d,\\"duration_us\\":%d,\\"status_errors\\":%d,\\"socket_errors\\":%d," ..
    "\\"p50_us\\":%d,\\"p99_us\\":%d}}\\n",
    summary.requests, summary.duration, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"""


@dataclass(slots=True)
class LoadResult:
    requests: int = 0  # completed responses
    errors: int = 0  # non-2xx responses and socket errors
    seconds: float = 0.0
    p50_ms: list[float] = field(default_factory=list)  # one per slice (percentiles do not add up across slices)
    p99_ms: list[float] = field(default_factory=list)

    @property
    def ok(self) -> int:
        return self.requests - self.errors

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def add(self, other: LoadResult) -> None:
        self.requests += other.requests
        self.errors += other.errors
        self.seconds += other.seconds
        self.p50_ms += other.p50_ms
        self.p99_ms += other.p99_ms


Generator = Callable[[Target, bytes, int, int], LoadResult]  # (target, body, concurrency, seconds) -> result


def wrk_path() -> str | None:
    return shutil.which("wrk")


def _lua_string(value: str) -> str:
    return "[==[" + value + "]==]"  # a long bracket: no escaping needed for JSON or header values


def make_wrk(workdir: Path, cpus: str | None) -> Generator:
    """A generator that runs one wrk thread (one thread keeps 32 connections busy with CPU to spare)."""
    wrk = wrk_path()
    assert wrk is not None

    def run(target: Target, body: bytes, concurrency: int, seconds: int) -> LoadResult:
        script = workdir / f"wrk-{target.name}.lua"
        script.write_text(
            _WRK_SCRIPT.format(
                body=_lua_string(body.decode()),
                auth_name=_lua_string(target.auth_header[0]),
                auth_value=_lua_string(target.auth_header[1]),
            )
        )
        argv = [wrk, "-t1", f"-c{concurrency}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script), target.url]
        if cpus is not None and shutil.which("taskset"):
            argv = ["taskset", "-c", cpus, *argv]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30, check=False)
        return _parse_wrk(done.stdout, done.stderr)

    return run


def _parse_wrk(stdout: str, stderr: str) -> LoadResult:
    for line in stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            data = orjson.loads(line[len("BENCH_JSON ") :])
            return LoadResult(
                requests=data["requests"],
                errors=data["status_errors"] + data["socket_errors"],
                seconds=data["duration_us"] / 1e6,
                p50_ms=[data["p50_us"] / 1000],
                p99_ms=[data["p99_us"] / 1000],
            )
    raise RuntimeError(f"wrk printed no result:\n{stdout}\n{stderr}")


def python_generator(target: Target, body: bytes, concurrency: int, seconds: int) -> LoadResult:
    """Raw asyncio streams (uvloop when available): pre-built request bytes, Content-Length framing only."""
    try:
        import uvloop

        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = uvloop.new_event_loop
    except ImportError:
        loop_factory = None
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        return runner.run(_python_load(target, target.request(body), concurrency, seconds))


async def _python_load(target: Target, request: bytes, concurrency: int, seconds: int) -> LoadResult:
    started = time.perf_counter()
    deadline = started + seconds
    latencies: list[float] = []
    counts = await asyncio.gather(*(_worker(target, request, deadline, latencies) for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def pick(p: float) -> float:
        return latencies[max(0, int(len(latencies) * p) - 1)] * 1000 if latencies else 0.0

    return LoadResult(
        requests=sum(c[0] for c in counts),
        errors=sum(c[1] for c in counts),
        seconds=elapsed,
        p50_ms=[pick(0.50)],
        p99_ms=[pick(0.99)],
    )


async def _worker(target: Target, request: bytes, deadline: float, latencies: list[float]) -> tuple[int, int]:
    """One connection sending requests back to back until the deadline; (responses, errors)."""
    responses = errors = 0
    reader, writer = await asyncio.open_connection(target.host, target.port)
    try:
        while (now := time.perf_counter()) < deadline and responses < 10_000_000:
            writer.write(request)
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=10)
            length = _content_length(head)
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - now)
            responses += 1
            if not head.startswith(b"HTTP/1.1 200"):
                errors += 1
    except (OSError, asyncio.IncompleteReadError, TimeoutError, ValueError):
        errors += 1
    finally:
        writer.close()
    return responses, errors


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            return int(line[15:])
    raise ValueError("no Content-Length")


@dataclass(slots=True)
class Throughput:
    results: dict[str, LoadResult]
    cpu_seconds: dict[tuple[str, str], float]  # (target name, process name) -> CPU used during that target's slices


def interleave(
    generator: Generator,
    targets: Sequence[Target],
    body: bytes,
    *,
    concurrency: int,
    seconds_per_slice: int,
    rounds: int,
    probes: Mapping[str, CpuProbe],
) -> Throughput:
    """`rounds` ABBA-ordered slices per target; CPU of every probed process is read around each slice."""
    out = Throughput({t.name: LoadResult() for t in targets}, {})
    for index in range(rounds):
        for target in targets if index % 2 == 0 else list(reversed(targets)):
            before = {name: probe() for name, probe in probes.items()}
            out.results[target.name].add(generator(target, body, concurrency, seconds_per_slice))
            for name, probe in probes.items():
                key = (target.name, name)
                out.cpu_seconds[key] = out.cpu_seconds.get(key, 0.0) + probe() - before[name]
    return out
