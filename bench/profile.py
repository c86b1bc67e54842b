"""`python -m bench.profile` (or `python -m bench --profile`): where the gateway spends its time under the c=32 load.

Starts the simulator and the gateway (bench/config.yaml, as `python -m bench` does), warms the gateway up, then runs
the throughput phase's load (concurrency 32, non-streaming; wrk when installed) against it while `py-spy record`
samples the gateway process from outside. py-spy's raw output (collapsed stacks, one line per distinct stack with
its sample count) is aggregated here by function: own time (samples where the function is the innermost Python
frame, which includes the C code it calls) and total time (samples where it is anywhere on the stack, counted once
per stack). Prints the top entries of both as markdown and keeps the collapsed stacks (for a flame graph, e.g.
speedscope) in bench/results/. `--target naive` profiles the naive proxy (bench/naive.py) instead.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from bench import latency, load, procs
from bench.client import CHAT_BODY, Target, gateway_target, naive_target, timed_request

RESULTS = Path(__file__).resolve().parent / "results"
CONCURRENCY = 32
INSTALL_HINT = ".venv/bin/python -m pip install py-spy"


def py_spy_path() -> str | None:
    """py-spy next to this interpreter (the venv's), else on PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else shutil.which("py-spy")


@dataclass(slots=True)
class Profile:
    """Collapsed stacks aggregated by frame: the frame is py-spy's `function (file:line)`."""

    samples: int = 0
    own: Counter[str] = field(default_factory=Counter)
    total: Counter[str] = field(default_factory=Counter)
    depth: dict[str, int] = field(default_factory=dict)  # the shallowest place a frame was seen (0: outermost)

    def add(self, stack: Sequence[str], count: int) -> None:
        self.samples += count
        if stack:
            self.own[stack[-1]] += count
        for frame in set(stack):  # once per stack: a recursive function is not counted twice
            self.total[frame] += count
        for index, frame in enumerate(stack):
            self.depth[frame] = min(index, self.depth.get(frame, index))

    def roots(self) -> list[str]:
        """Frames on (nearly) every stack: the process's main loop, which the total table leaves out."""
        frames = [frame for frame, count in self.total.items() if count >= 0.99 * self.samples]
        return sorted(frames, key=self.depth.__getitem__)

    def own_by_package(self) -> Counter[str]:
        """Own samples by the first component of the frame's file: core, aiohttp, uvicorn, asyncio, ..."""
        out: Counter[str] = Counter()
        for frame, count in self.own.items():
            out[package(frame)] += count
        return out


def parse_collapsed(lines: Iterable[str]) -> Profile:
    """py-spy's raw format: `frame;frame;...;innermost COUNT` per line, outermost frame first."""
    profile = Profile()
    for line in lines:
        stack, _, count = line.rstrip("\n").rpartition(" ")
        if stack and count.isdigit():
            profile.add(stack.split(";"), int(count))
    return profile


def package(frame: str) -> str:
    """`send (aiohttp/http_writer.py:106)` -> aiohttp; a file at the top (function_app.py) is its own package."""
    where = frame.rpartition(" (")[2].rstrip(")").rpartition(":")[0]
    return where.split("/", 1)[0] if "/" in where else where


def top_table(profile: Profile, by: Counter[str], n: int, leave_out: Iterable[str] = ()) -> str:
    lines = ["| # | own | total | function (file:line of its def) |", "|---|---|---|---|"]
    skip = set(leave_out)
    ranked = [(frame, count) for frame, count in by.most_common() if frame not in skip][:n]
    for rank, (frame, _) in enumerate(ranked, 1):
        own, total = (100 * c[frame] / max(1, profile.samples) for c in (profile.own, profile.total))
        lines.append(f"| {rank} | {own:.1f}% | {total:.1f}% | `{frame}` |")
    return "\n".join(lines)


def package_line(profile: Profile) -> str:
    shares = profile.own_by_package().most_common()
    return ", ".join(f"{name} {100 * count / max(1, profile.samples):.1f}%" for name, count in shares)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("--duration", type=int, default=20, metavar="S", help="seconds of load under the profiler")
    parser.add_argument("--rate", type=int, default=100, help="py-spy samples per second (default 100)")
    parser.add_argument("--top", type=int, default=20, help="entries per table (default 20)")
    parser.add_argument(
        "--nonblocking",
        action="store_true",
        help="py-spy does not pause the process to sample it: less overhead, an occasional torn stack",
    )
    parser.add_argument("--target", choices=("gateway", "naive"), default="gateway", help="the process to profile")
    parser.add_argument(
        "--generator", choices=("auto", "wrk", "python"), default="auto", help="load generator (auto: wrk if installed)"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= 600:
        parser.error("--duration must be between 1 and 600 seconds")
    return args


def pick_generator(choice: str, workdir: Path) -> tuple[str, load.Generator]:
    if choice == "python" or (choice == "auto" and load.wrk_path() is None):
        return "python asyncio raw sockets", load.python_generator
    if load.wrk_path() is None:
        raise SystemExit("--generator wrk: wrk is not installed (apt-get install wrk)")
    return "wrk (1 thread)", load.make_wrk(workdir, None)


def progress(message: str) -> None:
    print(f"[bench.profile {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    py_spy = py_spy_path()
    if py_spy is None:
        print(f"py-spy is not installed; install it with: {INSTALL_HINT}", file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="aoai-bench-profile-"))
    services: list[procs.Service] = []
    try:
        generator_name, generator = pick_generator(args.generator, workdir)
        progress(f"starting the simulator and the {args.target}")
        sim = procs.spawn("simulator", procs.sim_argv(), dict(os.environ), procs.SIM_READY, workdir / "sim.log", 30)
        services.append(sim)
        env = procs.child_env(sim.url)
        if args.target == "gateway":
            served = procs.spawn("gateway", procs.gateway_argv(), env, procs.GATEWAY_READY, workdir / "gw.log", 30)
            target: Target = gateway_target(served.url)
        else:
            served = procs.spawn("naive proxy", procs.naive_argv(), env, procs.NAIVE_READY, workdir / "naive.log", 30)
            target = naive_target(served.url)
        services.append(served)

        progress("warm-up: 300 requests at c=1, then 1 s at c=32")
        latency.warm_up([target], CHAT_BODY, timed_request, 300, 60)
        generator(target, CHAT_BODY, CONCURRENCY, 1)

        raw = workdir / "profile.txt"
        progress(f"load: {args.duration} s at c={CONCURRENCY} ({generator_name}), py-spy at {args.rate} Hz")
        load_before = os.getloadavg()[0]
        spy = start_py_spy(py_spy, served.pid, args.rate, raw, workdir / "py-spy.log", nonblocking=args.nonblocking)
        sampling_from, cpu_before = time.monotonic(), procs.cpu_seconds(served.pid)
        try:
            result = generator(target, CHAT_BODY, CONCURRENCY, args.duration)
        finally:
            sampled_s, cpu = time.monotonic() - sampling_from, procs.cpu_seconds(served.pid) - cpu_before
            stop_py_spy(spy)
        if not raw.exists():
            raise RuntimeError(f"py-spy wrote no profile:\n{(workdir / 'py-spy.log').read_text(errors='replace')}")
        RESULTS.mkdir(parents=True, exist_ok=True)
        kept = RESULTS / f"profile-{args.target}.txt"
        shutil.copyfile(raw, kept)
        with raw.open() as lines:
            profile = parse_collapsed(lines)

        mode = "nonblocking" if args.nonblocking else "pausing the process for each sample"
        print(f"## {args.target} profile under load: py-spy record, {args.rate} Hz, {mode}\n")
        print(
            f"- load: {args.duration} s at c={CONCURRENCY}, non-streaming, {generator_name}: {result.rps:,.0f} req/s"
            f" under the profiler, {result.errors} errors; {args.target} CPU {1000 * cpu / max(1, result.ok):.3f} ms"
            " per request (utime+stime, the profiler's pauses included)"
        )
        print(
            f"- {profile.samples:,} samples with the {args.target} busy (idle ones are left out), over"
            f" {sampled_s:.1f} s of sampling; {args.target} CPU over that time {100 * cpu / sampled_s:.0f}% of a core;"
            f" {os.cpu_count()} CPUs; load average {load_before:.2f} before, {os.getloadavg()[0]:.2f} after"
        )
        print(
            "- own: the innermost Python frame (with the C it calls; the event loop's own C work, uvloop and"
            " httptools, shows as the own time of the frame that runs the loop); total: anywhere on the stack"
        )
        print(f"- own time by package: {package_line(profile)}")
        print(f"- collapsed stacks (for a flame graph, e.g. speedscope): {kept}\n")
        print(f"### Top {args.top} by own time\n")
        print(top_table(profile, profile.own, args.top))
        roots = profile.roots()
        print(f"\n### Top {args.top} by total time\n")
        print(f"Left out, on (nearly) every stack: {' > '.join(f'`{r}`' for r in roots) or 'none'}\n")
        print(top_table(profile, profile.total, args.top, leave_out=roots))
        return 0
    finally:
        for service in reversed(services):
            procs.stop(service)
        shutil.rmtree(workdir, ignore_errors=True)


def start_py_spy(
    py_spy: str, pid: int, rate: int, output: Path, log_path: Path, *, nonblocking: bool = False
) -> subprocess.Popen[bytes]:
    """`py-spy record` on pid, returned once it is sampling (it says so on stderr, which goes to log_path)."""
    argv = [py_spy, "record", "--pid", str(pid), "--rate", str(rate), "--format", "raw", "--function"]
    argv += ["--nonblocking"] if nonblocking else []
    with log_path.open("wb") as log:
        spy = subprocess.Popen([*argv, "--output", str(output)], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    deadline = time.monotonic() + 15
    while b"Sampling process" not in log_path.read_bytes():
        if time.monotonic() > deadline or spy.poll() is not None:
            stop_py_spy(spy)
            raise RuntimeError(f"py-spy did not start sampling pid {pid}:\n{log_path.read_text(errors='replace')}")
        time.sleep(0.05)
    return spy


def stop_py_spy(spy: subprocess.Popen[bytes]) -> None:
    """Ctrl-C, which makes py-spy write its output and exit; killed if it has not within 30 s."""
    if spy.poll() is None:
        spy.send_signal(signal.SIGINT)
    try:
        spy.wait(timeout=30)
    except subprocess.TimeoutExpired:
        spy.kill()
        spy.wait()


if __name__ == "__main__":
    sys.exit(main())
