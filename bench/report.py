"""Targets, the markdown table and the JSON file.

Targets live here, next to how they are judged, so changing one is a one-line diff.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson


@dataclass(frozen=True, slots=True)
class Goal:
    limit: float
    at_least: bool  # True: figure >= limit passes; False: figure <= limit passes
    unit: str  # a unit starting with "x" is a ratio ("x naive"): written 1.10x naive

    def passed(self, figure: float) -> bool:
        return figure >= self.limit if self.at_least else figure <= self.limit

    def text(self) -> str:
        return f"{'>=' if self.at_least else '<='} {amount(self.limit, self.unit)}"

    def verdict(self, figure: float) -> str:
        if self.passed(figure):
            return "pass"
        gap = self.limit - figure if self.at_least else figure - self.limit
        if self.unit.startswith("x"):
            return f"**MISS** by {gap:.3f}{self.unit}"  # (a figure shown as 1.10x may miss 1.1x by 0.004x)
        return f"**MISS** by {amount(gap, self.unit)} ({figure / self.limit:.2f}x target)"


# The goals: the gateway against the naive proxy (bench/naive.py) of the same run, budgets and metrics off.
# added = percentile minus the direct target's; the ratios are gateway / naive.
VERSUS_NAIVE: dict[str, Goal] = {
    "added_p50_vs_naive": Goal(1.1, False, "x naive"),
    "cpu_per_request_vs_naive": Goal(1.1, False, "x naive"),
    "rps_vs_naive": Goal(0.9, True, "x naive"),
}
# Absolute goals, kept as regression guards for what the ratios cannot see: a stack that gets slower for both
# proxies alike, memory and cold start (the naive proxy has no counterpart). They depend on the machine.
ABSOLUTE: dict[str, Goal] = {
    "added_p50_ms": Goal(0.5, False, "ms"),
    "added_p99_ms": Goal(1.5, False, "ms"),
    "gateway_cpu_ms_per_request": Goal(0.5, False, "ms"),
    "gateway_rps_c32": Goal(2000, True, "req/s"),
    "gateway_peak_rss_mib": Goal(80, False, "MiB"),
    "import_ms": Goal(300, False, "ms"),
    "start_to_first_200_s": Goal(1.0, False, "s"),
}
# bench.usage: the gateway with a limited key and metrics on, against the same gateway with both off.
USAGE: dict[str, Goal] = {"usage_added_p50_ms": Goal(0.1, False, "ms")}
# bench.budgets: a limited caller key (per process, or sharing a usage table) against the same key unlimited.
BUDGETS: dict[str, Goal] = {"budget_added_p50_ms": Goal(0.1, False, "ms")}
GOALS: dict[str, Goal] = {**VERSUS_NAIVE, **ABSOLUTE, **USAGE, **BUDGETS}


@dataclass(frozen=True, slots=True)
class Row:
    measure: str
    direct: str
    naive: str
    gateway: str
    figure: str  # what is judged: added latency, gateway req/s, gateway / naive, ...
    goal_key: str | None = None
    value: float | None = None  # the judged number, for goal_key (or, without one, a figure worth a median over runs)
    unit: str = "ms"  # the value's, without a goal_key (with one, the goal's)

    @property
    def key(self) -> str:
        """What names the row across runs (a label may carry a run's own counts)."""
        return self.goal_key or self.measure

    def cells(self) -> list[str]:
        if self.goal_key is None or self.value is None:
            return [self.measure, self.direct, self.naive, self.gateway, self.figure, "-", "info"]
        goal = GOALS[self.goal_key]
        return [self.measure, self.direct, self.naive, self.gateway, self.figure, goal.text(), goal.verdict(self.value)]


def amount(value: float, unit: str) -> str:
    """A value in its unit; a unit starting with "x" is a ratio ("x naive"): 1.10x naive."""
    return f"{value:.2f}{unit}" if unit.startswith("x") else f"{_num(value)} {unit}"


def _num(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.3g}" if abs(value) < 1 else f"{value:.2f}"


def ms(value: float) -> str:
    return f"{value:.3f} ms"


def signed_ms(value: float) -> str:
    return f"{value:+.3f} ms"


def ratio(numerator: float, denominator: float) -> float:
    """numerator / denominator; infinity when the denominator is not positive (a ratio that cannot pass)."""
    return numerator / denominator if denominator > 0 else math.inf


def times(value: float) -> str:
    return f"{value:.2f}x"


def markdown(rows: list[Row]) -> str:
    header = ["measure", "direct (simulator)", "naive proxy", "gateway", "figure", "target", "result"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def verdicts(rows: list[Row]) -> dict[str, dict[str, Any]]:
    """goal key -> {value, target, passed}, for the JSON file."""
    out = {}
    for row in rows:
        if row.goal_key is not None and row.value is not None:
            goal = GOALS[row.goal_key]
            out[row.goal_key] = {"value": row.value, "target": asdict(goal), "passed": goal.passed(row.value)}
    return out


def run_values(runs: list[list[Row]]) -> dict[str, list[float]]:
    """Row key -> its value in each run, for every row with a value in every run, in the first run's order."""
    values: dict[str, list[float]] = {}
    for rows in runs:
        for row in rows:
            if row.value is not None:
                values.setdefault(row.key, []).append(row.value)
    return {key: found for key, found in values.items() if len(found) == len(runs)}


def runs_markdown(runs: list[list[Row]]) -> str:
    """Each figure of several runs, and its median, which the goals judge: a run's processes land differently on
    the machine's cores, and their figures with them (bench/README.md, "Several runs")."""
    labels = {row.key: row.measure for row in runs[-1]}
    units = {row.key: row.unit for row in runs[-1]}
    header = ["measure", *(f"run {index}" for index in range(1, len(runs) + 1)), "median", "target", "result"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for key, values in run_values(runs).items():
        goal = GOALS.get(key)
        median = statistics.median(values)
        unit = goal.unit if goal is not None else units[key]
        shown = [amount(value, unit) for value in values]
        middle = amount(median, unit)
        judged = [goal.text(), goal.verdict(median)] if goal is not None else ["-", "info"]
        lines.append("| " + " | ".join([labels[key], *shown, middle, *judged]) + " |")
    return "\n".join(lines)


def median_verdicts(runs: list[list[Row]]) -> dict[str, dict[str, Any]]:
    """goal key -> {value (the median), values (each run's), target, passed}, for the JSON file."""
    out = {}
    for key, values in run_values(runs).items():
        goal = GOALS.get(key)
        if goal is not None:
            median = statistics.median(values)
            out[key] = {"value": median, "values": values, "target": asdict(goal), "passed": goal.passed(median)}
    return out


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n")
