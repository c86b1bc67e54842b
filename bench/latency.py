"""Concurrency-1 latency, interleaving the targets so machine noise lands on both equally.

Each target keeps one keep-alive connection for the whole phase. The phase is split into rounds; every round runs
a slice on each target, and the order flips each round (ABBA) so neither target always follows the other.
"""

from __future__ import annotations

import gc
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from bench.client import Connection, Target

Measure = Callable[[Connection, bytes], float]  # one request on a connection -> seconds
CpuProbe = Callable[[], float]  # -> CPU seconds a process has used so far


@dataclass(frozen=True, slots=True)
class Summary:
    n: int
    p50_ms: float
    p99_ms: float
    mean_ms: float


@dataclass(slots=True)
class Phase:
    samples: dict[str, list[float]] = field(default_factory=dict)  # target name -> seconds per request
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # target name -> probed CPU during its slices
    truncated: bool = False  # the time budget ran out before every request was made

    def summary(self, name: str) -> Summary:
        return summarize(self.samples[name])


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (a value that was actually observed)."""
    rank = max(1, math.ceil(p / 100.0 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(values: Sequence[float]) -> Summary:
    ordered = sorted(values)
    return Summary(
        n=len(ordered),
        p50_ms=percentile(ordered, 50) * 1000,
        p99_ms=percentile(ordered, 99) * 1000,
        mean_ms=sum(ordered) / len(ordered) * 1000,
    )


def interleave(
    targets: Sequence[Target],
    body: bytes,
    measure: Measure,
    *,
    per_target: int,
    rounds: int,
    budget_s: float,
    probes: Mapping[str, CpuProbe] | None = None,
) -> Phase:
    """`per_target` requests per target in `rounds` alternating slices, stopping early (flagged) after `budget_s`."""
    probes = probes or {}
    requests = {t.name: t.request(body) for t in targets}
    phase = Phase({t.name: [] for t in targets}, {t.name: 0.0 for t in targets})
    per_round = max(1, per_target // rounds)
    deadline = time.monotonic() + budget_s
    connections = {t.name: Connection(t) for t in targets}
    gc_was_enabled = gc.isenabled()
    gc.disable()  # a collection in the client would show up as a latency spike on whichever target it hit
    try:
        for index in range(rounds):
            order = targets if index % 2 == 0 else list(reversed(targets))
            for target in order:
                probe = probes.get(target.name)
                before = probe() if probe else 0.0
                done = _run_slice(connections[target.name], requests[target.name], measure, per_round, deadline)
                phase.samples[target.name].extend(done)
                if probe:
                    phase.cpu_seconds[target.name] += probe() - before
                if len(done) < per_round:
                    phase.truncated = True
                    return phase
            gc.collect()  # between slices, where it costs nothing measured
    finally:
        if gc_was_enabled:
            gc.enable()
        for conn in connections.values():
            conn.close()
    return phase


def _run_slice(conn: Connection, request: bytes, measure: Measure, count: int, deadline: float) -> list[float]:
    out = []
    for _ in range(count):
        if time.monotonic() > deadline:
            break
        out.append(measure(conn, request))
    return out


def warm_up(targets: Sequence[Target], body: bytes, measure: Measure, count: int, budget_s: float) -> None:
    """Unrecorded requests: first connections upstream, code paths, allocator pools."""
    interleave(targets, body, measure, per_target=count, rounds=1, budget_s=budget_s)
