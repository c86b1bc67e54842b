"""`python -m bench.faults`: what a pool costs when one member throttles.

Two simulators serve the same deployment; one answers 429 with Retry-After: 1 (and retry-after-ms: 1000) to 30% of
requests. Interleaved slices (ABC, then CBA) at 200 concurrent clients compare the healthy single-member model, a
pool of two healthy members (what the pool itself costs) and the pool over both simulators: the client-visible
errors (goal: 0) and the added p50/p99.

Then one tenant poisons a pool: a `poisoner` key sends, alone for a while, then alongside the others, only prompts
Azure answers with a 500 (x-sim-fail: 500) to a pool of two healthy members; its failures open both members'
breakers, and the other tenant's clients must still be served (goal: 0 errors, no 429). See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import orjson

from bench import procs
from bench.client import Target, gateway_target
from bench.load import LoadResult, python_generator

POISONED = "gpt-4o-poisoned"
POISON_LEAD_SECONDS = 3  # the poisoner alone first, so that its failures are all the pool sees
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
        print(f"[faults {time.strftime('%H:%M:%S')}] one tenant poisons a pool", file=sys.stderr, flush=True)
        tenant = _poisoned(target, args.concurrency, slice_seconds)
        procs.stop(gateway)  # flushes its access log
        lines = (workdir / "gw.log").read_text().splitlines()
        failovers = sum('"failed":[' in line for line in lines)
        _report(results, args, failovers)
        _report_poisoned(tenant, lines)
    finally:
        for service in reversed(services):
            procs.stop(service)
    return 0


def _poisoned(target: Target, concurrency: int, seconds: int) -> LoadResult:
    """The poisoner's 500s alone for POISON_LEAD_SECONDS, then the other tenant's load alongside for `seconds`."""
    poisoner = replace(target, auth_header=("Authorization", "Bearer bench-poisoner-key"))
    poisoner = replace(poisoner, extra_headers=(("x-sim-fail", "500"),))
    body = _body(POISONED)
    thread = threading.Thread(
        target=python_generator, args=(poisoner, body, 4, POISON_LEAD_SECONDS + seconds), daemon=True
    )
    thread.start()
    time.sleep(POISON_LEAD_SECONDS)
    tenant = python_generator(target, body, concurrency, seconds)
    thread.join()
    return tenant


def _report_poisoned(tenant: LoadResult, log_lines: list[str]) -> None:
    statuses: dict[str, Counter[int]] = {"bench": Counter(), "poisoner": Counter()}
    for line in log_lines:
        if line.startswith('{"request_id"') and POISONED in line:
            record = orjson.loads(line)
            if record.get("model") == POISONED and record.get("caller") in statuses:
                statuses[record["caller"]][record.get("status", 0)] += 1
    print(f"\nOne tenant poisons `{POISONED}` (2 healthy members): 4 poisoner clients sending prompts Azure answers")
    print(f"with a 500, alone for {POISON_LEAD_SECONDS} s, then alongside the other tenant's clients\n")
    print("| tenant | answers by status | client-visible errors |")
    print("|---|---|---|")
    for caller, counter in statuses.items():
        by_status = ", ".join(f"{status}: {count}" for status, count in sorted(counter.items())) or "-"
        errors = tenant.errors if caller == "bench" else sum(c for s, c in counter.items() if s != 200)
        print(f"| {caller} | {by_status} | {errors} |")


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
