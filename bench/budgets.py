"""Caller-key budgets across gateway processes: how far they overspend, and what a limited key costs per request.

`python -m bench.budgets [--quick]`: starts Azurite's table service (tests/support/azurite.py installs it on first
use), the simulator, and then:

1. **Overspend.** For N = 2 and N = 8 gateway processes sharing one usage table (a fresh table per N), each case
   gives one caller key a limit, requestsPerMinute or tokensPerMinute, and drives it with many concurrent clients
   (asyncio + aiohttp, spread round-robin over the instances) well past the limit for a few seconds, all inside
   one UTC minute window (the run waits for the next minute when the case would not fit in this one). Every case
   uses a key of its own, so no two cases share counts. It reports what was admitted against the limit (200s for
   requests; the answers' `usage.total_tokens` for tokens), the overspend, the 429s, and the table's own totals
   for the window, read back with azure-data-tables.
2. **Cost per request.** One gateway each with the key unlimited, limited per process (no table) and limited with
   the Azurite table, limits never reached; sequential requests at concurrency 1, interleaved (ABBA), with each
   gateway's CPU time per request and the table operations the measured requests caused.

Prints markdown tables and writes bench/results/budgets.json. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import dataclasses
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import orjson

from bench import latency, procs, report
from bench.client import CHAT_BODY, GATEWAY_KEY, MODEL, gateway_target, timed_request
from core.budgets import LEASE_WAIT_SECONDS
from core.usage_table import MINUTE_ROW, partition_key
from tests.support.azurite import AzuriteTable

RESULTS = Path(__file__).resolve().parent / "results" / "budgets.json"
INSTANCES = (2, 8)
RPM_LIMIT = 600
TPM_LIMIT = 20_000
# Output tokens reserved per call (the body sets no max_tokens): above what the simulator answers to the prompt
# below (it echoes the prompt: 20 words), as a real model's cap would be, so a call never spends more than it
# reserved and any overspend is the budgets' own.
RESERVE_OUTPUT = 32
PROMPT = "how many tokens does this short benchmark prompt spend when the gateway relays it to the simulator and back"
CASE_BODY = orjson.dumps({"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]})
# The cost phase's limited key: limits no run reaches (as bench.usage).
HIGH_LIMITS = "{requestsPerMinute: 100000000, tokensPerMinute: 100000000000}"
UNLIMITED, PER_PROCESS, SHARED = "unlimited", "limited, per process", "limited, usage table"
BENCH_KEY_LINE = '    - {name: bench, key: "bench-gateway-key"}'
# A case must end this long before its window does: answers in flight, clocks read a moment apart.
WINDOW_MARGIN_S = 4.0
# After a fleet's last case: time for every instance's sync to write its use and hand its claims back.
SETTLE_S = 4.0
TABLE_TIMEOUT_S = 30.0
# The cost phase counts answers slower than this: at concurrency 1 on 127.0.0.1, a call that waited for the table.
SLOW_S = 0.005


@dataclass(frozen=True, slots=True)
class Plan:
    runs: int  # cases per (limit, N)
    drive_s: float  # seconds each case drives its key
    clients: int  # concurrent clients per case
    cost_per_target: int
    cost_rounds: int
    cost_warmup: int


# Cost slices of about 100 requests: short enough that no kept-alive connection idles into uvicorn's 5 s timeout
# while the other gateways take their turns on a loaded box.
FULL = Plan(runs=3, drive_s=10.0, clients=48, cost_per_target=4000, cost_rounds=40, cost_warmup=300)
QUICK = Plan(runs=1, drive_s=5.0, clients=48, cost_per_target=400, cost_rounds=8, cost_warmup=50)


@dataclass(frozen=True, slots=True)
class Limit:
    kind: str  # "requests" or "tokens"
    value: int

    @property
    def limits_yaml(self) -> str:
        if self.kind == "requests":
            return f"{{requestsPerMinute: {self.value}}}"
        return f"{{tokensPerMinute: {self.value}, reserveOutputTokens: {RESERVE_OUTPUT}}}"

    @property
    def label(self) -> str:
        return f"requestsPerMinute {self.value:,}" if self.kind == "requests" else f"tokensPerMinute {self.value:,}"


LIMITS = (Limit("requests", RPM_LIMIT), Limit("tokens", TPM_LIMIT))


@dataclass(slots=True)
class Case:
    """One caller key, one limit, one window, driven past the limit."""

    limit: Limit
    instances: int
    run: int
    key_name: str
    window: str = ""  # the minute row the case ran in
    window_left_s: float = 0.0  # seconds left in the window when driving started
    seconds: float = 0.0
    statuses: dict[int, int] = field(default_factory=dict)
    errors: int = 0  # no answer at all (socket error, timeout)
    tokens: int = 0  # sum of the 200s' usage.total_tokens
    admitted_per_instance: list[int] = field(default_factory=list)
    last_admitted_s: float = 0.0  # when the last 200 came, from the start of driving
    latencies: list[float] = field(default_factory=list, repr=False)  # seconds to the whole answer, every answer
    same_window: bool = True  # driving started and ended in one minute window
    table_warnings: dict[str, int] = field(default_factory=dict)  # the instances' log lines about the table
    first_refusal: str = ""  # the first 429's error message: the limit, and what was used as its instance knew
    refused_with_room: int = 0  # 429s whose message says the key had used under ROOM of its limit
    table_requests: int | None = None
    table_tokens: int | None = None

    @property
    def secret(self) -> str:
        return f"bench-key-{self.key_name}"

    @property
    def sent(self) -> int:
        return sum(self.statuses.values()) + self.errors

    @property
    def admitted(self) -> int:
        return self.statuses.get(200, 0) if self.limit.kind == "requests" else self.tokens

    @property
    def waited(self) -> int:
        """Answers that took at least as long as a call waits for its lease before it is admitted against the
        shared view instead (core/budgets.py LEASE_WAIT_SECONDS)."""
        return sum(seconds >= LEASE_WAIT_SECONDS for seconds in self.latencies)

    def latency_ms(self) -> dict[str, float]:
        if not self.latencies:
            return {}
        ordered = sorted(self.latencies)
        return {
            "p50": 1000 * latency.percentile(ordered, 50),
            "p99": 1000 * latency.percentile(ordered, 99),
            "max": 1000 * ordered[-1],
        }

    @property
    def store_problems(self) -> int:
        """Times an instance logged a store problem during the case (and admitted against the shared view)."""
        return sum(n for text, n in self.table_warnings.items() if "reachable again" not in text)

    @property
    def others(self) -> int:
        """Answers neither 200 nor 429, and no answer at all."""
        return self.errors + sum(n for status, n in self.statuses.items() if status not in (200, 429))

    @property
    def overspend(self) -> int:
        return self.admitted - self.limit.value

    @property
    def overspend_pct(self) -> float:
        return 100.0 * self.overspend / self.limit.value

    @property
    def table_total(self) -> int | None:
        return self.table_requests if self.limit.kind == "requests" else self.table_tokens

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.limit.kind,
            "limit": self.limit.value,
            "instances": self.instances,
            "run": self.run,
            "key": self.key_name,
            "window": self.window,
            "window_left_s": round(self.window_left_s, 2),
            "seconds": round(self.seconds, 3),
            "sent": self.sent,
            "statuses": {str(code): n for code, n in sorted(self.statuses.items())},
            "errors": self.errors,
            "ok": self.statuses.get(200, 0),
            "tokens_of_200s": self.tokens,
            "admitted": self.admitted,
            "overspend": self.overspend,
            "overspend_pct": round(self.overspend_pct, 3),
            "refused_429": self.statuses.get(429, 0),
            "admitted_per_instance": self.admitted_per_instance,
            "last_admitted_s": round(self.last_admitted_s, 3),
            "latency_ms": self.latency_ms(),
            "answers_after_lease_wait": self.waited,
            "same_window": self.same_window,
            "table_warnings": self.table_warnings,
            "first_refusal": self.first_refusal,
            "refused_with_room": self.refused_with_room,
            "table_requests": self.table_requests,
            "table_tokens": self.table_tokens,
        }


# -- configuration and processes


def config_text(key_lines: Sequence[str]) -> str:
    """bench/config.yaml with its unlimited `bench` key kept and `key_lines` added."""
    base = procs.CONFIG_PATH.read_text()
    assert BENCH_KEY_LINE in base, "bench/config.yaml's key line changed"
    return base.replace(BENCH_KEY_LINE, "\n".join([BENCH_KEY_LINE, *key_lines]))


def key_line(name: str, secret: str, limits: str) -> str:
    return f'    - {{name: {name}, key: "{secret}", limits: {limits}}}'


def spawn_gateway(env: dict[str, str], log_path: Path) -> procs.Service:
    return procs.spawn("gateway", procs.gateway_argv(), env, procs.GATEWAY_READY, log_path, 60)


def start_gateways(count: int, env: dict[str, str], workdir: Path, label: str) -> list[procs.Service]:
    """`count` gateways started side by side (each `python -m core serve --port 0`)."""
    with concurrent.futures.ThreadPoolExecutor(count) as pool:
        futures = [pool.submit(spawn_gateway, env, workdir / f"{label}-{index}.log") for index in range(count)]
        started, failed = [], []
        for future in futures:
            try:
                started.append(future.result())
            except Exception as error:
                failed.append(error)
    if failed:
        for service in started:
            procs.stop(service)
        raise failed[0]
    return started


def table_env(env: dict[str, str], tables: AzuriteTable, table_name: str, config: Path) -> dict[str, str]:
    return {
        **env,
        "CONFIG_PATH": str(config),
        "USAGE_TABLE_CONNECTION_STRING": tables.connection_string,
        "USAGE_TABLE_NAME": table_name,
    }


def log(message: str) -> None:
    print(f"[bench.budgets] {message}", file=sys.stderr, flush=True)


# -- driving a key past its limit


def window_row(now: float) -> str:
    return time.strftime(MINUTE_ROW, time.gmtime(now - now % 60))


def wait_for_room(seconds: float) -> None:
    """Wait for the next UTC minute when `seconds` (and a margin) no longer fit in this one."""
    left = 60 - time.time() % 60
    if left < seconds + WINDOW_MARGIN_S:
        log(f"waiting {left:.1f} s for a fresh minute window")
        time.sleep(left + 0.2)


async def drive(case: Case, urls: Sequence[str], body: bytes, clients: int, seconds: float) -> None:
    """`clients` concurrent clients, each sending `body` with the case's key to the instances in turn for
    `seconds`; what came back is tallied into `case`."""
    headers = {"Authorization": f"Bearer {case.secret}", "Content-Type": "application/json"}
    statuses: Counter[int] = Counter()
    per_instance = [0] * len(urls)
    loop = asyncio.get_running_loop()
    started = loop.time()
    deadline = started + seconds
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=30)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:

        async def client(index: int) -> None:
            turn = index
            while loop.time() < deadline:
                instance = turn % len(urls)
                turn += 1
                sent = loop.time()
                try:
                    async with session.post(urls[instance], data=body, headers=headers) as answer:
                        status, data = answer.status, await answer.read()
                except (aiohttp.ClientError, TimeoutError):
                    case.errors += 1
                    continue
                case.latencies.append(loop.time() - sent)
                statuses[status] += 1
                if status == 429:
                    message = str(orjson.loads(data).get("error", {}).get("message", ""))
                    case.first_refusal = case.first_refusal or message
                    case.refused_with_room += had_room(message)
                if status == 200:
                    per_instance[instance] += 1
                    case.tokens += orjson.loads(data)["usage"]["total_tokens"]
                    case.last_admitted_s = loop.time() - started

        await asyncio.gather(*(client(index) for index in range(clients)))
    case.seconds = loop.time() - started
    case.statuses = dict(statuses)
    case.admitted_per_instance = per_instance


# A 429 given while the key had used less than this share of its limit had room left.
ROOM = 0.9
_REFUSAL = re.compile(r"Limit (\d+), Used (\d+), Requested (\d+)")


def had_room(message: str) -> bool:
    """Whether a 429's message (core/budgets.py `_rate_limited`) says the call would have left the key under ROOM
    of its limit, as the refusing instance knew it: refused for want of a lease, not of budget (near the limit, a
    call may be refused with a little left: what each instance holds unused can be less than one call's cost)."""
    found = _REFUSAL.search(message)
    if found is None:
        return False
    limit, used, requested = map(int, found.groups())
    return used + requested <= ROOM * limit


def run_case(case: Case, urls: Sequence[str], plan: Plan) -> None:
    wait_for_room(plan.drive_s)
    began = time.time()
    case.window, case.window_left_s = window_row(began), 60 - began % 60
    asyncio.run(drive(case, urls, CASE_BODY, plan.clients, plan.drive_s))
    case.same_window = window_row(time.time()) == case.window
    log(
        f"N={case.instances} {case.limit.label} run {case.run}: admitted {case.admitted:,} "
        f"({case.overspend:+,}), 429s {case.statuses.get(429, 0):,}, sent {case.sent:,} in {case.seconds:.1f} s"
    )


def read_table_totals(tables: AzuriteTable, table_name: str, cases: Sequence[Case]) -> None:
    """Each case's window entity, as every instance wrote it: the key's total requests and tokens."""
    from azure.core.exceptions import ResourceNotFoundError
    from azure.data.tables import TableClient

    with TableClient.from_connection_string(tables.connection_string, table_name) as table:
        for case in cases:
            try:
                entity = table.get_entity(partition_key(case.key_name), case.window, timeout=TABLE_TIMEOUT_S)
            except ResourceNotFoundError:
                continue
            case.table_requests = int(getattr(entity["requests"], "value", entity["requests"]))
            case.table_tokens = int(getattr(entity["tokens"], "value", entity["tokens"]))


def warm(urls: Sequence[str], secret: str) -> None:
    """One call per instance with an unlimited and a limited key: each instance has imported what the first call
    of each kind needs and created its table client before a case is timed (a cold instance's first lease can
    take longer than the 2 s a call waits for it)."""

    async def go() -> None:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            for url in urls:
                for key in (GATEWAY_KEY, secret):
                    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
                    async with session.post(url, data=CHAT_BODY, headers=headers) as answer:
                        await answer.read()
                        if answer.status != 200:
                            raise RuntimeError(f"warm-up call to {url} answered {answer.status}")

    asyncio.run(go())


@dataclass(slots=True)
class Fleet:
    """N gateways' cases, and what their logs said about the usage table."""

    instances: int
    cases: list[Case]
    table_warnings: dict[str, int]


class TableLog:
    """The gateways' log lines about the usage table, by text up to its detail, read as they grow: an instance
    logs a store problem when one begins (and `reachable again` when a write goes through), so the lines logged
    during a case say how often its instances fell back to admitting against the shared view (core/budgets.py
    `_failing`)."""

    def __init__(self, gateways: Sequence[procs.Service]) -> None:
        self._paths = [gateway.log_path for gateway in gateways]
        self._offsets = [0] * len(self._paths)
        self.total: Counter[str] = Counter()

    def read(self) -> dict[str, int]:
        """What was logged since the last read."""
        found: Counter[str] = Counter()
        for index, path in enumerate(self._paths):
            with path.open("rb") as file:
                file.seek(self._offsets[index])
                data = file.read()
            data = data[: data.rfind(b"\n") + 1]  # a line being written stays for the next read
            self._offsets[index] += len(data)
            for line in data.decode(errors="replace").splitlines():
                if (at := line.find("usage table ")) >= 0:
                    found[line[at:].split(" (", 1)[0].split(":", 1)[0]] += 1
        self.total += found
        return dict(found)


def overspend_phase(instances: int, plan: Plan, tables: AzuriteTable, workdir: Path, env: dict[str, str]) -> Fleet:
    cases = [
        Case(limit, instances, run, f"n{instances}-{limit.kind}-{run}")
        for run in range(1, plan.runs + 1)
        for limit in LIMITS
    ]
    lines = [key_line(case.key_name, case.secret, case.limit.limits_yaml) for case in cases]
    lines.append(key_line("warm", "bench-key-warm", HIGH_LIMITS))
    config = workdir / f"fleet-{instances}.yaml"
    config.write_text(config_text(lines))
    table_name = f"budgets{instances}"
    log(f"N={instances}: starting {instances} gateways sharing table {table_name}")
    gateways = start_gateways(instances, table_env(env, tables, table_name, config), workdir, f"fleet{instances}")
    table_log = TableLog(gateways)
    try:
        urls = [f"{gateway.url}/v1/chat/completions" for gateway in gateways]
        warm(urls, "bench-key-warm")
        table_log.read()
        for case in cases:
            run_case(case, urls, plan)
            case.table_warnings = table_log.read()
        time.sleep(SETTLE_S)
        read_table_totals(tables, table_name, cases)
    finally:
        for gateway in gateways:
            procs.stop(gateway)
    table_log.read()
    return Fleet(instances, cases, dict(table_log.total))


# -- what a limited key costs per request


@dataclass(slots=True)
class Cost:
    phase: latency.Phase
    table_operations: int  # Azurite requests while the measured requests ran
    shared_requests: int  # requests the usage-table gateway served meanwhile


def cost_phase(plan: Plan, env: dict[str, str], workdir: Path) -> Cost:
    limited = config_text([]).replace(BENCH_KEY_LINE, key_line("bench", GATEWAY_KEY, HIGH_LIMITS))
    assert HIGH_LIMITS in limited
    limited_path = workdir / "cost-limited.yaml"
    limited_path.write_text(limited)
    services: list[procs.Service] = []
    with AzuriteTable(debug=True) as tables:  # its debug log counts the table operations
        try:
            for name, child_env in (
                (UNLIMITED, env),
                (PER_PROCESS, {**env, "CONFIG_PATH": str(limited_path)}),
                (SHARED, table_env(env, tables, "budgetscost", limited_path)),
            ):
                log(f"cost: starting the gateway {name}")
                services.append(spawn_gateway(child_env, workdir / f"cost-{len(services)}.log"))
            names = (UNLIMITED, PER_PROCESS, SHARED)
            targets = [dataclasses.replace(gateway_target(s.url), name=n) for n, s in zip(names, services, strict=True)]
            pids = {name: service.pid for name, service in zip(names, services, strict=True)}
            probes = {name: (lambda pid=pid: procs.cpu_seconds(pid)) for name, pid in pids.items()}
            latency.warm_up(targets, CHAT_BODY, timed_request, plan.cost_warmup, 60)
            before = len(tables.requests_served())
            log(f"cost: {plan.cost_per_target} requests per gateway, {plan.cost_rounds} rounds, interleaved")
            phase = latency.interleave(targets, CHAT_BODY, timed_request, per_target=plan.cost_per_target,
                                       rounds=plan.cost_rounds, budget_s=240, probes=probes)  # fmt: skip
            operations = len(tables.requests_served()) - before
        finally:
            for service in reversed(services):
                procs.stop(service)
    return Cost(phase, operations, len(phase.samples[SHARED]))


# -- report


def summarize_cases(cases: Sequence[Case]) -> list[dict[str, Any]]:
    """Per (limit, N): median and worst of the runs."""
    out = []
    for limit in LIMITS:
        for instances in INSTANCES:
            runs = [c for c in cases if c.limit == limit and c.instances == instances]
            if not runs:
                continue
            worst = max(runs, key=lambda c: c.overspend)
            out.append(
                {
                    "kind": limit.kind,
                    "limit": limit.value,
                    "instances": instances,
                    "runs": len(runs),
                    "admitted_median": statistics.median(c.admitted for c in runs),
                    "admitted_fewest": min(c.admitted for c in runs),
                    "admitted_worst": worst.admitted,
                    "overspend_median": statistics.median(c.overspend for c in runs),
                    "overspend_worst": worst.overspend,
                    "overspend_pct_median": statistics.median(c.overspend_pct for c in runs),
                    "overspend_pct_worst": worst.overspend_pct,
                    "refused_median": statistics.median(c.statuses.get(429, 0) for c in runs),
                    "refused_with_room_median": statistics.median(c.refused_with_room for c in runs),
                    "sent_median": statistics.median(c.sent for c in runs),
                    "rate_median": statistics.median(c.sent / c.seconds for c in runs),
                    "answer_p50_ms_median": statistics.median(c.latency_ms().get("p50", 0.0) for c in runs),
                    "answers_after_lease_wait": sum(c.waited for c in runs),
                    "store_problems": sum(c.store_problems for c in runs),
                    "table_matches_clients": all(c.table_total == c.admitted for c in runs),
                    "others": sum(c.others for c in runs),
                    "table_total_worst_run": worst.table_total,
                    "all_in_one_window": all(c.same_window for c in runs),
                }
            )
    return out


def _n(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.1f}"


def overspend_table(summary: Sequence[dict[str, Any]]) -> str:
    lines = [
        (
            "| limit | instances | runs | admitted, median (fewest) | overspend, median / worst "
            f"| 429s (under {ROOM:.0%} used), median | answers, median (per s) | answer p50, median | answers >= 2 s "
            "| store problems logged | table = clients |"
        ),
        "|---|---:|---:|---|---|---|---|---:|---:|---:|---|",
    ]
    for row in summary:
        unit = "requests" if row["kind"] == "requests" else "tokens"
        lines.append(
            f"| {unit} {row['limit']:,}/min | {row['instances']} | {row['runs']} "
            f"| {_n(row['admitted_median'])} ({_n(row['admitted_fewest'])}) "
            f"| {row['overspend_median']:+,.0f} ({row['overspend_pct_median']:+.1f}%) / "
            f"{row['overspend_worst']:+,} ({row['overspend_pct_worst']:+.1f}%) "
            f"| {_n(row['refused_median'])} ({_n(row['refused_with_room_median'])}) "
            f"| {_n(row['sent_median'])} ({row['rate_median']:,.0f}/s) "
            f"| {row['answer_p50_ms_median']:.0f} ms | {row['answers_after_lease_wait']} | {row['store_problems']} "
            f"| {'yes' if row['table_matches_clients'] else '**no**'} |"
        )
    return "\n".join(lines)


def runs_table(cases: Sequence[Case]) -> str:
    lines = [
        (
            f"| limit | N | run | window left at start | admitted | overspend | 429s (under {ROOM:.0%} used) | other "
            "| admitted per instance "
            "| last 200 at | answer p50 / p99 / max | answers >= 2 s | store problems logged "
            "| table: requests / tokens |"
        ),
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---|---:|---:|---|",
    ]
    for c in sorted(cases, key=lambda c: (c.limit.kind, c.instances, c.run)):
        table = "-" if c.table_requests is None else f"{c.table_requests:,} / {c.table_tokens:,}"
        ms = c.latency_ms()
        answers = f"{ms['p50']:.1f} / {ms['p99']:.0f} / {ms['max']:.0f} ms" if ms else "-"
        lines.append(
            f"| {c.limit.kind} {c.limit.value:,} | {c.instances} | {c.run} | {c.window_left_s:.0f} s | {c.admitted:,} "
            f"| {c.overspend:+,} | {c.statuses.get(429, 0):,} ({c.refused_with_room:,}) | {c.others} "
            f"| {' '.join(map(str, c.admitted_per_instance))} | {c.last_admitted_s:.2f} s | {answers} | {c.waited:,} "
            f"| {c.store_problems} | {table} |"
        )
    return "\n".join(lines)


def cost_rows(cost: Cost) -> list[dict[str, Any]]:
    base = cost.phase.summary(UNLIMITED)
    rows = []
    for name in (UNLIMITED, PER_PROCESS, SHARED):
        s = cost.phase.summary(name)
        rows.append(
            {
                "key": name,
                "n": s.n,
                "p50_ms": s.p50_ms,
                "p99_ms": s.p99_ms,
                "mean_ms": s.mean_ms,
                "added_p50_ms": s.p50_ms - base.p50_ms,
                "added_p99_ms": s.p99_ms - base.p99_ms,
                "cpu_ms_per_request": 1000 * cost.phase.cpu_seconds[name] / max(1, s.n),
                "over_5ms": sum(seconds > SLOW_S for seconds in cost.phase.samples[name]),
            }
        )
    return rows


def cost_table(cost: Cost, rows: Sequence[dict[str, Any]]) -> str:
    lines = [
        "| caller key | p50 | p99 | mean | over 5 ms | added p50 / p99 over unlimited | gateway CPU per request |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    base_cpu = rows[0]["cpu_ms_per_request"]
    for row in rows:
        added = "-" if row["key"] == UNLIMITED else f"{row['added_p50_ms']:+.3f} / {row['added_p99_ms']:+.3f} ms"
        cpu = row["cpu_ms_per_request"]
        cpu_added = "" if row["key"] == UNLIMITED else f" ({cpu - base_cpu:+.3f})"
        lines.append(
            f"| {row['key']} (n={row['n']}) | {row['p50_ms']:.3f} ms | {row['p99_ms']:.3f} ms "
            f"| {row['mean_ms']:.3f} ms | {row['over_5ms']:,} | {added} | {cpu:.3f} ms{cpu_added} |"
        )
    goal = report.GOALS["budget_added_p50_ms"]
    lines.append("")
    for row in rows[1:]:
        lines.append(
            f"- {row['key']}: added p50 {row['added_p50_ms']:+.3f} ms, target {goal.text()}: "
            f"{goal.verdict(row['added_p50_ms'])}"
        )
    lines.append(
        f"- table operations while the usage-table gateway served {cost.shared_requests:,} measured requests: "
        f"{cost.table_operations:,}"
    )
    if cost.phase.truncated:
        lines.append("\nWARNING: the cost phase's time budget ran out")
    return "\n".join(lines)


def print_overspend(plan: Plan, fleets: Sequence[Fleet]) -> None:
    cases = [case for fleet in fleets for case in fleet.cases]
    print(f"## Overspend: {plan.clients} concurrent clients per case, {plan.drive_s:.0f} s each, one minute window\n")
    print(overspend_table(summarize_cases(cases)))
    print("\n### Every run\n")
    print(runs_table(cases))
    for fleet in fleets:
        said = "; ".join(f"{text} (x{n})" for text, n in fleet.table_warnings.items()) or "nothing"
        print(f"\nN={fleet.instances}: the gateways' logs about the usage table: {said}")
    if not all(c.same_window for c in cases):
        print("\nWARNING: a case's driving crossed a minute boundary: its counts are split over two windows")
    sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.budgets", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="one run per case, short: a smoke run")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"JSON results (default {RESULTS})")
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else FULL
    started = time.monotonic()
    load = {"start": os.getloadavg()}
    workdir = Path(tempfile.mkdtemp(prefix="aoai-bench-budgets-"))
    sim: procs.Service | None = None
    try:
        sim = procs.spawn("simulator", procs.sim_argv(), dict(os.environ), procs.SIM_READY, workdir / "sim.log", 30)
        env = procs.child_env(sim.url)
        with AzuriteTable() as tables:
            fleets = [overspend_phase(instances, plan, tables, workdir, env) for instances in INSTANCES]
        load["after overspend"] = os.getloadavg()
        print_overspend(plan, fleets)  # before the cost phase, which may fail on its own
        cost = cost_phase(plan, env, workdir)
        load["after cost"] = os.getloadavg()
    finally:
        procs.stop(sim)
        shutil.rmtree(workdir, ignore_errors=True)
    elapsed = time.monotonic() - started
    cases = [case for fleet in fleets for case in fleet.cases]
    costs = cost_rows(cost)
    print(f"\n## Cost per request: concurrency 1, {plan.cost_per_target:,} requests per gateway, interleaved\n")
    print(cost_table(cost, costs))
    loads = ", ".join(f"{when} {value[0]:.2f}" for when, value in load.items())
    print(f"\nload average (1 min): {loads}; {os.cpu_count()} CPUs; {elapsed:.0f} s")
    if max(value[0] for value in load.values()) > (os.cpu_count() or 1):
        print("WARNING: load above the CPU count: the latencies and rates above are the box's as much as the gateway's")
    goal = report.GOALS["budget_added_p50_ms"]
    report.write_json(
        args.output,
        {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
            "load_average": load,
            "elapsed_s": elapsed,
            "plan": {
                **dataclasses.asdict(plan),
                "instances": INSTANCES,
                "reserve_output_tokens": RESERVE_OUTPUT,
                "body": CASE_BODY.decode(),
            },
            "overspend": {
                "summary": summarize_cases(cases),
                "runs": [c.as_json() for c in cases],
                "table_warnings": {str(fleet.instances): fleet.table_warnings for fleet in fleets},
            },
            "cost": {
                "rows": costs,
                "table_operations": cost.table_operations,
                "shared_requests": cost.shared_requests,
                "truncated": cost.phase.truncated,
            },
            "targets": {
                f"budget_added_p50_ms[{row['key']}]": {
                    "value": row["added_p50_ms"],
                    "target": dataclasses.asdict(goal),
                    "passed": goal.passed(row["added_p50_ms"]),
                }
                for row in costs[1:]
            },
        },
    )
    print(f"\nJSON: {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
