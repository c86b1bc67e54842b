"""Caller-key budgets (`gateway.apiKeys[].limits`): requests and tokens per UTC minute, tokens per UTC day.

A request is checked and counted before it goes upstream; its tokens are added when its answer
ends (streams too). Over a limit, the caller gets OpenAI's 429 `rate_limit_exceeded`; every
answer to a limited key carries OpenAI's `x-ratelimit-*` headers.

Across instances (a usage table configured, core/usage_table.py) each instance counts locally
and every SYNC_SECONDS merges its deltas into the shared entity, reading back every instance's
total. Between two syncs an instance does not see the others' new requests: a key can overshoot
a limit by about (instances - 1) x SYNC_SECONDS x the rate each instance admits for it. A failing
store never blocks traffic: the instance keeps counting locally, logs once, and merges its
deltas when the store answers again.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from core.auth import Caller
from core.config.model import CallerKey, Limits
from core.errors import GatewayError
from core.usage_table import DAY_ROW, MINUTE_ROW, Counts, UsageTable

SYNC_SECONDS = 1.0
# A process's first requests wait at most this long for the stored counts (a restart must not reset them).
FIRST_SYNC_WAIT_SECONDS = 2.0
logger = logging.getLogger("aoai_gateway")


def minute_window(now: float) -> tuple[str, float]:
    """The window's row key and when it ends (epoch seconds)."""
    start = now - now % 60
    return _row(MINUTE_ROW, start), start + 60


def day_window(now: float) -> tuple[str, float]:
    start = now - now % 86400
    return _row(DAY_ROW, start), start + 86400


@functools.lru_cache(maxsize=8)
def _row(form: str, start: float) -> str:
    """A window's row key: formatted once per window, not per call."""
    return time.strftime(form, time.gmtime(start))


class Window:
    """One key's counts in one window: every instance's total as last read, plus this process's unmerged share."""

    __slots__ = ("ends_at", "shared", "pending_requests", "pending_tokens")

    def __init__(self, ends_at: float) -> None:
        self.ends_at = ends_at
        self.shared = Counts()
        self.pending_requests = 0
        self.pending_tokens = 0

    @property
    def requests(self) -> int:
        return self.shared.requests + self.pending_requests

    @property
    def tokens(self) -> int:
        return self.shared.tokens + self.pending_tokens


@dataclass(frozen=True, slots=True)
class _Budget:
    """One limit as the caller sees it."""

    what: str  # "requests per min (RPM)", ...
    kind: str  # "requests" or "tokens": OpenAI's header suffix and error type
    limit: int
    used: int
    resets_at: float

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)


class Budgets:
    def __init__(self, table: UsageTable | None, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._clock = clock
        self._windows: dict[tuple[str, str], Window] = {}
        self._keys: tuple[CallerKey, ...] = ()
        self._task: asyncio.Task[None] | None = None
        self._synced = asyncio.Event()
        self._store_failing = False

    def configure(self, keys: tuple[CallerKey, ...]) -> None:
        """The limited keys of the configuration being served (on start and on reload)."""
        self._keys = tuple(key for key in keys if key.limits is not None)

    async def admit(self, caller: Caller) -> dict[str, str]:
        """Count one request of `caller`; the rate-limit headers for its answer. GatewayError 429 when over a limit."""
        key = caller.key
        if key is None or key.limits is None:
            return {}
        if self._table is not None:
            self._ensure_syncing()
            if not self._synced.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._synced.wait(), FIRST_SYNC_WAIT_SECONDS)
        now = self._clock()
        minute, day = self._current(key.name, key.limits, now)
        budgets = _budgets(key.limits, minute, day, now)
        for budget in budgets:
            if budget.remaining <= 0:
                raise _rate_limited(key.name, budget, budgets, now)
        minute.pending_requests += 1
        if day is not None:
            day.pending_requests += 1
        return _headers(_budgets(key.limits, minute, day, now), now)

    def spend(self, caller: str, tokens: int) -> None:
        """Add an answer's tokens to a limited key's current windows."""
        key = next((key for key in self._keys if key.name == caller), None)
        if key is None or key.limits is None or tokens <= 0:
            return
        minute, day = self._current(caller, key.limits, self._clock())
        minute.pending_tokens += tokens
        if day is not None:
            day.pending_tokens += tokens

    def _current(self, caller: str, limits: Limits, now: float) -> tuple[Window, Window | None]:
        minute = self._window(caller, *minute_window(now))
        day = self._window(caller, *day_window(now)) if limits.tokens_per_day is not None else None
        return minute, day

    def _window(self, caller: str, row: str, ends_at: float) -> Window:
        window = self._windows.get((caller, row))
        if window is None:
            self._forget_ended()
            window = self._windows[(caller, row)] = Window(ends_at)
        return window

    def _forget_ended(self) -> None:
        now = self._clock()
        for id_, window in list(self._windows.items()):
            merged = window.pending_requests == 0 and window.pending_tokens == 0
            if window.ends_at <= now and (merged or self._table is None):
                del self._windows[id_]

    # -- sharing through the usage table

    def _ensure_syncing(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._sync_forever())

    async def _sync_forever(self) -> None:
        while True:
            await self.sync()
            self._synced.set()
            await asyncio.sleep(SYNC_SECONDS)

    async def sync(self) -> None:
        """Merge every window's unmerged counts into the table and read back the totals."""
        assert self._table is not None
        now = self._clock()
        for key in self._keys:  # read the current windows even before a request: another instance may have counted
            assert key.limits is not None
            self._current(key.name, key.limits, now)
        try:
            for (caller, row), window in list(self._windows.items()):
                delta = Counts(window.pending_requests, window.pending_tokens)
                window.shared = await self._table.merge(caller, row, delta)
                window.pending_requests -= delta.requests
                window.pending_tokens -= delta.tokens
        except Exception as error:  # the store's failures are many (network, auth, throttling): none may stop traffic
            if not self._store_failing:
                logger.warning(
                    "usage table unreachable (%s: %s): counting per instance until it answers",
                    type(error).__name__, str(error).splitlines()[0][:200] if str(error) else "",
                )  # fmt: skip
                self._store_failing = True
            return
        if self._store_failing:
            logger.warning("usage table reachable again: counts are shared again")
            self._store_failing = False

    async def aclose(self) -> None:
        """Stop syncing; merge what this process counted since the last sync."""
        if self._task is None:
            return
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.sync(), FIRST_SYNC_WAIT_SECONDS)


def _budgets(limits: Limits, minute: Window, day: Window | None, now: float) -> list[_Budget]:
    budgets = []
    if limits.requests_per_minute is not None:
        budgets.append(
            _Budget("requests per min (RPM)", "requests", limits.requests_per_minute, minute.requests, minute.ends_at)
        )
    if limits.tokens_per_minute is not None:
        budgets.append(
            _Budget("tokens per min (TPM)", "tokens", limits.tokens_per_minute, minute.tokens, minute.ends_at)
        )
    if limits.tokens_per_day is not None and day is not None:
        budgets.append(_Budget("tokens per day (TPD)", "tokens", limits.tokens_per_day, day.tokens, day.ends_at))
    return budgets


def _headers(budgets: list[_Budget], now: float) -> dict[str, str]:
    """OpenAI's x-ratelimit-* headers; of two token budgets, the one with less left."""
    headers: dict[str, str] = {}
    for kind in ("requests", "tokens"):
        of_kind = [budget for budget in budgets if budget.kind == kind]
        if not of_kind:
            continue
        budget = min(of_kind, key=lambda b: b.remaining)
        headers[f"x-ratelimit-limit-{kind}"] = str(budget.limit)
        headers[f"x-ratelimit-remaining-{kind}"] = str(budget.remaining)
        headers[f"x-ratelimit-reset-{kind}"] = duration(budget.resets_at - now)
    return headers


def duration(seconds: float) -> str:
    """OpenAI's reset format: `45s`, `6m0s`, `2h30m0s`."""
    whole = max(math.ceil(seconds), 1)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _rate_limited(caller: str, over: _Budget, budgets: list[_Budget], now: float) -> GatewayError:
    wait = max(math.ceil(over.resets_at - now), 1)
    headers = {**_headers(budgets, now), "retry-after": str(wait)}
    return GatewayError(
        429,
        f"Rate limit reached for caller key {caller} on {over.what}: Limit {over.limit}, Used {over.used}. "
        f"Please try again in {duration(over.resets_at - now)}.",
        type=over.kind,
        code="rate_limit_exceeded",
        headers=headers,
    )
