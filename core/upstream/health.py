"""Each pool member's health, per gateway instance: a cooldown after a 429 (as long as the
upstream asks, within gateway.maxCooldown), and a circuit breaker that takes a member out when
too large a share of its recent attempts failed, then lets one probe request through (half-open)
before trusting it again.

A cooldown is absolute: a member cooling down is not tried. A breaker is not: when every member
a pool could try has its breaker open, they are tried anyway (the panic rule of Envoy's outlier
detection), so one caller's failing requests cannot take a pool away from everyone.

Members are known by their own model id, so every pool a member is in sees one health.
Nothing is shared between instances: each learns from the answers it gets itself.
"""

from __future__ import annotations

import email.utils
import math
import re
import time
from collections.abc import Callable, Mapping

from core.config.model import Breaker

_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")  # ASCII digits: \d takes any script's
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
_BUCKETS = 10  # a breaker's window is kept as this many slices of counts, the oldest dropped as time goes


class MemberHealth:
    __slots__ = (
        "cooling_until",
        "open_until",
        "outcomes",
        "open",
        "probing",
        "reported",
        "remaining_tokens",
        "remaining_requests",
    )

    def __init__(self) -> None:
        self.cooling_until = 0.0  # a cooldown (a 429, a Retry-After): not tried before then, panic or not
        self.open_until = 0.0  # the breaker's trip: from then one probe may go
        self.outcomes: list[list[float]] = []  # [slice start, attempts, failures] within the breaker's window
        self.open = False  # the circuit breaker tripped
        self.probing = False  # the half-open probe is under way
        self.reported = False  # the member has answered (a success): its counts below are what it said
        self.remaining_tokens: int | None = None  # as the member's last answer reported them; None: unknown
        self.remaining_requests: int | None = None


class Health:
    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._members: dict[str, MemberHealth] = {}

    def of(self, member: str) -> MemberHealth:
        health = self._members.get(member)
        if health is None:
            health = self._members[member] = MemberHealth()
        return health

    def available(self, member: str, now: float) -> bool:
        """Neither cooling down nor kept out by its breaker (open, or half-open with its probe under way)."""
        health = self._members.get(member)
        if health is None:
            return True
        if now < health.cooling_until:
            return False
        return not health.open or (now >= health.open_until and not health.probing)

    def usable(self, member: str, now: float) -> bool:
        """Not cooling down: what a pool may still try when every member's breaker keeps it out (panic)."""
        health = self._members.get(member)
        return health is None or now >= health.cooling_until

    def returns_at(self, member: str) -> float:
        """When the member's cooldown ends (its breaker never keeps it from a pool with nothing else)."""
        health = self._members.get(member)
        return 0.0 if health is None else health.cooling_until

    def start(self, member: str) -> bool:
        """An attempt is made on `member`; True when it is the half-open probe. An attempt on an open
        member before its trip ends (the panic rule) is no probe, but its outcome counts all the same."""
        health = self._members.get(member)
        if health is None or not health.open or health.probing or self.clock() < health.open_until:
            return False
        health.probing = True
        return True

    def end_probe(self, member: str) -> None:
        """The probe ended without a verdict (the client went away): the next request probes."""
        self.of(member).probing = False

    def succeeded(self, member: str, headers: Mapping[str, str], breaker: Breaker | None = None) -> None:
        """The member answered (anything but a failure): an open breaker closes, with its window wiped;
        a closed one counts the attempt in `breaker`'s window."""
        health = self.of(member)
        if health.open:
            health.open = health.probing = False
            health.outcomes.clear()
        elif breaker is not None:
            self._count(health, self.clock(), 1, 0, breaker.window)
        health.reported = True
        tokens, requests = headers.get("x-ratelimit-remaining-tokens"), headers.get("x-ratelimit-remaining-requests")
        if tokens is not None:  # an answer without the header leaves what the member said last
            health.remaining_tokens = _remaining(tokens)
        if requests is not None:
            health.remaining_requests = _remaining(requests)

    def throttled(self, member: str, cooldown: float) -> None:
        """A 429: the member is up but busy. It sits out `cooldown` seconds and that is all: a 429 is
        never a breaker failure (nor a success). A probe that meets one ends with no verdict."""
        health = self.of(member)
        health.cooling_until = max(health.cooling_until, self.clock() + cooldown)
        health.probing = False

    def failed(self, member: str, breaker: Breaker, cooldown: float | None, retry_after: float | None = None) -> None:
        """A failed attempt (5xx, 408, unreachable, too slow). `cooldown`: seconds to bench the member for (an
        answer naming a Retry-After); `retry_after`: the answer's own hint, which keeps a tripped breaker
        open longer (acceptRetryAfter)."""
        self._failed(member, breaker, cooldown, retry_after, attempts=1)

    def broke(self, member: str, breaker: Breaker) -> None:
        """An answer whose headers counted as a success broke off on the upstream's side (a stream cut or
        stalled): that attempt is a failure after all."""
        self._failed(member, breaker, None, None, attempts=0)

    def _failed(
        self, member: str, breaker: Breaker, cooldown: float | None, retry_after: float | None, attempts: int
    ) -> None:
        now = self.clock()
        health = self.of(member)
        if cooldown is not None:
            health.cooling_until = max(health.cooling_until, now + cooldown)
        if health.probing:  # the half-open probe failed: open again
            self._trip(health, breaker, now, retry_after)
            return
        if health.open:
            return  # tried anyway (the panic rule): already out as far as the breaker goes
        total, failures = self._count(health, now, attempts, 1, breaker.window)
        if total >= breaker.minimum_requests and failures * 100 >= breaker.failure_percent * total:
            self._trip(health, breaker, now, retry_after)

    def _count(self, health: MemberHealth, now: float, attempts: int, failures: int, window: float) -> tuple[int, int]:
        """Add to the current slice of the window; the attempts and failures the window holds now.
        Slices are 1/_BUCKETS of the window long; a slice is dropped once it starts a window ago."""
        outcomes = health.outcomes
        if outcomes and outcomes[0][0] <= now - window:
            outcomes[:] = [entry for entry in outcomes if entry[0] > now - window]
        width = window / _BUCKETS
        start = now - now % width
        if outcomes and outcomes[-1][0] == start:
            outcomes[-1][1] += attempts
            outcomes[-1][2] += failures
        else:
            outcomes.append([start, attempts, failures])
        total = sum(int(entry[1]) for entry in outcomes)
        failed = sum(int(entry[2]) for entry in outcomes)
        return max(total, failed), failed  # a broken answer's attempt may have left the window before it

    def _trip(self, health: MemberHealth, breaker: Breaker, now: float, retry_after: float | None) -> None:
        trip = breaker.trip
        if breaker.accept_retry_after and retry_after is not None:
            trip = max(trip, retry_after)
        health.open = True
        health.probing = False
        health.outcomes.clear()
        health.open_until = max(health.open_until, now + trip)


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the upstream asks to wait: retry-after-ms, Retry-After (seconds or a date),
    else x-ratelimit-reset-requests / -tokens (Azure's seconds, or OpenAI's "6m0s"); None when it names none.
    A negative, non-finite or unparsable value, or a date gone by, names none: the next header is read.
    Uncapped: the pool caps what it benches a member for (gateway.maxCooldown)."""
    millis = _number(headers.get("retry-after-ms"))
    if millis is not None:
        return millis / 1000
    value = headers.get("retry-after")
    if value is not None:
        seconds = _number(value)
        if seconds is not None:
            return seconds
        when = _date(value)
        if when is not None and when > time.time():  # a date gone by names no wait
            return when - time.time()
    for name in ("x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"):
        seconds = _duration(headers.get(name))
        if seconds is not None:
            return seconds
    return None


def _number(value: str | None) -> float | None:
    if value is None or not value.isascii():  # float() also reads other scripts' digits ("٣")
        return None
    try:
        number = float(value.strip())
    except ValueError:
        return None
    return number if math.isfinite(number) and number >= 0 else None


def _remaining(value: str) -> int | None:
    """A remaining count as a member reports it: below zero is none left (0); None when it is
    unparsable or not finite (unknown: never "plenty", which only a member not heard from yet has)."""
    try:
        number = float(value.strip())
    except ValueError:
        return None
    if not math.isfinite(number):
        return None
    return max(int(number), 0)


def _duration(value: str | None) -> float | None:
    if value is None:
        return None
    seconds = _number(value)
    if seconds is not None:
        return seconds
    text = value.strip()
    parts = _DURATION.findall(text)
    if not parts or "".join(number + unit for number, unit in parts) != text:
        return None
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def _date(value: str) -> float | None:
    try:
        return email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
