"""`python -m bench.faults`: what a pool costs when one member throttles.

Two simulators serve the same deployment; one answers 429 with Retry-After: 1 (and retry-after-ms: 1000) to 30% of
requests. Interleaved slices (ABC, then CBA) at 200 concurrent clients compare the healthy single-member model, a
pool of two healthy members (what the pool itself costs) and the pool over both simulators: the client-visible
errors (goal: 0) and the added p50/p99. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import orjson

from bench import procs
from bench.client import gateway_target
from bench.load import LoadResult, python_generator

CONFIG_PATH = Path(__file__).resolve().parent / "faults.yaml"
_MESSAGES = [{"role": "user", "content": "Say hello in one short sentence."}]
MODELS = {
    "single member": "gpt-4o",
    "pool, both members healthy": "gpt-4o-pool-healthy",
    "pool, one member throttled": "gpt-4o-pool",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.faults", description=__doc__)
    parser.add_argument("--seconds", type=int, default=20, help="load seconds per model (two slices each)")
    parser.add_argument("--concurrency", type=int, default=200)
    parser.add_argument("--fail-rate", type=float, default=0.3, help="share of the throttled member's 429s")
    args = parser.parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="aoai-bench-faults-"))
    services: list[procs.Service] = []
    try:
        healthy = procs.spawn("healthy", procs.sim_argv(), dict(os.environ), procs.SIM_READY, workdir / "a.log", 30)
        services.append(healthy)
        faults = ["--fail", "429", "--fail-rate", str(args.fail_rate), "--retry-after-ms", "1000"]
        throttled_argv = [*procs.sim_argv(), *faults]
        throttled = procs.spawn("throttled", throttled_argv, dict(os.environ), procs.SIM_READY, workdir / "b.log", 30)
        services.append(throttled)
        env = {**procs.child_env(healthy.url), "CONFIG_PATH": str(CONFIG_PATH), "BENCH_THROTTLED_URL": throttled.url}
        gateway = procs.spawn("gateway", procs.gateway_argv(), env, procs.GATEWAY_READY, workdir / "gw.log", 30)
        services.append(gateway)
        target = gateway_target(gateway.url)
        results = {name: LoadResult() for name in MODELS}
        slice_seconds = max(1, args.seconds // 2)
        python_generator(target, _body("gpt-4o"), args.concurrency, 1)  # warm-up, unrecorded
        for index in range(2):
            for name in MODELS if index == 0 else reversed(list(MODELS)):
                print(f"[faults {time.strftime('%H:%M:%S')}] {name}: {slice_seconds} s", file=sys.stderr, flush=True)
                results[name].add(python_generator(target, _body(MODELS[name]), args.concurrency, slice_seconds))
        procs.stop(gateway)  # flushes its access log
        failovers = sum('"failed":[' in line for line in (workdir / "gw.log").read_text().splitlines())
        _report(results, args, failovers)
    finally:
        for service in reversed(services):
            procs.stop(service)
    return 0


def _body(model: str) -> bytes:
    return orjson.dumps({"model": model, "messages": _MESSAGES})


def _report(results: dict[str, LoadResult], args: argparse.Namespace, failovers: int) -> None:
    base = results["single member"]
    print(
        f"\n{args.concurrency} concurrent clients, {args.seconds} s per model, python load generator, "
        f"throttled member: 429 on {args.fail_rate:.0%} (Retry-After: 1)\n"
    )
    print("| run | requests | client-visible errors | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms |")
    print("|---|---|---|---|---|---|---|---|")
    for name, result in results.items():
        p50, p99 = max(result.p50_ms), max(result.p99_ms)
        added = "-" if result is base else f"{p50 - max(base.p50_ms):+.1f} | {p99 - max(base.p99_ms):+.1f}"
        row = f"| {name} | {result.requests} | {result.errors} | {result.rps:.0f} | {p50:.1f} | {p99:.1f} |"
        print(row + (" - | - |" if result is base else f" {added} |"))
    print(f"\nRequests that failed over after a 429 (access-log lines with `failed`): {failovers}")


if __name__ == "__main__":
    sys.exit(main())
