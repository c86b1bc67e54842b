"""One pooled call: try members in the selection's order until one answers, before any
byte reaches the client.

A failed attempt moves on when the failure is the upstream's (unreachable, reset, 408, 429,
5xx, slower than firstByteTimeout, or a read timeout where the pool allows it); anything else
is the caller's answer. Attempts are bounded by maxAttempts and the pool's time budget. When
every member is cooling down (429s, Retry-After) the call ends in AllBenched (the caller's 429,
with the soonest return), never in a 5xx; open breakers alone never end it (health.py's panic rule).

The loop knows nothing of the call it serves: it is handed an attempt function and a `Tried`
it fills in, and returns the member that answered with its answer, or raises.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Generic, Protocol, TypeVar

from core.config.model import Pool, PoolMember
from core.upstream.health import Health, retry_after
from core.upstream.retry import is_retryable_status
from core.upstream.selection import Selector
from core.upstream.transport import ConnectFailed, TransportError


class Reply(Protocol):
    """What the loop needs of an upstream answer whose headers have arrived."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def read_error(self) -> bytes: ...

    def close(self) -> None: ...


R = TypeVar("R", bound=Reply)


class Pools:
    """The process's view of every pool member: health and selection (per instance, no store)."""

    def __init__(self, health: Health | None = None, selector: Selector | None = None) -> None:
        self.health = health or Health()
        self.selector = selector or Selector(self.health)


class Tried:
    """What one pooled call tried, in order: filled in by the loop, read by whoever logs the call."""

    __slots__ = ("attempts", "failures", "served_by")

    def __init__(self) -> None:
        self.attempts = 0
        self.failures: list[str] = []  # "member:status", member:unreachable / :timeout / :first-byte-timeout
        self.served_by: str | None = None  # the member whose answer the caller gets


class PoolError(Exception):
    """A pooled call that ends without an answer to relay."""


class AllBenched(PoolError):
    """Every member is cooling down; `seconds` until the first returns."""

    def __init__(self, pool_id: str, seconds: float) -> None:
        super().__init__(pool_id)
        self.pool_id = pool_id
        self.seconds = seconds


class OutOfTime(PoolError):
    """The pool's time budget ran out before a member answered."""


class FirstByteTimedOut(PoolError):
    """The last member tried took longer than the pool's firstByteTimeout to send its headers."""


class Sent(Generic[R]):
    """The member whose answer the caller gets, and that answer."""

    __slots__ = ("member", "reply")

    def __init__(self, member: PoolMember, reply: R) -> None:
        self.member = member
        self.reply = reply


async def send(
    pools: Pools,
    pool_id: str,
    pool: Pool,
    attempt: Callable[[PoolMember], Awaitable[R]],
    tried: Tried,
    *,
    single_shot: bool = False,
    streamed: bool = False,
) -> Sent[R]:
    """The member that answered and its answer (possibly the last member's failure, relayed as is).
    Raises AllBenched, OutOfTime or the last attempt's TransportError.
    `single_shot`: the body can be sent once (a streamed upload), so there is no second attempt.
    `streamed`: the answer is an event stream, whose headers come with its first event; firstByteTimeout
    bounds only those unless the pool says `all` (a whole answer's headers come once it is generated)."""
    health, loop = pools.health, asyncio.get_running_loop()
    first_byte = pool.first_byte_timeout if streamed or pool.first_byte_timeout_for == "all" else None
    budget_ends = None if pool.time_budget is None else loop.time() + pool.time_budget
    max_attempts = 1 if single_shot else pool.max_attempts
    names: set[str] = set()
    last: Sent[R] | Exception | None = None
    while len(names) < max_attempts and (budget_ends is None or loop.time() < budget_ends):
        candidates = [m for m in pools.selector.order(pool_id, pool, health.clock()) if m.model not in names]
        if not candidates:
            break
        member = candidates[0]
        names.add(member.model)
        tried.attempts = len(names)
        probe = health.start(member.model)  # before any await: no other request may pick a member being probed
        try:
            if isinstance(last, Sent):
                await last.reply.read_error()  # a failure nobody will see: its connection goes back to the pool
            reply = await _timed(attempt(member), first_byte, budget_ends, loop.time())
        except (TransportError, FirstByteTimedOut, OutOfTime) as error:
            health.failed(member.model, pool.breaker, None)
            tried.failures.append(f"{member.model}:{_label(error)}")
            last = error
            if isinstance(error, FirstByteTimedOut):
                continue
            if isinstance(error, OutOfTime):
                break
            if isinstance(error, ConnectFailed) or pool.retry_on_timeout:
                continue
            break  # a read timeout on a sent request: it may run, and be billed, upstream
        except BaseException:  # cancelled: the client went away, or a deadline passed
            if probe:
                health.end_probe(member.model)  # the next request probes
            if isinstance(last, Sent):
                last.reply.close()
            raise
        if not is_retryable_status(reply.status):
            health.succeeded(member.model, reply.headers, pool.breaker)
            tried.served_by = member.model
            return Sent(member, reply)
        hint = retry_after(reply.headers)
        if hint is not None:
            hint = min(hint, pool.max_cooldown)  # an upstream may ask for years: nobody waits past the cap
        if reply.status == 429:  # busy, not broken: a cooldown, never a breaker failure
            health.throttled(member.model, min(pool.cooldown, pool.max_cooldown) if hint is None else hint)
        else:
            health.failed(member.model, pool.breaker, hint, hint)
        tried.failures.append(f"{member.model}:{reply.status}")
        last = Sent(member, reply)
    return _give_up(pools, pool_id, pool, last, tried)


async def _timed(work: Awaitable[R], first_byte: float | None, budget_ends: float | None, now: float) -> R:
    """`work` within `first_byte` (then the next member) and the time budget (then the end)."""
    budget = None if budget_ends is None else budget_ends - now
    if first_byte is None and budget is None:
        return await work
    if budget is not None and (first_byte is None or budget <= first_byte):
        try:
            async with asyncio.timeout(budget):
                return await work
        except TimeoutError:
            raise OutOfTime() from None
    try:
        async with asyncio.timeout(first_byte):
            return await work
    except TimeoutError:
        raise FirstByteTimedOut() from None


def _label(error: Exception) -> str:
    if isinstance(error, FirstByteTimedOut):
        return "first-byte-timeout"
    return "unreachable" if isinstance(error, ConnectFailed) else "timeout"


def _give_up(pools: Pools, pool_id: str, pool: Pool, last: Sent[R] | Exception | None, tried: Tried) -> Sent[R]:
    health = pools.health
    now = health.clock()
    if all(not health.usable(member.model, now) for member in pool.members):  # all cooling down
        if isinstance(last, Sent):
            last.reply.close()
        soonest = min(health.returns_at(member.model) for member in pool.members)
        raise AllBenched(pool_id, max(soonest - now, 0.0))
    if isinstance(last, Sent):
        tried.served_by = last.member.model
        return last  # the last member's own failure, relayed as the caller's answer
    if last is None:  # the time budget ran out before any attempt
        raise OutOfTime()
    raise last
