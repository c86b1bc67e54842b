"""One pooled call: try members in the selection's order until one answers, before any
byte reaches the client.

A failed attempt moves on when the failure is the upstream's (unreachable, reset, 408, 429,
5xx, slower than firstByteTimeout, or a read timeout where the pool allows it); anything else
is the caller's answer. Attempts are bounded by maxAttempts and the pool's time budget. When
every member is benched the caller gets a 429 with the soonest return as Retry-After, never a 5xx.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol

from core.accesslog import AccessRecord
from core.config.model import Pool, PoolMember
from core.errors import GatewayError, truncated, upstream_timeout
from core.transport import ConnectFailed, HeadersTimedOut, TransportError
from core.upstream.errors import gateway_error
from core.upstream.health import Health, retry_after
from core.upstream.retry import is_retryable_status
from core.upstream.selection import Selector


class Answer(Protocol):
    """What the loop needs of an upstream answer whose headers have arrived."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]: ...

    async def read_error(self) -> bytes: ...

    def close(self) -> None: ...


Attempt = Callable[[PoolMember], Awaitable[Answer]]


class Upstreams:
    """The process's view of every pool member: health and selection (per instance, no store)."""

    def __init__(self, health: Health | None = None, selector: Selector | None = None) -> None:
        self.health = health or Health()
        self.selector = selector or Selector(self.health)


async def send(
    upstreams: Upstreams,
    pool_id: str,
    pool: Pool,
    attempt: Attempt,
    record: AccessRecord,
    *,
    single_shot: bool = False,
) -> tuple[PoolMember, Answer]:
    """The member that answered and its answer (possibly the last member's failure, relayed as is).
    `single_shot`: the body can be sent once (a streamed upload), so there is no second attempt."""
    health, loop = upstreams.health, asyncio.get_running_loop()
    budget_ends = None if pool.time_budget is None else loop.time() + pool.time_budget
    max_attempts = 1 if single_shot else pool.max_attempts
    tried: set[str] = set()
    last: tuple[PoolMember, Answer] | TransportError | None = None
    while len(tried) < max_attempts and (budget_ends is None or loop.time() < budget_ends):
        candidates = [m for m in upstreams.selector.order(pool_id, pool, health.clock()) if m.model not in tried]
        if not candidates:
            break
        member = candidates[0]
        tried.add(member.model)
        record.attempts = len(tried)
        record.group = member.backend.group
        probe = health.start(member.model)  # before any await: no other request may pick a member being probed
        try:
            if isinstance(last, tuple):
                await last[1].read_error()  # a failure nobody will see: its connection goes back to the pool
            answer = await _timed(attempt(member), pool, budget_ends, loop.time())
        except (TransportError, _FirstByteTimeout) as error:
            health.failed(member.model, pool.breaker, None)
            _note_failure(record, f"{member.model}:{_label(error)}")
            if isinstance(error, _FirstByteTimeout):
                last = HeadersTimedOut()
                continue
            last = error
            if isinstance(error, ConnectFailed) or pool.retry_on_timeout:
                continue
            break  # a read timeout on a sent request: it may run, and be billed, upstream
        except BaseException:  # cancelled: the client went away, or a deadline passed
            if probe:
                health.end_probe(member.model)  # the next request probes
            if isinstance(last, tuple):
                last[1].close()
            raise
        if not is_retryable_status(answer.status):
            health.succeeded(member.model, answer.headers)
            record.member = member.model
            return member, answer
        hint = retry_after(answer.headers)
        cooldown = pool.cooldown if answer.status == 429 and hint is None else hint
        health.failed(member.model, pool.breaker, cooldown, hint)
        _note_failure(record, f"{member.model}:{answer.status}")
        last = (member, answer)
    return _give_up(upstreams, pool_id, pool, last, record)


def _note_failure(record: AccessRecord, failure: str) -> None:
    if record.failed is None:
        record.failed = []
    record.failed.append(failure)


class _FirstByteTimeout(Exception):
    """A member took longer than the pool's firstByteTimeout to send its headers."""


async def _timed(work: Awaitable[Answer], pool: Pool, budget_ends: float | None, now: float) -> Answer:
    """`work` within firstByteTimeout (then the next member) and the time budget (then a 504)."""
    first_byte = pool.first_byte_timeout
    budget = None if budget_ends is None else budget_ends - now
    if first_byte is None and budget is None:
        return await work
    if budget is not None and (first_byte is None or budget <= first_byte):
        try:
            async with asyncio.timeout(budget):
                return await work
        except TimeoutError:
            raise HeadersTimedOut() from None
    try:
        async with asyncio.timeout(first_byte):
            return await work
    except TimeoutError:
        raise _FirstByteTimeout() from None


def _label(error: Exception) -> str:
    if isinstance(error, _FirstByteTimeout):
        return "first-byte-timeout"
    return "timeout" if isinstance(error, HeadersTimedOut) else "unreachable"


def _give_up(
    upstreams: Upstreams,
    pool_id: str,
    pool: Pool,
    last: tuple[PoolMember, Answer] | TransportError | None,
    record: AccessRecord,
) -> tuple[PoolMember, Answer]:
    health = upstreams.health
    now = health.clock()
    if all(not health.available(member.model, now) for member in pool.members):
        if isinstance(last, tuple):
            last[1].close()
        soonest = min(health.returns_at(member.model) for member in pool.members)
        raise all_benched(pool_id, max(soonest - now, 0.0))
    if isinstance(last, tuple):
        record.member = last[0].model
        return last  # the last member's own failure, relayed as the caller's answer
    if last is None:  # the time budget ran out before any attempt
        raise upstream_timeout(record.group or "?", "did not answer within the pool's time budget")
    raise gateway_error(last, record.group or "?")


def all_benched(pool_id: str, seconds: float) -> GatewayError:
    # Rounded to the microsecond first: float clock noise (1000.2 - 1000 = 0.20000000000004547)
    # must not turn a 200 ms hint into 201.
    milliseconds = max(math.ceil(round(seconds * 1000, 3)), 1)
    wait = max(math.ceil(milliseconds / 1000), 1)
    return GatewayError(
        429,
        f"Every upstream for model `{truncated(pool_id)}` is cooling down after rate limits or failures. "
        f"Please retry after {wait} seconds.",
        type="requests",
        code="rate_limit_exceeded",
        headers={"Retry-After": str(wait), "retry-after-ms": str(milliseconds)},
    )
