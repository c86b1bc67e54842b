"""Why the gateway's upstream transport is aiohttp: the naive proxy through aiohttp against the same through httpx.

`python -m bench.transports [--quick] [--duration N]` starts the simulator and two naive proxies (bench/naive.py):
one forwards through an aiohttp ClientSession, the other through an httpx AsyncClient, each with its library's
defaults and nothing else different. It measures both, and the simulator directly, interleaved in one run (ABBA):
the added latency one request at a time, then throughput and CPU per request at 32 requests at once (wrk when
installed). Prints a markdown table. See bench/README.md, "Transports".
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench import latency, load, procs
from bench.client import CHAT_BODY, direct_target, naive_target, timed_request
from bench.naive import CLIENTS  # its --client choices: each a target here, named after it

CONCURRENCY = 32


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.transports", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts: a smoke run, not a measurement")
    parser.add_argument("--duration", type=int, default=10, help="seconds of load per proxy (default 10)")
    args = parser.parse_args(argv)
    per_target, rounds, warmup = (200, 2, 50) if args.quick else (3000, 10, 300)
    per_slice = 1 if args.quick else max(1, args.duration // 2)  # two slices per proxy
    workdir = Path(tempfile.mkdtemp(prefix="aoai-bench-transports-"))
    services: list[procs.Service] = []
    try:
        sim = procs.spawn("simulator", procs.sim_argv(), dict(os.environ), procs.SIM_READY, workdir / "sim.log", 30)
        services.append(sim)
        env = procs.child_env(sim.url)
        proxies = {}
        for client in CLIENTS:
            argv_ = [*procs.naive_argv(), "--client", client]
            proxy = procs.spawn(client, argv_, env, procs.NAIVE_READY, workdir / f"{client}.log", 30)
            services.append(proxy)
            proxies[client] = proxy
        targets = [dataclasses.replace(naive_target(proxies[client].url), name=client) for client in CLIENTS]
        measured = [direct_target(sim.url), *targets]
        generator = load.make_wrk(workdir, None) if load.wrk_path() else load.python_generator
        latency.warm_up(measured, CHAT_BODY, timed_request, warmup, 60)
        for target in targets:
            generator(target, CHAT_BODY, CONCURRENCY, 1)  # the pools' connections made before anything counts
        _progress(f"latency: {per_target} per target, {rounds} rounds")
        phase = latency.interleave(
            measured, CHAT_BODY, timed_request, per_target=per_target, rounds=rounds, budget_s=180,
        )  # fmt: skip
        _progress(f"throughput: 2 x {per_slice} s per proxy at concurrency {CONCURRENCY}")
        probes = {client: _cpu_probe(proxies[client].pid) for client in CLIENTS}
        throughput = load.interleave(
            generator, targets, CHAT_BODY, concurrency=CONCURRENCY, seconds_per_slice=per_slice, rounds=2,
            probes=probes,
        )  # fmt: skip
        print(table(phase, throughput))
        return 0
    finally:
        for service in reversed(services):
            procs.stop(service)
        shutil.rmtree(workdir, ignore_errors=True)


def _cpu_probe(pid: int) -> load.CpuProbe:
    return lambda: procs.cpu_seconds(pid)


def _progress(message: str) -> None:
    print(f"[bench.transports] {message}", file=sys.stderr, flush=True)


def table(phase: latency.Phase, throughput: load.Throughput) -> str:
    """One row per proxy, then httpx's figures over aiohttp's."""
    direct = phase.summary("direct")
    lines = [
        "| upstream client | added p50 / p99, one at a time | req/s at 32 at once | failed | CPU per request at 32 |",
        "|---|---|---|---|---|",
    ]
    figures = {}
    for client in CLIENTS:
        own = phase.summary(client)
        result = throughput.results[client]
        cpu_ms = 1000 * throughput.cpu_seconds[(client, client)] / max(1, result.ok)
        added = own.p50_ms - direct.p50_ms
        figures[client] = (added, result.rps, cpu_ms)
        lines.append(
            f"| {client} | +{added:.2f} / +{own.p99_ms - direct.p99_ms:.2f} ms | {result.rps:,.0f} | "
            f"{result.errors} | {cpu_ms:.3f} ms |"
        )
    (added_a, rps_a, cpu_a), (added_h, rps_h, cpu_h) = figures["aiohttp"], figures["httpx"]
    lines.append("")
    lines.append(
        f"httpx / aiohttp: added p50 {added_h / added_a:.2f}x, req/s {rps_h / rps_a:.2f}x, "
        f"CPU per request {cpu_h / cpu_a:.2f}x"
    )
    if phase.truncated:
        lines.append("\nWARNING: the latency phase ran out of time before every request was made")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
