"""`python -m bench`: the gateway's added latency, throughput, CPU, memory and cold start, in one run.

Starts the Azure simulator and the gateway, then measures the simulator directly and through the gateway,
interleaved (alternating rounds, ABBA order) so machine noise hits both alike. Prints a markdown table on stdout
(progress goes to stderr) and writes bench/results/latest.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from bench import latency, load, procs, report, startup
from bench.client import (
    CHAT_BODY,
    STREAM_BODY,
    Target,
    direct_target,
    gateway_target,
    timed_first_content,
    timed_request,
)

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"


@dataclass(frozen=True, slots=True)
class Plan:
    """How much of everything to do; `--quick` and the full run differ only here."""

    latency_requests: int  # per target, non-streaming, concurrency 1
    stream_requests: int  # per target, streaming, concurrency 1
    rounds: int  # alternating slices for the latency phases
    warmup_requests: int
    seconds_per_target: int  # throughput, split over `throughput_rounds` slices
    throughput_rounds: int
    concurrency: int
    import_runs: int
    start_runs: int
    phase_budget_s: float  # upper bound on each latency phase

    @property
    def seconds_per_slice(self) -> int:
        return max(1, round(self.seconds_per_target / self.throughput_rounds))  # wrk takes whole seconds


FULL = Plan(5000, 2000, 10, 300, 10, 2, 32, 5, 3, 90.0)
QUICK = Plan(300, 100, 4, 50, 2, 2, 32, 5, 3, 20.0)


@dataclass(frozen=True, slots=True)
class Pinning:
    """CPU lists for taskset, or None everywhere (the default: see README "Pinning")."""

    simulator: str | None = None
    gateway: str | None = None
    client: str | None = None  # this process (latency client) and wrk


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts (~30 s): a smoke run, not a measurement")
    parser.add_argument("--duration", type=int, metavar="S", help="throughput seconds per target (default 10, quick 2)")
    parser.add_argument(
        "--generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="throughput load generator (auto: wrk when installed)",
    )
    parser.add_argument(
        "--pin", action="store_true", help="taskset: simulator+client+wrk on CPU 0, gateway on CPU 1 (2+ cores)"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results path")
    return parser.parse_args(argv)


def make_plan(args: argparse.Namespace) -> Plan:
    plan = QUICK if args.quick else FULL
    if args.duration is not None:
        if not 1 <= args.duration <= 600:
            raise SystemExit("--duration must be between 1 and 600 seconds")
        plan = Plan(**{**asdict(plan), "seconds_per_target": args.duration})
    return plan


def make_pinning(pin: bool) -> Pinning:
    if not pin:
        return Pinning()
    if (os.cpu_count() or 1) < 2 or shutil.which("taskset") is None:
        raise SystemExit("--pin needs 2+ CPUs and taskset")
    return Pinning(simulator="0", gateway="1", client="0")


def pick_generator(choice: str, workdir: Path, pinning: Pinning) -> tuple[str, load.Generator]:
    if choice == "python":
        return "python asyncio raw sockets (asked for with --generator python)", load.python_generator
    if choice == "auto" and load.wrk_path() is None:
        return (
            "python asyncio raw sockets (wrk not installed; it competes with the measured processes for CPU)",
            load.python_generator,
        )
    if load.wrk_path() is None:
        raise SystemExit("--generator wrk: wrk is not installed (apt-get install wrk)")
    return "wrk (1 thread)", load.make_wrk(workdir, pinning.client)


def progress(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = make_plan(args)
    pinning = make_pinning(args.pin)
    workdir = Path(tempfile.mkdtemp(prefix="aoai-bench-"))
    sim: procs.Service | None = None
    gateway: procs.Service | None = None
    ok = False
    try:
        if pinning.client is not None:
            os.sched_setaffinity(0, {int(pinning.client)})
        generator_name, generator = pick_generator(args.generator, workdir, pinning)
        started = time.monotonic()
        progress("starting the simulator and the gateway")
        sim = procs.spawn(
            "simulator",
            procs.pinned(procs.sim_argv(), pinning.simulator),
            dict(os.environ),
            procs.SIM_READY,
            workdir / "sim.log",
            timeout=30,
        )
        env = procs.child_env(sim.url)
        gateway = procs.spawn(
            "gateway",
            procs.pinned(procs.gateway_argv(), pinning.gateway),
            env,
            procs.GATEWAY_READY,
            workdir / "gateway.log",
            timeout=30,
        )
        measured = measure_served(plan, sim, gateway, generator)
        procs.stop(gateway)  # cold-start runs spawn their own gateways; keep the box quiet for them
        gateway = None
        measured.update(measure_cold_start(plan, env, workdir, pinning))
        rows = build_rows(plan, generator_name, measured)
        elapsed_s = round(time.monotonic() - started, 1)
        data = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine(),
            "plan": asdict(plan),
            "generator": generator_name,
            "pinning": asdict(pinning),
            "measured": measured,
            "targets": report.verdicts(rows),
            "elapsed_s": elapsed_s,
        }
        report.write_json(args.output, data)
        print_report(generator_name, pinning, rows, warnings(measured), elapsed_s, args.output)
        ok = True
        return 0
    finally:
        procs.stop(gateway)
        procs.stop(sim)
        if not ok:
            for service_log in ("gateway.log", "sim.log"):
                path = workdir / service_log
                if path.exists():
                    tail = "\n".join(path.read_text(errors="replace").splitlines()[-15:])
                    print(f"--- {service_log} (last lines)\n{tail}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)


def measure_served(plan: Plan, sim: procs.Service, gateway: procs.Service, generator: load.Generator) -> dict[str, Any]:
    """Latency (plain and streaming) and throughput against both targets, plus CPU and peak RSS."""
    targets: list[Target] = [direct_target(sim.url), gateway_target(gateway.url)]
    gw_cpu = lambda: procs.cpu_seconds(gateway.pid)  # noqa: E731
    sim_cpu = lambda: procs.cpu_seconds(sim.pid)  # noqa: E731
    budget = plan.phase_budget_s

    progress(f"warm-up: {plan.warmup_requests} plain + {plan.warmup_requests // 2} streaming requests per target")
    latency.warm_up(targets, CHAT_BODY, timed_request, plan.warmup_requests, budget)
    latency.warm_up(targets, STREAM_BODY, timed_first_content, plan.warmup_requests // 2, budget)

    progress(f"latency, non-streaming: {plan.latency_requests} per target, {plan.rounds} interleaved rounds")
    plain = latency.interleave(
        targets,
        CHAT_BODY,
        timed_request,
        per_target=plan.latency_requests,
        rounds=plan.rounds,
        budget_s=budget,
        probes={"gateway": gw_cpu},
    )
    progress(f"latency, streaming first content: {plan.stream_requests} per target, {plan.rounds} rounds")
    stream = latency.interleave(
        targets, STREAM_BODY, timed_first_content, per_target=plan.stream_requests, rounds=plan.rounds, budget_s=budget
    )

    progress(f"throughput warm-up: 1 s per target at concurrency {plan.concurrency}")
    for target in targets:
        generator(target, CHAT_BODY, plan.concurrency, 1)
    progress(
        f"throughput: {plan.throughput_rounds} x {plan.seconds_per_slice} s per target "
        f"at concurrency {plan.concurrency}"
    )
    load_run = load.interleave(
        generator,
        targets,
        CHAT_BODY,
        concurrency=plan.concurrency,
        seconds_per_slice=plan.seconds_per_slice,
        rounds=plan.throughput_rounds,
        probes={"gateway": gw_cpu, "simulator": sim_cpu},
    )
    return {
        "latency_plain": _latency_json(plain),
        "latency_stream_first_content": _latency_json(stream),
        "gateway_cpu_ms_per_request_c1": 1000 * plain.cpu_seconds["gateway"] / max(1, len(plain.samples["gateway"])),
        "throughput": _throughput_json(load_run),
        "gateway_peak_rss_kib": procs.peak_rss_kib(gateway.pid),
        "simulator_peak_rss_kib": procs.peak_rss_kib(sim.pid),
    }


def _latency_json(phase: latency.Phase) -> dict[str, Any]:
    out: dict[str, Any] = {name: asdict(phase.summary(name)) for name in phase.samples}
    out["truncated"] = phase.truncated
    return out


def _throughput_json(run: load.Throughput) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, result in run.results.items():
        out[name] = {
            "requests": result.requests,
            "errors": result.errors,
            "seconds": round(result.seconds, 3),
            "rps": result.rps,
            "p50_ms_per_slice": result.p50_ms,
            "p99_ms_per_slice": result.p99_ms,
            "cpu_ms_per_request": {
                process: 1000 * seconds / max(1, result.ok)
                for (target, process), seconds in run.cpu_seconds.items()
                if target == name
            },
        }
    return out


def measure_cold_start(plan: Plan, env: dict[str, str], workdir: Path, pinning: Pinning) -> dict[str, Any]:
    progress(f"import function_app: {plan.import_runs} fresh interpreters")
    imports = startup.import_ms(env, plan.import_runs, pinning.gateway)
    progress(f"process start to first 200: {plan.start_runs} spawns")
    starts = startup.start_to_first_200_s(env, plan.start_runs, workdir, pinning.gateway)
    return {"import_ms": imports, "start_to_first_200_s": starts}


def build_rows(plan: Plan, generator_name: str, m: dict[str, Any]) -> list[report.Row]:
    plain, stream, tp = m["latency_plain"], m["latency_stream_first_content"], m["throughput"]
    rows = []
    for label, data, key50, key99 in (
        (f"latency, non-streaming, c=1 (n={plain['gateway']['n']})", plain, "added_p50_ms", "added_p99_ms"),
        (f"first content chunk, streaming, c=1 (n={stream['gateway']['n']})", stream, None, None),
    ):
        for pct, key in (("p50", key50), ("p99", key99)):
            d, g = data["direct"][f"{pct}_ms"], data["gateway"][f"{pct}_ms"]
            rows.append(
                report.Row(f"{label} {pct}", report.ms(d), report.ms(g), f"added {report.signed_ms(g - d)}", key, g - d)
            )
    d_rps, g_rps = tp["direct"]["rps"], tp["gateway"]["rps"]
    rows.append(
        report.Row(
            f"throughput, non-streaming, c={plan.concurrency}, {plan.throughput_rounds}x{plan.seconds_per_slice} s",
            f"{d_rps:,.0f} req/s",
            f"{g_rps:,.0f} req/s",
            f"gateway {g_rps:,.0f} req/s ({g_rps / d_rps:.2f}x direct)",
            "gateway_rps_c32",
            g_rps,
        )
    )
    rows.append(
        report.Row(
            f"latency at c={plan.concurrency} p50 (load generator, median of slices)",
            report.ms(statistics.median(tp["direct"]["p50_ms_per_slice"])),
            report.ms(statistics.median(tp["gateway"]["p50_ms_per_slice"])),
            "-",
        )
    )
    sim_cpu = tp["direct"]["cpu_ms_per_request"]["simulator"]
    gw_cpu = tp["gateway"]["cpu_ms_per_request"]["gateway"]
    rows.append(
        report.Row(
            f"CPU per request at c={plan.concurrency} (utime+stime)",
            f"simulator {report.ms(sim_cpu)}",
            f"gateway {report.ms(gw_cpu)}",
            f"gateway {report.ms(gw_cpu)} ({gw_cpu / sim_cpu:.1f}x simulator)",
            "gateway_cpu_ms_per_request",
            gw_cpu,
        )
    )
    rows.append(
        report.Row(
            "CPU per request at c=1 (non-streaming latency phase)",
            "-",
            f"gateway {report.ms(m['gateway_cpu_ms_per_request_c1'])}",
            "-",
        )
    )
    rss = m["gateway_peak_rss_kib"] / 1024
    rows.append(
        report.Row(
            "peak RSS (VmHWM) at the end",
            f"simulator {m['simulator_peak_rss_kib'] / 1024:.1f} MiB",
            f"gateway {rss:.1f} MiB",
            f"{rss:.1f} MiB",
            "gateway_peak_rss_mib",
            rss,
        )
    )
    imp = statistics.median(m["import_ms"])
    rows.append(
        report.Row(
            f"`import function_app`, median of {len(m['import_ms'])}",
            "-",
            f"{imp:.0f} ms",
            f"{imp:.0f} ms",
            "import_ms",
            imp,
        )
    )
    start = statistics.median(m["start_to_first_200_s"])
    rows.append(
        report.Row(
            f"process start to first 200, median of {len(m['start_to_first_200_s'])}",
            "-",
            f"{start:.3f} s",
            f"{start:.3f} s",
            "start_to_first_200_s",
            start,
        )
    )
    return rows


def warnings(m: dict[str, Any]) -> list[str]:
    """What makes this run's figures less trustworthy than usual."""
    out = [
        f"{phase}: the time budget ran out, fewer samples than planned"
        for phase in ("latency_plain", "latency_stream_first_content")
        if m[phase]["truncated"]
    ]
    out += [
        f"throughput {name}: {data['errors']} failed requests (not counted in req/s)"
        for name, data in m["throughput"].items()
        if data["errors"]
    ]
    return out


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "loadavg_at_end": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def print_report(
    generator_name: str, pinning: Pinning, rows: list[report.Row], notes: list[str], elapsed: float, output: Path
) -> None:
    pin = (
        "none"
        if pinning.gateway is None
        else f"simulator CPU {pinning.simulator}, gateway CPU {pinning.gateway}, client+wrk CPU {pinning.client}"
    )
    print("## aoai-gateway benchmark\n")
    print(f"- load generator (throughput): {generator_name}; latency client: blocking keep-alive sockets in Python")
    print(f"- CPU pinning: {pin}; {os.cpu_count()} CPUs; load average {os.getloadavg()[0]:.2f}; took {elapsed:.0f} s")
    print(
        '- "added" = via-gateway percentile minus direct percentile, targets interleaved in one run; '
        "compare ratios, not runs\n"
    )
    print(report.markdown(rows))
    for warning in notes:
        print(f"\nWARNING: {warning}")
    print(f"\nJSON: {output}")


if __name__ == "__main__":
    sys.exit(main())
