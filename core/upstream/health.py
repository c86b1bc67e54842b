"""Each pool member's health, per gateway instance: a cooldown after a 429 (as long as the
upstream asks, within gateway.maxCooldown), and a circuit breaker that takes a member out after consecutive failures,
then lets one probe request through (half-open) before trusting it again.

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

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class MemberHealth:
    __slots__ = ("benched_until", "failures", "open", "probing", "reported", "remaining_tokens", "remaining_requests")

    def __init__(self) -> None:
        self.benched_until = 0.0  # the clock's time from which the member may be tried again
        self.failures: list[float] = []  # when the consecutive failures happened
        self.open = False  # the circuit breaker tripped; once benched_until passes, one probe may go
        self.probing = False  # that probe is under way
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
        health = self._members.get(member)
        return health is None or (now >= health.benched_until and not health.probing)

    def returns_at(self, member: str) -> float:
        health = self._members.get(member)
        return 0.0 if health is None else health.benched_until

    def start(self, member: str) -> bool:
        """An attempt is made on `member`; True when it is the half-open probe."""
        health = self._members.get(member)
        if health is None or not health.open:
            return False
        health.probing = True
        return True

    def end_probe(self, member: str) -> None:
        """The probe ended without a verdict (the client went away): the next request probes."""
        self.of(member).probing = False

    def succeeded(self, member: str, headers: Mapping[str, str]) -> None:
        health = self.of(member)
        health.failures.clear()
        health.open = health.probing = False
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
        health.benched_until = max(health.benched_until, self.clock() + cooldown)
        health.probing = False

    def failed(self, member: str, breaker: Breaker, cooldown: float | None, retry_after: float | None = None) -> None:
        """`cooldown`: seconds to bench the member for (a 429, or an answer naming a Retry-After);
        `retry_after`: the answer's own hint, which keeps a tripped breaker open longer (acceptRetryAfter)."""
        now = self.clock()
        health = self.of(member)
        if cooldown is not None:
            health.benched_until = max(health.benched_until, now + cooldown)
        if health.probing:  # the half-open probe failed: open again
            health.probing = False
            self._trip(health, breaker, now, retry_after)
            return
        health.failures = [at for at in health.failures if now - at < breaker.window]
        health.failures.append(now)
        if len(health.failures) >= breaker.failures:
            self._trip(health, breaker, now, retry_after)

    def _trip(self, health: MemberHealth, breaker: Breaker, now: float, retry_after: float | None) -> None:
        trip = breaker.trip
        if breaker.accept_retry_after and retry_after is not None:
            trip = max(trip, retry_after)
        health.open = True
        health.failures.clear()
        health.benched_until = max(health.benched_until, now + trip)


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
    if value is None:
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
