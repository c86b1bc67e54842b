"""`python -m bench`: the gateway's added latency, throughput, CPU, memory and cold start.

A run starts the Azure simulator, a naive forward-only proxy (bench/naive.py) and the gateway, then measures the
simulator directly, through the naive proxy and through the gateway, interleaved (alternating rounds, ABC then CBA) so
machine noise hits all three alike; the gateway is judged against the naive proxy of the same run. Several runs
(`--runs`, each on fresh processes) are judged on each figure's median. Prints markdown tables on stdout (progress
goes to stderr) and writes bench/results/latest.json. `--profile` runs bench/profile.py instead. See bench/README.md.
"""

from __future__ import annotations

import argparse
import functools
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
    naive_target,
    timed_first_content,
    timed_request,
)

RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
DIRECT, NAIVE, GATEWAY = "direct", "naive", "gateway"  # the targets, in the order of the table's columns


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
# Runs of a full measurement, each on fresh processes, judged on their medians: one run's CPU per request at c=32
# lands some 0.08x either side of the gateway's usual ratio, by where its processes happen to run (bench/README.md).
FULL_RUNS = 3


@dataclass(frozen=True, slots=True)
class Pinning:
    """CPU lists for taskset, or None everywhere (the default: see bench/README.md, "Pinning")."""

    simulator: str | None = None
    gateway: str | None = None  # the naive proxy too: it stands in for the gateway
    client: str | None = None  # this process (latency client) and wrk


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small counts (~30 s): a smoke run, not a measurement")
    parser.add_argument("--duration", type=int, metavar="S", help="throughput seconds per target (default 10, quick 2)")
    parser.add_argument(
        "--runs",
        type=int,
        metavar="N",
        choices=range(1, 21),
        help=f"runs on fresh processes, judged on their medians (default {FULL_RUNS}, quick 1)",
    )
    parser.add_argument(
        "--generator",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="throughput load generator (auto: wrk when installed)",
    )
    parser.add_argument(
        "--pin",
        action="store_true",
        help="taskset: simulator+client+wrk on CPU 0, naive proxy and gateway on CPU 1 (2+ cores)",
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results path")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="instead: profile the gateway under the c=32 load with py-spy (= python -m bench.profile)",
    )
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
    if args.profile:  # --duration, --generator and --quick (5 s) carry over; the rest is the full run's
        from bench import profile

        seconds = args.duration if args.duration is not None else 5 if args.quick else None
        return profile.main(["--generator", args.generator, *(["--duration", str(seconds)] if seconds else [])])
    plan = make_plan(args)
    runs = args.runs if args.runs is not None else 1 if args.quick else FULL_RUNS
    pinning = make_pinning(args.pin)
    workdir = Path(tempfile.mkdtemp(prefix="aoai-bench-"))
    ok = False
    try:
        if pinning.client is not None:
            os.sched_setaffinity(0, {int(pinning.client)})
        generator_name, generator = pick_generator(args.generator, workdir, pinning)
        started = time.monotonic()
        measured: list[dict[str, Any]] = []
        for index in range(runs):
            progress(f"run {index + 1} of {runs}: starting the simulator, the naive proxy and the gateway")
            measured.append(measure_run(plan, workdir, pinning, generator, cold_start=index == runs - 1))
        served = [served_rows(plan, m) for m in measured]
        cold = cold_rows(measured[-1])
        elapsed_s = round(time.monotonic() - started, 1)
        data: dict[str, Any] = {
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": machine(),
            "plan": asdict(plan),
            "generator": generator_name,
            "pinning": asdict(pinning),
            "runs": [
                {"measured": m, "targets": report.verdicts(rows)} for m, rows in zip(measured, served, strict=True)
            ],
            "targets": report.median_verdicts(served) | report.verdicts(cold),
            "elapsed_s": elapsed_s,
        }
        report.write_json(args.output, data)
        notes = [
            f"run {index + 1}: {note}" if runs > 1 else note for index, m in enumerate(measured) for note in warnings(m)
        ]
        print_report(generator_name, pinning, served, cold, notes, elapsed_s, args.output)
        ok = True
        return 0
    finally:
        if not ok:
            for service_log in ("gateway.log", "naive.log", "sim.log"):
                path = workdir / service_log
                if path.exists():
                    tail = "\n".join(path.read_text(errors="replace").splitlines()[-15:])
                    print(f"--- {service_log} (last lines)\n{tail}", file=sys.stderr)
        shutil.rmtree(workdir, ignore_errors=True)


def measure_run(
    plan: Plan, workdir: Path, pinning: Pinning, generator: load.Generator, *, cold_start: bool
) -> dict[str, Any]:
    """One run on three fresh processes: what they serve, measured interleaved; then (`cold_start`) the gateway's
    import and start, on a box otherwise quiet but for the simulator. Every process is stopped at the end."""
    sim: procs.Service | None = None
    naive: procs.Service | None = None
    gateway: procs.Service | None = None
    try:
        sim = procs.spawn(
            "simulator",
            procs.pinned(procs.sim_argv(), pinning.simulator),
            dict(os.environ),
            procs.SIM_READY,
            workdir / "sim.log",
            timeout=30,
        )
        env = procs.child_env(sim.url)
        naive = procs.spawn(
            "naive proxy",
            procs.pinned(procs.naive_argv(), pinning.gateway),
            env,
            procs.NAIVE_READY,
            workdir / "naive.log",
            timeout=30,
        )
        gateway = procs.spawn(
            "gateway",
            procs.pinned(procs.gateway_argv(), pinning.gateway),
            env,
            procs.GATEWAY_READY,
            workdir / "gateway.log",
            timeout=30,
        )
        measured = measure_served(plan, sim, naive, gateway, generator)
        procs.stop(gateway)  # cold-start runs spawn their own gateways; keep the box quiet for them
        procs.stop(naive)
        gateway = naive = None
        if cold_start:
            measured.update(measure_cold_start(plan, env, workdir, pinning))
        return measured
    finally:
        procs.stop(gateway)
        procs.stop(naive)
        procs.stop(sim)


def measure_served(
    plan: Plan, sim: procs.Service, naive: procs.Service, gateway: procs.Service, generator: load.Generator
) -> dict[str, Any]:
    """Latency (plain and streaming) and throughput against the three targets, plus CPU and peak RSS."""
    targets: list[Target] = [direct_target(sim.url), naive_target(naive.url), gateway_target(gateway.url)]
    cpu = {
        name: functools.partial(procs.cpu_seconds, service.pid)
        for name, service in ((NAIVE, naive), (GATEWAY, gateway), ("simulator", sim))
    }
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
        probes={NAIVE: cpu[NAIVE], GATEWAY: cpu[GATEWAY]},  # each proxy's CPU during its own slices
    )
    progress(f"latency, streaming first content: {plan.stream_requests} per target, {plan.rounds} rounds")
    stream = latency.interleave(
        targets, STREAM_BODY, timed_first_content, per_target=plan.stream_requests, rounds=plan.rounds, budget_s=budget
    )

    progress(f"throughput warm-up: 1 s per target at concurrency {plan.concurrency}")
    for target in targets:
        generator(target, CHAT_BODY, plan.concurrency, 1)
    slices = f"{plan.throughput_rounds} x {plan.seconds_per_slice} s"
    progress(f"throughput: {slices} per target at concurrency {plan.concurrency}")
    load_run = load.interleave(
        generator,
        targets,
        CHAT_BODY,
        concurrency=plan.concurrency,
        seconds_per_slice=plan.seconds_per_slice,
        rounds=plan.throughput_rounds,
        probes=cpu,  # every process around every slice: the JSON has the simulator's share per target too
    )
    return {
        "latency_plain": _latency_json(plain),
        "latency_stream_first_content": _latency_json(stream),
        "cpu_ms_per_request_c1": {
            name: 1000 * plain.cpu_seconds[name] / max(1, len(plain.samples[name])) for name in (NAIVE, GATEWAY)
        },
        "throughput": _throughput_json(load_run),
        "peak_rss_kib": {name: procs.peak_rss_kib(s.pid) for name, s in ((NAIVE, naive), (GATEWAY, gateway))}
        | {"simulator": procs.peak_rss_kib(sim.pid)},
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


def served_rows(plan: Plan, m: dict[str, Any]) -> list[report.Row]:
    """The rows of what one run's proxies served: latency, throughput, CPU, memory."""
    plain, stream, tp = m["latency_plain"], m["latency_stream_first_content"], m["throughput"]
    rows = _latency_rows(f"latency, non-streaming, c=1 (n={plain[GATEWAY]['n']})", plain, judged=True)
    rows += _latency_rows(f"first content chunk, streaming, c=1 (n={stream[GATEWAY]['n']})", stream, judged=False)

    d_rps, n_rps, g_rps = (tp[name]["rps"] for name in (DIRECT, NAIVE, GATEWAY))
    label = f"throughput, non-streaming, c={plan.concurrency}, {plan.throughput_rounds}x{plan.seconds_per_slice} s"
    rows.append(
        report.Row(
            label,
            f"{d_rps:,.0f} req/s",
            f"{n_rps:,.0f} req/s",
            f"{g_rps:,.0f} req/s",
            f"gateway {g_rps:,.0f} req/s ({report.times(report.ratio(g_rps, d_rps))} direct)",
            "gateway_rps_c32",
            g_rps,
        )
    )
    rps_ratio = report.ratio(g_rps, n_rps)
    rows.append(
        report.Row(
            f"{label}: gateway / naive",
            "-",
            f"{n_rps:,.0f} req/s",
            f"{g_rps:,.0f} req/s",
            report.times(rps_ratio),
            "rps_vs_naive",
            rps_ratio,
        )
    )
    d_p50, n_p50, g_p50 = (
        report.ms(statistics.median(tp[name]["p50_ms_per_slice"])) for name in (DIRECT, NAIVE, GATEWAY)
    )
    rows.append(
        report.Row(f"latency at c={plan.concurrency} p50 (load generator, median of slices)", d_p50, n_p50, g_p50, "-")
    )

    sim_cpu = tp[DIRECT]["cpu_ms_per_request"]["simulator"]
    naive_cpu = tp[NAIVE]["cpu_ms_per_request"][NAIVE]
    gw_cpu = tp[GATEWAY]["cpu_ms_per_request"][GATEWAY]
    label = f"CPU per request at c={plan.concurrency} (utime+stime)"
    rows.append(
        report.Row(
            label,
            f"simulator {report.ms(sim_cpu)}",
            report.ms(naive_cpu),
            report.ms(gw_cpu),
            f"gateway {report.ms(gw_cpu)} ({gw_cpu / sim_cpu:.1f}x simulator)",
            "gateway_cpu_ms_per_request",
            gw_cpu,
        )
    )
    cpu_ratio = report.ratio(gw_cpu, naive_cpu)
    rows.append(
        report.Row(
            f"{label}: gateway / naive",
            "-",
            report.ms(naive_cpu),
            report.ms(gw_cpu),
            report.times(cpu_ratio),
            "cpu_per_request_vs_naive",
            cpu_ratio,
        )
    )
    c1 = m["cpu_ms_per_request_c1"]
    rows.append(
        report.Row(
            "CPU per request at c=1 (non-streaming latency phase)",
            "-",
            report.ms(c1[NAIVE]),
            report.ms(c1[GATEWAY]),
            f"{report.times(report.ratio(c1[GATEWAY], c1[NAIVE]))} naive",
            value=report.ratio(c1[GATEWAY], c1[NAIVE]),
            unit="x naive",
        )
    )
    rss = {name: kib / 1024 for name, kib in m["peak_rss_kib"].items()}
    rows.append(
        report.Row(
            "peak RSS (VmHWM) at the end",
            f"simulator {rss['simulator']:.1f} MiB",
            f"{rss[NAIVE]:.1f} MiB",
            f"{rss[GATEWAY]:.1f} MiB",
            f"{rss[GATEWAY]:.1f} MiB",
            "gateway_peak_rss_mib",
            rss[GATEWAY],
        )
    )
    return rows


def cold_rows(m: dict[str, Any]) -> list[report.Row]:
    """The rows of the gateway's cold start: `import function_app`, and a process's start to its first 200."""
    rows = []
    imp = statistics.median(m["import_ms"])
    rows.append(
        report.Row(
            f"`import function_app`, median of {len(m['import_ms'])}",
            "-",
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
            "-",
            f"{start:.3f} s",
            f"{start:.3f} s",
            "start_to_first_200_s",
            start,
        )
    )
    return rows


def _latency_rows(label: str, data: dict[str, Any], *, judged: bool) -> list[report.Row]:
    """p50 and p99 of the three targets, each proxy's added latency over direct and the ratio of the two;
    `judged`: the absolute added-latency goals, and a row for the added p50 gateway / naive."""
    rows = []
    for pct in ("p50", "p99"):
        direct, naive, gateway = (data[name][f"{pct}_ms"] for name in (DIRECT, NAIVE, GATEWAY))
        n_added, g_added = naive - direct, gateway - direct
        added_ratio = report.ratio(g_added, n_added)
        rows.append(
            report.Row(
                f"{label} {pct}",
                report.ms(direct),
                f"{report.ms(naive)} ({report.signed_ms(n_added)})",
                f"{report.ms(gateway)} ({report.signed_ms(g_added)})",
                f"added {report.signed_ms(g_added)}, {report.times(added_ratio)} naive's",
                f"added_{pct}_ms" if judged else None,
                g_added if judged else added_ratio,  # (unjudged: the ratio, which several runs compare)
                "ms" if judged else "x naive",
            )
        )
        if judged and pct == "p50":
            rows.append(
                report.Row(
                    f"{label} p50 added: gateway / naive",
                    "-",
                    report.signed_ms(n_added),
                    report.signed_ms(g_added),
                    report.times(added_ratio),
                    "added_p50_vs_naive",
                    added_ratio,
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
    plain = m["latency_plain"]
    if plain[NAIVE]["p50_ms"] <= plain[DIRECT]["p50_ms"]:
        out.append("the naive proxy added nothing at p50: the added-latency ratio is meaningless in this run")
    return out


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "loadavg_at_end": os.getloadavg(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def print_report(
    generator_name: str,
    pinning: Pinning,
    served: list[list[report.Row]],
    cold: list[report.Row],
    notes: list[str],
    elapsed: float,
    output: Path,
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
        '- "added" = a proxy\'s percentile minus the direct percentile; naive proxy = bench/naive.py (forwards only);'
        " the three targets interleaved in one run: compare ratios, not runs\n"
    )
    if len(served) == 1:
        print(report.markdown(served[0] + cold))
    else:
        for index, rows in enumerate(served, start=1):
            print(f"### Run {index} of {len(served)}\n\n{report.markdown(rows)}\n")
        print(f"### The {len(served)} runs: each figure's median, judged\n\n{report.runs_markdown(served)}\n")
        print(f"### Cold start (after the last run)\n\n{report.markdown(cold)}")
    for warning in notes:
        print(f"\nWARNING: {warning}")
    print(f"\nJSON: {output}")


if __name__ == "__main__":
    sys.exit(main())
