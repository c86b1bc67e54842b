"""Caller-key budgets (`gateway.apiKeys[].limits`): requests and tokens per UTC minute, tokens per UTC day, money
per UTC day and calendar month (in micro-units: core/models/prices.py).

A call reserves its cost as it goes upstream, not before: one request, and the tokens core/reservation.py
estimates (its prompt, and the most it may generate). What the gateway refuses itself (401, 403, 404, 400, 413,
429) never goes upstream and counts against nothing. When the call ends, what it really cost replaces the
reservation: the answer's usage; for a stream cut before its usage, the reservation. So what one instance admits
in a window never exceeds a limit by more than what calls used beyond their reservations. Over a limit, the
caller gets OpenAI's 429 `rate_limit_exceeded` (over a cost limit, `insufficient_quota`); every answer to a
limited key carries OpenAI's `x-ratelimit-*` headers and, with a cost limit, the gateway's `x-gateway-cost-*`,
from what every instance has used as far as this one knows.

Across instances (a usage table configured, core/usage_table.py) an instance admits only within its lease of
the window (core/leases.py), which it takes from the table before it admits against it; the leases of all
instances never add up to more than the limit. Every SYNC_SECONDS an instance writes what it used (and hands
back what it holds unused when idle): a key no instance is using costs no table operation. A failing store
never blocks traffic: the instance admits against what the shared view had left (fail open), logs once, and
writes its use when the store answers again.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import functools
import logging
import math
import os
import time
from collections.abc import Callable, Iterable

from core.auth import Caller
from core.config.model import CallerKey, Limits
from core.errors import GatewayError
from core.leases import LEASE_TTL_SECONDS, WindowLease
from core.models.prices import money
from core.usage_table import (
    DAY_ROW,
    MINUTE_ROW,
    MONTH_ROW,
    Counts,
    Share,
    StoreError,
    StoreProblem,
    UsageTable,
    WindowUsage,
)

SYNC_SECONDS = 1.0
# A call waits at most this long for a lease from the table; then it is admitted against the shared view.
LEASE_WAIT_SECONDS = 2.0
# How long the final write at shutdown may take.
FLUSH_SECONDS = 3.0
logger = logging.getLogger("aoai_gateway")


def minute_window(now: float) -> tuple[str, float]:
    """The window's row key and when it ends (epoch seconds)."""
    start = now - now % 60
    return _row(MINUTE_ROW, start), start + 60


def day_window(now: float) -> tuple[str, float]:
    start = now - now % 86400
    return _row(DAY_ROW, start), start + 86400


def month_window(now: float) -> tuple[str, float, float]:
    """The UTC calendar month's row key, when it started and when it ends (epoch seconds)."""
    year, month = time.gmtime(now)[:2]
    start = calendar.timegm((year, month, 1, 0, 0, 0))
    end = calendar.timegm((year + month // 12, month % 12 + 1, 1, 0, 0, 0))
    return _row(MONTH_ROW, start), start, end


@functools.lru_cache(maxsize=8)
def _row(form: str, start: float) -> str:
    """A window's row key: formatted once per window, not per call."""
    return time.strftime(form, time.gmtime(start))


class _Budget:
    """One limit as the caller sees it. (A plain class: a limited key's calls make several each, and a frozen
    dataclass sets each field through object.__setattr__.)"""

    __slots__ = ("what", "kind", "limit", "used", "resets_at", "lease")

    def __init__(self, what: str, kind: str, limit: int, used: int, resets_at: float, lease: WindowLease) -> None:
        self.what = what  # "requests per min (RPM)", ...
        # "requests", "tokens" or "cost": OpenAI's header suffix and error type (the gateway's, for cost), and the
        # name of what it counts in Counts
        self.kind = kind
        self.limit = limit
        self.used = used
        self.resets_at = resets_at
        self.lease = lease

    @property
    def remaining(self) -> int:
        return max(self.limit - self.used, 0)


class Reservation:
    """What one call reserved, in the windows it was admitted in (it settles there, however long it runs)."""

    __slots__ = ("leases", "cost")

    def __init__(self, leases: tuple[WindowLease, ...], cost: Counts) -> None:
        self.leases = leases
        self.cost = cost


class Budgets:
    def __init__(self, table: UsageTable | None, clock: Callable[[], float] = time.time) -> None:
        self._table = table
        self._clock = clock
        self._instance = os.urandom(8).hex()  # this process's name in the table's shares
        self._leases: dict[tuple[str, str], WindowLease] = {}
        # Per key: the minute they are current for (its start and end), the limits they were made for, the leases.
        self._current_leases: dict[str, tuple[float, float, Limits, tuple[WindowLease, ...]]] = {}
        self._task: asyncio.Task[None] | None = None
        self._store_problem: StoreProblem | None = None

    def configure(self, keys: tuple[CallerKey, ...]) -> None:
        """The caller keys of the configuration being served (on start and on reload): a key whose limits
        changed starts its windows again with the new limits."""
        limits = {key.name: key.limits for key in keys}
        self._current_leases.clear()
        for id_, lease in list(self._leases.items()):
            if limits.get(lease.caller) is None:
                del self._leases[id_]

    def check(self, caller: Caller) -> None:
        """Before the call's body is read: GatewayError 429 when a limit is spent as far as this instance
        knows. Nothing is counted."""
        key = caller.key
        if key is None or key.limits is None:
            return
        now = self._clock()
        leases = self._current(key.name, key.limits, now)
        for lease in leases:
            if lease.spent():
                over = next(budget for budget in _budgets(key.limits, leases, now) if budget.remaining <= 0)
                raise _rate_limited(key.name, over, leases, now, Counts(1, 0))

    async def reserve(
        self, caller: Caller, tokens: int, micros: int = 0
    ) -> tuple[Reservation | None, list[tuple[bytes, bytes]]]:
        """Reserve one request, `tokens` and `micros` of money for a call going upstream; the rate-limit
        headers for its answer, as it sends them. GatewayError 429 when it does not fit a limit."""
        key = caller.key
        if key is None or key.limits is None:
            return None, []
        if self._table is not None:
            self._ensure_syncing()
        cost = Counts(1, tokens, micros)
        now = self._clock()
        leases = self._current(key.name, key.limits, now)
        for lease in leases:
            if lease.exceeds_limit(cost):
                raise _too_large(key.name, key.limits, cost, leases, now)
        if self._table is not None:
            await self._claim(leases, cost, now)
        for lease in leases:
            if not lease.fits(cost):
                budgets = _budgets(key.limits, leases, now)
                over = next(budget for budget in budgets if not budget.lease.fits_kind(budget.kind, cost))
                raise _rate_limited(key.name, over, leases, now, cost)
        for lease in leases:
            lease.reserve(cost, now)
        return Reservation(leases, cost), _headers(leases, now)  # what each window has used, this call counted in

    def settle(self, reservation: Reservation, spent: Counts, model: str | None = None) -> None:
        """A call ended: what it `spent` (of `model`'s cost) replaces what it reserved."""
        spent = Counts(max(spent.requests, 0), max(spent.tokens, 0), max(spent.cost, 0))
        for lease in reservation.leases:
            lease.settle(reservation.cost, spent, model)

    def _current(self, caller: str, limits: Limits, now: float) -> tuple[WindowLease, ...]:
        """The key's leases on the windows `now` is in: the minute, then the day and the month when limited.
        Looked up once per key and minute (a day or a month ends when a minute does)."""
        current = self._current_leases.get(caller)
        if current is not None and current[0] <= now < current[1] and current[2] is limits:
            return current[3]
        leases = self._windows(caller, limits, now)
        self._current_leases[caller] = (leases[0].starts_at, leases[0].ends_at, limits, leases)
        return leases

    def _windows(self, caller: str, limits: Limits, now: float) -> tuple[WindowLease, ...]:
        minute_row, minute_ends = minute_window(now)
        minute = self._lease(caller, minute_row, minute_ends - 60, minute_ends,
                             Counts(limits.requests_per_minute or 0, limits.tokens_per_minute or 0))  # fmt: skip
        leases = [minute]
        if limits.tokens_per_day is not None or limits.cost_per_day is not None:
            day_row, day_ends = day_window(now)
            day_limit = Counts(0, limits.tokens_per_day or 0, limits.cost_per_day or 0)
            leases.append(self._lease(caller, day_row, day_ends - 86400, day_ends, day_limit))
        if limits.cost_per_month is not None:
            month_row, month_starts, month_ends = month_window(now)
            month_limit = Counts(0, 0, limits.cost_per_month)
            leases.append(self._lease(caller, month_row, month_starts, month_ends, month_limit))
        return tuple(leases)

    def _lease(self, caller: str, row: str, starts_at: float, ends_at: float, limit: Counts) -> WindowLease:
        lease = self._leases.get((caller, row))
        if lease is None:
            if self._table is None:
                self._forget_ended()
            lease = self._leases[(caller, row)] = WindowLease(caller, row, starts_at, ends_at, limit,
                                                              local=self._table is None)  # fmt: skip
        elif lease.limit != limit:
            # The limits changed (a reload): the same lease, so what was used stays used and the calls in flight,
            # whose reservations hold it, settle where they were counted. Its claim is asked for again.
            lease.limit = limit
            lease.claim = limit if self._table is None else Counts()
        return lease

    def _forget_ended(self) -> None:
        now = self._clock()
        for id_, lease in list(self._leases.items()):
            if lease.ends_at <= now and lease.in_flight == 0:
                del self._leases[id_]

    # -- leases from the usage table

    async def _claim(self, leases: tuple[WindowLease, ...], cost: Counts, now: float) -> None:
        """Grow the leases `cost` does not fit until it fits, the table grants no more, or LEASE_WAIT_SECONDS pass
        (then this instance admits against its part of the shared view). The calls waiting together are asked for
        together: one growth holds them all, not one call each."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + LEASE_WAIT_SECONDS
        while short := [lease for lease in leases if not lease.fits(cost)]:
            claims = [lease.claim for lease in short]
            # A write already under way (another call's growth, the sync's) was decided before this call waited:
            # it is waited for, then asked again. Only growths this call starts ask for it too.
            asks = not any(_under_way(lease) for lease in short)
            for lease in short:
                lease.pending += cost
            try:
                granted = await self._grow(short, now, deadline - loop.time())
            finally:
                for lease in short:
                    lease.pending -= cost
            # Every lease is looked at again, not only those it waited for: meanwhile the sync may have handed
            # another one's claim back (idle), or a call settled below its reservation made room.
            if granted is None:
                self._failing(StoreError("busy", f"no lease within {LEASE_WAIT_SECONDS:g} s"))
                for lease in leases:
                    if not lease.fits(cost):
                        lease.local_claim(shared=True)
                return
            # What its own growths were granted, not the claims as they are now: a write that landed since (the
            # sync's, decided after them) may have changed those, and says nothing about what the table has left.
            if asks and granted == claims and all(lease in short for lease in leases if not lease.fits(cost)):
                return  # the table has no more to grant: the others hold the rest

    async def _grow(self, leases: list[WindowLease], now: float, wait: float) -> list[Counts] | None:
        """Ask the table for more of each lease, for what every waiting call needs (one write per lease at a
        time: a call arriving meanwhile waits for it). Each lease's claim as its write left it; None when `wait`
        seconds were not enough."""
        writes = [_under_way(lease) or self._start_write(lease, lease.wanted(lease.pending, now)) for lease in leases]
        try:
            return await asyncio.wait_for(asyncio.shield(asyncio.gather(*writes)), max(wait, 0.0))
        except TimeoutError:
            return None

    def _start_write(self, lease: WindowLease, decide: Callable[[WindowUsage], Share]) -> asyncio.Task[Counts]:
        """Write `lease` as `decide` makes it; the caller checked that no other write of it is under way."""
        task = lease.writing = asyncio.ensure_future(self._written(lease, decide))
        return task

    async def _written(self, lease: WindowLease, decide: Callable[[WindowUsage], Share]) -> Counts:
        """The claim this write left (before any later write changes it)."""
        try:
            await self._write(lease, decide)
            return lease.claim
        finally:
            lease.writing = None

    async def _write(self, lease: WindowLease, decide: Callable[[WindowUsage], Share]) -> None:
        assert self._table is not None
        try:
            written = await self._table.update(lease.caller, lease.row, self._instance, decide, LEASE_TTL_SECONDS)
        except StoreError as error:
            self._failing(error)
            lease.local_claim()
            return
        lease.written_as(written.shares[self._instance], written.without(self._instance), self._clock())
        if self._store_problem is not None:
            logger.warning("usage table reachable again: counts are shared again")
            self._store_problem = None

    def _failing(self, error: StoreError) -> None:
        if self._store_problem != error.problem:
            logger.warning(
                "usage table %s (%s): admitting against the last shared counts until it answers",
                _PROBLEMS[error.problem], error,
            )  # fmt: skip
            self._store_problem = error.problem

    def _ensure_syncing(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._sync_forever())

    async def _sync_forever(self) -> None:
        while True:
            await asyncio.sleep(SYNC_SECONDS)
            await self.sync()

    async def sync(self) -> None:
        """Write each lease whose use changed since its last write, hand back what idle leases hold, and
        forget the windows that are over and written."""
        now = self._clock()
        writes = []
        for id_, lease in list(self._leases.items()):
            if _under_way(lease):
                continue  # that write writes its use too
            decide = lease.sync_wanted(now)
            if decide is not None:
                writes.append(self._start_write(lease, decide))
            elif lease.ends_at <= now and lease.done:
                del self._leases[id_]
        if writes:
            # Not gathered: cancelling the sync (at shutdown) must not cancel writes a call may be waiting for.
            await asyncio.wait(writes)
            for write in writes:
                write.result()

    async def aclose(self) -> None:
        """Stop syncing; write what this process used and hand back what it holds."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._table is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._flush(self._leases.values()), FLUSH_SECONDS)

    async def _flush(self, leases: Iterable[WindowLease]) -> None:
        await asyncio.gather(*(self._hand_back(lease) for lease in list(leases)))

    async def _hand_back(self, lease: WindowLease) -> None:
        """Write `lease`'s use, holding nothing, after the write under way: the last write must be this one."""
        while (write := _under_way(lease)) is not None:
            await asyncio.wait([write])
        if lease.written is None or lease.written.used != lease.used or lease.written.claim != Counts():
            await self._start_write(lease, _release(lease.used, lease.models, self._clock()))


def _under_way(lease: WindowLease) -> asyncio.Future[Counts] | None:
    """The write of `lease` under way, if any."""
    write = lease.writing
    return write if isinstance(write, asyncio.Future) and not write.done() else None


_PROBLEMS: dict[StoreProblem, str] = {
    "unreachable": "unreachable",
    "denied": "refused the gateway's identity",
    "busy": "too busy with other instances' writes",
    "failed": "failed",
}


def _release(used: Counts, models: dict[str, int], now: float) -> Callable[[WindowUsage], Share]:
    models = dict(models)

    def decide(others: WindowUsage) -> Share:
        return Share(Counts(), used, now, models)

    return decide


def _budgets(limits: Limits, leases: tuple[WindowLease, ...], now: float) -> list[_Budget]:
    """The key's limits, each with its window's use (leases as _current gives them: the minute, then the day and
    the month when limited)."""
    minute = leases[0]
    used = minute.shared_used
    budgets = []
    if limits.requests_per_minute is not None:
        rpm = limits.requests_per_minute
        budgets.append(_Budget("requests per min (RPM)", "requests", rpm, used.requests, minute.ends_at, minute))
    if limits.tokens_per_minute is not None:
        tpm = limits.tokens_per_minute
        budgets.append(_Budget("tokens per min (TPM)", "tokens", tpm, used.tokens, minute.ends_at, minute))
    for lease in leases[1:]:
        lease_used = lease.shared_used
        if lease.row[0] == DAY_ROW[0]:
            if limits.tokens_per_day is not None:
                tpd = limits.tokens_per_day
                budgets.append(_Budget("tokens per day (TPD)", "tokens", tpd, lease_used.tokens, lease.ends_at, lease))
            if limits.cost_per_day is not None:
                budgets.append(
                    _Budget("cost per day", "cost", limits.cost_per_day, lease_used.cost, lease.ends_at, lease)
                )
        elif limits.cost_per_month is not None:
            budgets.append(
                _Budget("cost per month", "cost", limits.cost_per_month, lease_used.cost, lease.ends_at, lease)
            )
    return budgets


def _headers(leases: tuple[WindowLease, ...], now: float) -> list[tuple[bytes, bytes]]:
    """OpenAI's x-ratelimit-* headers, from the key's windows as this instance knows them (leases as _current
    gives them); of two token (or cost) limits, the one with less left, the shorter window's on a tie. As the
    answer sends them (bytes): a limited key's every call has them."""
    minute = leases[0]
    limit, used = minute.limit, minute.shared_used
    headers: list[tuple[bytes, bytes]] = []
    if limit.requests:
        headers += (
            (b"x-ratelimit-limit-requests", b"%d" % limit.requests),
            (b"x-ratelimit-remaining-requests", b"%d" % max(limit.requests - used.requests, 0)),
            (b"x-ratelimit-reset-requests", duration(minute.ends_at - now).encode()),
        )
    # (limit, remaining, when it resets) of the token and the cost limit with the least left
    tokens = (limit.tokens, max(limit.tokens - used.tokens, 0), minute.ends_at) if limit.tokens else None
    cost: tuple[int, int, float] | None = None
    for lease in leases[1:]:
        limit, used = lease.limit, lease.shared_used
        if limit.tokens and (tokens is None or max(limit.tokens - used.tokens, 0) < tokens[1]):
            tokens = (limit.tokens, max(limit.tokens - used.tokens, 0), lease.ends_at)
        if limit.cost and (cost is None or max(limit.cost - used.cost, 0) < cost[1]):
            cost = (limit.cost, max(limit.cost - used.cost, 0), lease.ends_at)
    if tokens is not None:
        headers += (
            (b"x-ratelimit-limit-tokens", b"%d" % tokens[0]),
            (b"x-ratelimit-remaining-tokens", b"%d" % tokens[1]),
            (b"x-ratelimit-reset-tokens", duration(tokens[2] - now).encode()),
        )
    if cost is not None:  # the gateway's own: OpenAI has no money headers
        headers += (
            (b"x-gateway-cost-limit", money(cost[0]).encode()),
            (b"x-gateway-cost-remaining", money(cost[1]).encode()),
            (b"x-gateway-cost-reset", duration(cost[2] - now).encode()),
        )
    return headers


def _header_dict(leases: tuple[WindowLease, ...], now: float) -> dict[str, str]:
    """The headers of a 429, as a GatewayError carries them."""
    return {name.decode(): value.decode() for name, value in _headers(leases, now)}


def duration(seconds: float) -> str:
    """OpenAI's reset format: `45s`, `6m0s`, `2h30m0s`."""
    whole = max(math.ceil(seconds), 1)
    if whole < 60:  # a minute's window, the common case
        return f"{whole}s"
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{secs}s"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def _rate_limited(
    caller: str, over: _Budget, leases: tuple[WindowLease, ...], now: float, cost: Counts
) -> GatewayError:
    wait = max(math.ceil(over.resets_at - now), 1)
    headers = {**_header_dict(leases, now), "retry-after": str(wait)}
    if over.kind == "cost":
        return GatewayError(
            429,
            f"You exceeded the {over.what} of caller key {caller}: Limit {money(over.limit)}, Used "
            f"{money(over.used)}, Requested {money(cost.cost)}. Please try again in {duration(over.resets_at - now)}, "
            "when the window starts again, or ask for a higher limit.",
            type="insufficient_quota",
            code="insufficient_quota",
            headers=headers,
        )
    requested = cost.requests if over.kind == "requests" else cost.tokens
    return GatewayError(
        429,
        f"Rate limit reached for caller key {caller} on {over.what}: Limit {over.limit}, Used {over.used}, "
        f"Requested {requested}. Please try again in {duration(over.resets_at - now)}.",
        type=over.kind,
        code="rate_limit_exceeded",
        headers=headers,
    )


def _too_large(caller: str, limits: Limits, cost: Counts, leases: tuple[WindowLease, ...], now: float) -> GatewayError:
    """A call whose reservation alone is more than a token or cost limit: no wait makes it fit."""
    costs = [limit for limit in (limits.cost_per_day, limits.cost_per_month) if limit is not None]
    if costs and cost.cost > min(costs):
        return GatewayError(
            429,
            f"Request too large for caller key {caller}: Limit {money(min(costs))}, Requested {money(cost.cost)} "
            "at its model's price. The prompt, or its max_tokens (max_completion_tokens, max_output_tokens; the "
            "key's reserveOutputTokens when it sets none), must be reduced for it to fit.",
            type="insufficient_quota",
            code="insufficient_quota",
            headers=_header_dict(leases, now),
        )
    limit = min(limit for limit in (limits.tokens_per_minute, limits.tokens_per_day) if limit is not None)
    return GatewayError(
        429,
        f"Request too large for caller key {caller}: Limit {limit} tokens, Requested {cost.tokens}. The prompt, "
        "or its max_tokens (max_completion_tokens, max_output_tokens; the key's reserveOutputTokens when it sets "
        "none), must be reduced for it to fit.",
        type="tokens",
        code="rate_limit_exceeded",
        headers=_header_dict(leases, now),
    )
