"""The failover policy against a fake transport (no sockets), the way httpx tests its client
with a mock transport: selection order and spread, cooldowns, the circuit breaker, budgets."""

from __future__ import annotations

import asyncio
import email.utils
import random
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

import pytest
from multidict import CIMultiDict

from core.config.model import Backend, Breaker, Pool, PoolMember, Strategy
from core.errors import GatewayError
from core.failures import all_benched, client_error
from core.upstream import failover
from core.upstream.failover import PoolError, Pools, Tried
from core.upstream.health import Health, retry_after
from core.upstream.selection import Selector
from core.upstream.transport import (
    BadBody,
    BodyTooLarge,
    ConnectFailed,
    ConnectTimedOut,
    HeadersTimedOut,
    ReadFailed,
    ReadTimedOut,
    TransportError,
)


class FakeAnswer:
    def __init__(self, status: int, headers: Mapping[str, str] | None = None) -> None:
        self.status = status
        self.headers = CIMultiDict(headers or {})
        self.discarded = False
        self.closed = False

    async def read_error(self) -> bytes:
        self.discarded = True
        return b""

    def close(self) -> None:
        self.closed = True


Outcome = FakeAnswer | Exception | float  # a float: seconds before the headers arrive (then a 200)


class FakeTransport:
    """Answers each member from a script; a member without one answers 200."""

    def __init__(self, script: dict[str, list[Outcome]] | None = None) -> None:
        self.script = script or {}
        self.calls: list[str] = []
        self.holding = asyncio.Event()  # set once an answer is held back (a float outcome), for a test to act then

    async def __call__(self, member: PoolMember) -> FakeAnswer:
        self.calls.append(member.model)
        outcomes = self.script.get(member.model) or []
        outcome = outcomes.pop(0) if outcomes else FakeAnswer(200)
        if isinstance(outcome, Exception):
            raise outcome
        if isinstance(outcome, float):
            self.holding.set()
            await asyncio.sleep(outcome)
            return FakeAnswer(200)
        return outcome


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


BACKEND = Backend("g", "d", "2024-10-21", False, "http://127.0.0.1:9/openai/deployments/d", "api-key", ())


DEFAULT_BREAKER = Breaker()


def pool(
    *members: tuple[str, int, int],
    strategy: Strategy = "priority",
    breaker: Breaker = DEFAULT_BREAKER,
    **options: Any,
) -> Pool:
    return Pool(
        strategy=strategy,
        members=tuple(PoolMember(name, BACKEND, priority, weight) for name, priority, weight in members),
        max_attempts=int(options.pop("max_attempts", len(members))),
        breaker=breaker,
        **options,
    )


def upstreams(clock: Clock | None = None, seed: int = 7) -> Pools:
    health = Health(clock or Clock())
    return Pools(health, Selector(health, random.Random(seed)))


def run(ups: Pools, p: Pool, transport: FakeTransport, **options: bool) -> tuple[str, FakeAnswer, Tried]:
    """One pooled call; its failure as the client's error, the way the exchange reports it."""
    tried = Tried()

    async def go() -> failover.Sent[FakeAnswer]:
        return await failover.send(ups, "pool", p, transport, tried, **options)

    try:
        sent = asyncio.run(go())
    except (TransportError, PoolError) as error:
        raise client_error(error, BACKEND.group if tried.attempts else "?") from None
    return sent.member.model, sent.reply, tried


TWO = (("a", 1, 1), ("b", 2, 1))


def test_priority_uses_the_lowest_number_while_it_is_healthy() -> None:
    ups, transport = upstreams(), FakeTransport()
    served = [run(ups, pool(*TWO), transport)[0] for _ in range(20)]
    assert served == ["a"] * 20


def test_priority_ties_are_spread_by_weight() -> None:
    ups = upstreams()
    p = pool(("a", 1, 1), ("b", 1, 3), ("spill", 2, 1))
    counts = Counter(run(ups, p, FakeTransport())[0] for _ in range(4000))
    assert counts["spill"] == 0
    assert 0.70 < counts["b"] / 4000 < 0.80  # 3 in 4


def test_weighted_ignores_priority_and_spreads_by_weight() -> None:
    ups = upstreams()
    p = pool(("a", 1, 1), ("b", 9, 4), strategy="weighted")
    counts = Counter(run(ups, p, FakeTransport())[0] for _ in range(5000))
    assert 0.75 < counts["b"] / 5000 < 0.85  # 4 in 5


def test_round_robin_takes_each_member_in_turn() -> None:
    ups = upstreams()
    p = pool(("a", 1, 1), ("b", 2, 1), ("c", 3, 1), strategy="round-robin")
    assert [run(ups, p, FakeTransport())[0] for _ in range(6)] == ["a", "b", "c", "a", "b", "c"]


def test_most_remaining_prefers_the_member_that_reported_most_tokens() -> None:
    ups = upstreams()
    p = pool(("a", 1, 1), ("b", 1, 1), strategy="most-remaining")
    transport = FakeTransport(
        {
            "a": [FakeAnswer(200, {"x-ratelimit-remaining-tokens": "100"})],
            "b": [FakeAnswer(200, {"x-ratelimit-remaining-tokens": "5000"})],
        }
    )
    assert run(ups, p, transport)[0] == "a"  # neither has reported: config order
    assert run(ups, p, transport)[0] == "b"  # a reported 100; b has not reported yet (plenty)
    assert [run(ups, p, transport)[0] for _ in range(3)] == ["b", "b", "b"]  # 5000 > 100


def test_a_429_fails_over_and_benches_the_member_for_its_retry_after() -> None:
    clock = Clock()
    ups = upstreams(clock)
    throttled = FakeAnswer(429, {"retry-after-ms": "1500", "Retry-After": "2"})
    transport = FakeTransport({"a": [throttled]})
    served, answer, tried = run(ups, pool(*TWO), transport)
    assert (served, answer.status, throttled.discarded) == ("b", 200, True)
    assert tried.failures == ["a:429"] and tried.attempts == 2 and tried.served_by == "b"
    clock.now += 1.4
    assert run(ups, pool(*TWO), transport)[0] == "b"  # still benched: retry-after-ms wins over Retry-After
    clock.now += 0.2
    assert run(ups, pool(*TWO), transport)[0] == "a"


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "3"}, 3.0),
        ({"x-ratelimit-reset-requests": "4"}, 4.0),
        ({"x-ratelimit-reset-tokens": "1m30s"}, 90.0),
        ({"x-ratelimit-reset-requests": "20ms"}, 0.02),
        ({"Retry-After": "soon"}, None),
        ({}, None),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"Retry-After": "0"}, 0.0),
        ({"Retry-After": "0.5"}, 0.5),
        ({"retry-after-ms": "-1", "Retry-After": "2"}, 2.0),  # a negative or infinite hint is no hint
        ({"Retry-After": "inf"}, None),
        ({"Retry-After": "Thu, 01 Jan 1970 00:00:00 GMT"}, None),  # a date gone by names no wait
        ({"Retry-After": "Thu, 01 Jan 1970 00:00:00 GMT", "x-ratelimit-reset-tokens": "4"}, 4.0),
        ({"retry-after-ms": "99999999999999"}, 99999999999.999),  # uncapped here: the pool caps it
        ({"x-ratelimit-reset-tokens": "1m30sx"}, None),  # a duration with anything else is no duration
    ],
)
def test_retry_after_reads_azures_headers(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after(CIMultiDict(headers)) == seconds


def test_a_429_without_any_hint_benches_for_the_pool_cooldown() -> None:
    clock = Clock()
    ups = upstreams(clock)
    p = pool(*TWO, cooldown=5.0)
    run(ups, p, FakeTransport({"a": [FakeAnswer(429)]}))
    clock.now += 4.9
    assert run(ups, p, FakeTransport())[0] == "b"
    clock.now += 0.2
    assert run(ups, p, FakeTransport())[0] == "a"


def test_every_member_benched_is_a_429_with_the_soonest_return() -> None:
    clock = Clock()
    ups = upstreams(clock)
    transport = FakeTransport(
        {"a": [FakeAnswer(429, {"Retry-After": "30"})], "b": [FakeAnswer(429, {"Retry-After": "4"})]}
    )
    with pytest.raises(GatewayError) as caught:
        run(ups, pool(*TWO), transport)
    assert caught.value.status == 429 and caught.value.headers["Retry-After"] == "4"
    clock.now += 1.5
    with pytest.raises(GatewayError) as caught:
        run(ups, pool(*TWO), FakeTransport())  # nobody is even tried
    assert caught.value.headers["Retry-After"] == "3" and caught.value.code == "rate_limit_exceeded"


def test_the_callers_own_error_is_relayed_at_once() -> None:
    transport = FakeTransport({"a": [FakeAnswer(400)]})
    served, answer, _ = run(upstreams(), pool(*TWO), transport)
    assert (served, answer.status, transport.calls) == ("a", 400, ["a"])


def test_the_last_members_failure_is_relayed_when_attempts_run_out() -> None:
    transport = FakeTransport({"a": [FakeAnswer(500)], "b": [FakeAnswer(503)]})
    served, answer, tried = run(upstreams(), pool(*TWO), transport)
    assert (served, answer.status, tried.failures, tried.served_by) == ("b", 503, ["a:500", "b:503"], "b")


def test_max_attempts_bounds_the_members_tried() -> None:
    transport = FakeTransport({"a": [FakeAnswer(500)], "b": [FakeAnswer(500)]})
    p = pool(("a", 1, 1), ("b", 2, 1), ("c", 3, 1), max_attempts=2)
    assert run(upstreams(), p, transport)[1].status == 500 and transport.calls == ["a", "b"]


def test_connection_failures_fail_over() -> None:
    transport = FakeTransport({"a": [ConnectFailed()]})
    assert run(upstreams(), pool(*TWO), transport)[0] == "b"


def test_a_read_timeout_is_not_retried_unless_the_pool_says_so() -> None:
    transport = FakeTransport({"a": [HeadersTimedOut()]})
    with pytest.raises(GatewayError) as caught:
        run(upstreams(), pool(*TWO), transport)
    assert caught.value.status == 504 and transport.calls == ["a"]
    transport = FakeTransport({"a": [HeadersTimedOut()]})
    served, _, tried = run(upstreams(), pool(*TWO, retry_on_timeout=True), transport)
    assert served == "b" and tried.failures == ["a:timeout"]


def test_first_byte_timeout_moves_on_to_the_next_member() -> None:
    transport = FakeTransport({"a": [5.0]})
    served, _, tried = run(upstreams(), pool(*TWO, first_byte_timeout=0.05), transport, streamed=True)
    assert served == "b" and tried.failures == ["a:first-byte-timeout"]


def test_first_byte_timeout_leaves_a_whole_answer_alone_unless_the_pool_says_all() -> None:
    # A non-streamed answer's headers come once it is generated: asking another member then bills twice.
    transport = FakeTransport({"a": [0.2]})
    served, _, tried = run(upstreams(), pool(*TWO, first_byte_timeout=0.05), transport)
    assert served == "a" and tried.failures == []
    transport = FakeTransport({"a": [5.0]})
    served, _, tried = run(upstreams(), pool(*TWO, first_byte_timeout=0.05, first_byte_timeout_for="all"), transport)
    assert served == "b" and tried.failures == ["a:first-byte-timeout"]


def test_an_upload_is_sent_once() -> None:
    transport = FakeTransport({"a": [FakeAnswer(503)]})
    served, answer, _ = run(upstreams(), pool(*TWO), transport, single_shot=True)
    assert (served, answer.status, transport.calls) == ("a", 503, ["a"])


def test_the_breaker_opens_then_lets_one_probe_through_then_closes() -> None:
    clock = Clock()
    ups = upstreams(clock)
    p = pool(*TWO, breaker=Breaker(minimum_requests=3, window=10.0, trip=30.0))
    for _ in range(3):
        assert run(ups, p, FakeTransport({"a": [FakeAnswer(500)]}))[0] == "b"
    transport = FakeTransport()
    run(ups, p, transport)
    assert transport.calls == ["b"]  # open: a is not even tried
    clock.now += 30.0
    assert ups.health.available("a", clock.now)
    ups.health.start("a")  # a probe under way: nobody else goes to a meanwhile
    assert not ups.health.available("a", clock.now)
    ups.health.end_probe("a")
    assert run(ups, p, FakeTransport({"a": [FakeAnswer(500)]}))[0] == "b"  # the probe failed: open again
    transport = FakeTransport()
    run(ups, p, transport)
    assert transport.calls == ["b"]
    clock.now += 30.0
    assert run(ups, p, FakeTransport())[0] == "a"  # the probe passed: closed
    assert run(ups, p, FakeTransport({"a": [FakeAnswer(500)]}))[0] == "b"  # one failure does not open it
    assert run(ups, p, FakeTransport())[0] == "a"


def test_the_breaker_counts_only_failures_within_its_window() -> None:
    clock = Clock()
    ups = upstreams(clock)
    p = pool(*TWO, breaker=Breaker(minimum_requests=2, window=5.0, trip=30.0))
    run(ups, p, FakeTransport({"a": [FakeAnswer(500)]}))
    clock.now += 6.0
    run(ups, p, FakeTransport({"a": [FakeAnswer(500)]}))
    assert run(ups, p, FakeTransport())[0] == "a"


def test_accept_retry_after_keeps_the_breaker_open_longer() -> None:
    clock = Clock()
    ups = upstreams(clock)
    p = pool(*TWO, breaker=Breaker(minimum_requests=1, window=5.0, trip=2.0, accept_retry_after=True))
    run(ups, p, FakeTransport({"a": [FakeAnswer(503, {"Retry-After": "20"})]}))
    clock.now += 19.0
    assert run(ups, p, FakeTransport())[0] == "b"
    clock.now += 1.5
    assert run(ups, p, FakeTransport())[0] == "a"


class SlowToDiscard(FakeAnswer):
    async def read_error(self) -> bytes:
        await asyncio.sleep(0.01)  # reading a failed answer's body yields to other requests
        return await super().read_error()


def test_only_one_request_probes_a_half_open_member() -> None:
    clock = Clock()
    ups = upstreams(clock)
    p = pool(("c", 1, 1), ("a", 2, 1), ("b", 3, 1), breaker=Breaker(minimum_requests=1, window=10.0, trip=5.0))
    ups.health.failed("a", p.breaker, None)  # a's breaker is open
    clock.now += 5.0  # and half-open now: one probe may go
    transport = FakeTransport({"c": [SlowToDiscard(500), SlowToDiscard(500)]})

    async def two_at_once() -> None:
        await asyncio.gather(*(failover.send(ups, "pool", p, transport, Tried()) for _ in range(2)))

    asyncio.run(two_at_once())
    assert transport.calls.count("a") == 1 and transport.calls.count("b") == 1


def test_the_time_budget_bounds_every_attempt_together() -> None:
    transport = FakeTransport({"a": [0.5]})
    with pytest.raises(GatewayError) as caught:
        run(upstreams(), pool(*TWO, time_budget=0.05, retry_on_timeout=True), transport)
    assert caught.value.status == 504 and transport.calls == ["a"]  # no attempt starts once it is spent
    transport = FakeTransport({"a": [FakeAnswer(503)], "b": [0.5]})
    with pytest.raises(GatewayError):
        run(upstreams(), pool(*TWO, time_budget=0.05, first_byte_timeout=1.0), transport)
    assert transport.calls == ["a", "b"]


def test_retry_after_reads_a_date_as_the_seconds_until_it() -> None:
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    seconds = retry_after(CIMultiDict({"Retry-After": in_a_minute}))
    assert seconds is not None and 55 < seconds <= 60


def test_most_remaining_breaks_a_token_tie_by_requests() -> None:
    ups = upstreams()
    p = pool(("a", 1, 1), ("b", 1, 1), ("c", 1, 1), strategy="most-remaining")
    ups.health.succeeded("a", {"x-ratelimit-remaining-tokens": "100", "x-ratelimit-remaining-requests": "5"})
    ups.health.succeeded("b", {"x-ratelimit-remaining-tokens": "100", "x-ratelimit-remaining-requests": "9"})
    ups.health.succeeded("c", {"x-ratelimit-remaining-tokens": "100"})  # it answered with no request count: none
    assert [m.model for m in ups.selector.order("p", p, 1000.0)] == ["b", "a", "c"]


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (ConnectTimedOut(), 504, "The upstream for group `g` did not answer in time."),
        (HeadersTimedOut(), 504, "The upstream for group `g` did not answer in time."),
        (ReadTimedOut(), 504, "The upstream for group `g` did not answer in time."),
        (
            BodyTooLarge(10),
            502,
            (
                "The upstream for group `g` answered with more than the gateway's limit of 10 bytes "
                "(gateway.maxResponseBytes)."
            ),
        ),
        (BadBody("sent garbage"), 502, "The upstream for group `g` sent garbage."),
        (ReadFailed(), 502, "The upstream for group `g` closed the connection before its answer was complete."),
        (ConnectFailed(), 502, "The upstream for group `g` could not be reached."),
    ],
)
def test_each_transport_failure_is_an_error_naming_the_group(error: TransportError, status: int, message: str) -> None:
    found = client_error(error, "g")
    assert (found.status, found.message) == (status, message)


def test_when_every_member_fails_to_connect_the_error_names_the_group() -> None:
    transport = FakeTransport({"a": [ConnectFailed()], "b": [ConnectFailed()]})
    with pytest.raises(GatewayError) as caught:
        run(upstreams(), pool(*TWO), transport)
    assert (caught.value.status, caught.value.message) == (502, "The upstream for group `g` could not be reached.")


def test_a_time_budget_spent_before_any_attempt_is_a_504() -> None:
    with pytest.raises(GatewayError) as caught:
        run(upstreams(), pool(*TWO, time_budget=0.0), FakeTransport())
    assert (caught.value.status, caught.value.message) == (
        504,
        "The upstream for group `?` did not answer within the pool's time budget.",
    )


def test_all_benched_asks_to_retry_when_the_first_member_returns() -> None:
    error = all_benched("gpt-4o", 2.5)
    assert (error.status, error.type, error.code, error.headers) == (
        429,
        "requests",
        "rate_limit_exceeded",
        {"Retry-After": "3", "retry-after-ms": "2500"},
    )
    assert error.message == (
        "Every upstream for model `gpt-4o` is cooling down after rate limits or failures. Please retry after 3 seconds."
    )
    assert all_benched("gpt-4o", 0.0).headers == {"Retry-After": "1", "retry-after-ms": "1"}


def test_all_benched_does_not_round_clock_noise_up() -> None:
    # A 200 ms hint measured on a float clock: 1000.2 - 1000 is 0.20000000000004547.
    assert all_benched("gpt-4o", 1000.2 - 1000).headers == {"Retry-After": "1", "retry-after-ms": "200"}
    assert all_benched("gpt-4o", 1002.0 - 1000.0000000001).headers["Retry-After"] == "2"


def test_members_benched_for_less_than_a_second_say_so_in_milliseconds() -> None:
    transport = FakeTransport(
        {"a": [FakeAnswer(429, {"retry-after-ms": "250"})], "b": [FakeAnswer(429, {"retry-after-ms": "500"})]}
    )
    with pytest.raises(GatewayError) as caught:
        run(upstreams(), pool(*TWO), transport)
    assert caught.value.headers == {"Retry-After": "1", "retry-after-ms": "250"}  # exact on the test clock


def test_a_failure_exactly_one_window_old_no_longer_counts() -> None:
    clock = Clock()
    ups = upstreams(clock)
    p = pool(*TWO, breaker=Breaker(minimum_requests=2, window=5.0, trip=30.0))
    run(ups, p, FakeTransport({"a": [FakeAnswer(500)]}))
    clock.now += 5.0
    run(ups, p, FakeTransport({"a": [FakeAnswer(500)]}))
    assert run(ups, p, FakeTransport())[0] == "a"


@pytest.mark.parametrize("probing", [False, True], ids=["closed", "half-open"])
def test_accept_retry_after_holds_a_tripped_breaker_open_without_a_cooldown(probing: bool) -> None:
    clock = Clock()
    health = Health(clock)
    breaker = Breaker(minimum_requests=1, window=5.0, trip=2.0, accept_retry_after=True)
    if probing:
        health.failed("a", breaker, None)
        clock.now += 2.0
        assert health.start("a")
    health.failed("a", breaker, None, retry_after=20.0)
    assert not health.available("a", clock.now + 19.9) and health.available("a", clock.now + 20.0)
    assert health.usable("a", clock.now) and health.returns_at("a") == 0.0  # no cooldown: its breaker alone


def test_a_member_never_heard_of_returns_at_once() -> None:
    assert Health(Clock()).returns_at("nobody") == 0.0


def test_round_robin_keeps_each_pools_turns_apart() -> None:
    ups = upstreams()
    p = pool(("a", 1, 1), ("b", 2, 1), strategy="round-robin")

    async def served(pool_id: str) -> str:
        sent = await failover.send(ups, pool_id, p, FakeTransport(), Tried())
        return sent.member.model

    assert [asyncio.run(served(pool_id)) for pool_id in ("one", "two", "one")] == ["a", "a", "b"]


def test_connection_failures_count_towards_the_members_breaker() -> None:
    ups = upstreams()
    p = pool(*TWO, breaker=Breaker(minimum_requests=1, window=10.0, trip=30.0))
    run(ups, p, FakeTransport({"a": [ConnectFailed()]}))
    transport = FakeTransport()
    assert run(ups, p, transport)[0] == "b" and transport.calls == ["b"]


def test_first_byte_timeouts_on_every_member_are_a_504() -> None:
    transport = FakeTransport({"a": [5.0], "b": [5.0]})
    with pytest.raises(GatewayError) as caught:
        run(upstreams(), pool(*TWO, first_byte_timeout=0.05), transport, streamed=True)
    assert (caught.value.status, caught.value.message) == (504, "The upstream for group `g` did not answer in time.")


def test_most_remaining_counts_a_member_that_only_failed_as_having_plenty() -> None:
    ups = upstreams()
    p = pool(("a", 1, 1), ("b", 1, 1), strategy="most-remaining")
    assert run(ups, p, FakeTransport({"a": [FakeAnswer(500)]}))[0] == "b"
    assert run(ups, p, FakeTransport())[0] == "a"  # neither reported a count: config order


def test_a_cancelled_request_ends_its_probe_and_closes_the_failure_it_held() -> None:
    clock = Clock()
    ups = upstreams(clock)
    p = pool(("c", 1, 1), ("a", 2, 1), breaker=Breaker(minimum_requests=1, window=10.0, trip=5.0))
    ups.health.failed("a", p.breaker, None)
    clock.now += 5.0  # a is half-open
    failed = FakeAnswer(500)
    transport = FakeTransport({"c": [failed], "a": [5.0]})

    async def cancelled() -> None:
        task = asyncio.create_task(failover.send(ups, "pool", p, transport, Tried()))
        await transport.holding.wait()
        assert transport.calls == ["c", "a"]
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(cancelled())
    assert failed.closed and ups.health.available("a", clock.now)  # the next request probes


def test_the_breaker_judges_a_failure_rate_once_the_window_holds_enough_attempts() -> None:
    ups = upstreams()
    p = pool(*TWO, breaker=Breaker(failure_percent=50, minimum_requests=4, window=60.0, trip=30.0))
    for outcome in (500, 200, 200, 200, 500):  # 2 failures in 5 attempts: 40%, under 50%
        run(ups, p, FakeTransport({"a": [FakeAnswer(outcome)]}))
    assert run(ups, p, FakeTransport())[0] == "a"  # 2 in 6
    for _ in range(2):  # 4 failures in 8 attempts: 50%
        run(ups, p, FakeTransport({"a": [FakeAnswer(500)]}))
    transport = FakeTransport()
    assert run(ups, p, transport)[0] == "b" and transport.calls == ["b"]


def test_failures_alone_under_the_minimum_volume_do_not_open_it() -> None:
    ups = upstreams()
    p = pool(*TWO, breaker=Breaker(minimum_requests=10))
    for _ in range(9):
        run(ups, p, FakeTransport({"a": [FakeAnswer(500)]}))
    assert run(ups, p, FakeTransport())[0] == "a"


def test_when_every_breaker_is_open_the_members_are_tried_anyway() -> None:
    clock = Clock()
    ups = upstreams(clock)
    p = pool(*TWO, breaker=Breaker(minimum_requests=1, trip=30.0))
    served, answer, _ = run(ups, p, FakeTransport({"a": [FakeAnswer(500)], "b": [FakeAnswer(500)]}))
    assert (served, answer.status) == ("b", 500)  # both breakers open now
    assert not ups.health.available("a", clock.now) and not ups.health.available("b", clock.now)
    transport = FakeTransport()
    assert run(ups, p, transport)[0] == "a" and transport.calls == ["a"]  # panic: tried, and it closes a's breaker
    assert ups.health.available("a", clock.now) and not ups.health.available("b", clock.now)


def test_a_cooldown_is_absolute_even_in_panic() -> None:
    clock = Clock()
    ups = upstreams(clock)
    p = pool(*TWO, breaker=Breaker(minimum_requests=1, trip=30.0))
    ups.health.failed("a", p.breaker, None)  # a's breaker is open
    ups.health.throttled("b", 5.0)  # b is cooling down
    transport = FakeTransport()
    assert run(ups, p, transport)[0] == "a"  # the breaker gives way; the cooldown does not
    ups.health.failed("a", p.breaker, 5.0)
    with pytest.raises(GatewayError) as caught:
        run(ups, p, FakeTransport())
    assert caught.value.status == 429
