"""`python -m bench.instructions`: the machine instructions each proxy runs per request, counted, not timed.

Timings on a shared 2-core machine move by 10% or more from one run to the next, more than most single changes to
the hot path are worth. An instruction count does not: valgrind's callgrind counts every instruction the process
runs in user space, and the same requests give the same count within 0.1%. It leaves out the kernel's share (the
sockets' system calls, about a sixth of each proxy's CPU here, the same for both) and what the instructions cost
(cache misses), so it is a guide for comparing code, not a replacement for `python -m bench`'s CPU figures; on this
project's 2-core machine the user CPU per request of both proxies followed their instruction counts (2026-12-07:
1.57x against 1.52x, gateway to naive).

Starts the simulator, then each target (the gateway, the naive proxy) under `valgrind --tool=callgrind` with
counting off; sends --warmup requests (bench's chat completion, one keep-alive connection, one at a time), turns
counting on for --requests more, turns it off, stops the target and reads callgrind's total. Prints a markdown table.
`--keys N` gives the gateway N caller keys (the benchmark's last), as a gateway serving many tenants has;
`--limited` gives every key limits (requests and tokens per minute, counted per process); `--metrics` turns the
gateway's metrics on, to a local ingestion sink (bench.usage's): what recording them costs each call is counted, not
their export, which runs every minute on a real gateway and would here land on a few hundred calls.
`--stream` sends bench's streamed chat completion instead, each answer read to its last byte.
Needs valgrind (`apt-get install valgrind`); a target starts in some 10 to 60 seconds under it.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import yaml

from bench import procs, usage
from bench.client import CHAT_BODY, STREAM_BODY, Connection, Target, gateway_target, naive_target, timed_request

START_TIMEOUT_S = 300.0  # a process under valgrind starts some 20 to 50 times slower
# Metrics are exported once the counting is over: under valgrind 300 calls take a minute, where they take a tenth of
# a second, so an export every few seconds would be charged to a few hundred calls instead of tens of thousands.
EXPORT_MILLIS = 600_000


def count_instructions(
    target_name: str,
    sim_url: str,
    warmup: int,
    requests: int,
    workdir: Path,
    config: Path | None = None,
    metrics_to: str | None = None,
    body: bytes = CHAT_BODY,
) -> int:
    """The instructions `target_name` ("gateway" or "naive") runs in user space for `requests` chat completions;
    `config`: the gateway's configuration instead of bench/config.yaml; `metrics_to`: an ingestion sink's URL, the
    gateway's metrics on (recorded per call; exported after the counting, see EXPORT_MILLIS); `body`: the chat
    completion sent (bench's streamed one: each answer read to its last byte)."""
    argv, ready, make_target = (
        (procs.gateway_argv(), procs.GATEWAY_READY, gateway_target)
        if target_name == "gateway"
        else (procs.naive_argv(), procs.NAIVE_READY, naive_target)
    )
    counts = workdir / f"callgrind.{target_name}.out"
    valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={counts}"]
    env = procs.child_env(sim_url)
    env["PYTHONHASHSEED"] = "0"  # the same hashing in every run: dict and set probes take the same paths
    if config is not None:
        env["CONFIG_PATH"] = str(config)
    if metrics_to is not None:
        env.update(usage.metrics_env(metrics_to, EXPORT_MILLIS, traces=False))
    service = procs.spawn(target_name, valgrind + argv, env, ready, workdir / f"{target_name}.log", START_TIMEOUT_S)
    try:
        target = make_target(service.url)
        connection = Connection(target, timeout=60.0)
        try:
            _send(connection, target, warmup, body)
            _counting(service.pid, on=True)
            _send(connection, target, requests, body)
            _counting(service.pid, on=False)
        finally:
            connection.close()
    finally:
        procs.stop(service, grace=60.0)  # callgrind writes its counts as the process exits
    return _total(counts)


def configured(keys: int, limited: bool, workdir: Path) -> Path:
    """bench/config.yaml with `keys` caller keys in all, the benchmark's own last (what a gateway serving many
    tenants checks each call's key against), each with limits when `limited` (what bench.usage gives its key)."""
    config = yaml.safe_load(procs.CONFIG_PATH.read_text())
    tenants = [{"name": f"tenant-{i}", "key": f"tenant-{i:06d}-{'k' * 32}"} for i in range(keys - 1)]
    config["gateway"]["apiKeys"] = tenants + config["gateway"]["apiKeys"]
    if limited:
        for key in config["gateway"]["apiKeys"]:
            key["limits"] = {"requestsPerMinute": 100_000_000, "tokensPerMinute": 100_000_000_000}
    path = workdir / f"config-{keys}-keys{'-limited' if limited else ''}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _send(connection: Connection, target: Target, requests: int, body: bytes) -> None:
    request = target.request(body)
    for _ in range(requests):
        timed_request(connection, request)


def _counting(pid: int, *, on: bool) -> None:
    subprocess.run(["callgrind_control", "-i", "on" if on else "off", str(pid)], check=True, capture_output=True)


def _total(counts: Path) -> int:
    """callgrind's `totals:` line (the events counted while counting was on)."""
    for line in counts.read_text().splitlines():
        if line.startswith("totals:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {counts}")


def table(per_request: dict[str, float]) -> str:
    rows = ["| target | instructions per request | against naive |", "|---|---|---|"]
    naive = per_request.get("naive")
    for name, count in per_request.items():
        ratio = f"{count / naive:.2f}x" if naive else "-"
        rows.append(f"| {name} | {count:,.0f} | {ratio} |")
    return "\n".join(rows)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.instructions", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=300, help="requests counted (default 300)")
    parser.add_argument("--warmup", type=int, default=50, help="requests before counting (default 50)")
    parser.add_argument("--target", choices=("gateway", "naive", "both"), default="both")
    parser.add_argument("--keys", type=int, default=1, help="caller keys in the gateway's configuration (default 1)")
    parser.add_argument("--limited", action="store_true", help="every caller key with limits (per process)")
    parser.add_argument("--metrics", action="store_true", help="the gateway's metrics on, to a local sink")
    parser.add_argument("--stream", action="store_true", help="streamed chat completions, each read to its end")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    names = ["gateway", "naive"] if args.target == "both" else [args.target]
    per_request: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-instructions-") as tmp:
        workdir = Path(tmp)
        config = configured(args.keys, args.limited, workdir) if args.keys > 1 or args.limited else None
        sim = procs.spawn("simulator", procs.sim_argv(), dict(os.environ), procs.SIM_READY, workdir / "sim.log", 30)
        sink = usage.IngestionSink() if args.metrics else None
        try:
            for name in names:
                print(f"[bench.instructions] {name}: {args.requests} requests under callgrind", file=sys.stderr)
                metrics_to = sink.url if sink is not None and name == "gateway" else None
                body = STREAM_BODY if args.stream else CHAT_BODY
                total = count_instructions(name, sim.url, args.warmup, args.requests, workdir, config, metrics_to, body)
                per_request[name] = total / args.requests
        finally:
            procs.stop(sim)
            if sink is not None:
                sink.stop()
    print(table(per_request))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
