"""What a Budgets object keeps between calls: its windows line up with UTC minutes and days; a store that comes
back is logged once, and the next outage again; a reload that changes or removes a key's limits while its calls
are in flight settles them where they were counted."""

from __future__ import annotations

import asyncio
import logging
import math
import re
import time
from collections.abc import Iterator

import orjson
import pytest
from azure.data.tables import TableClient
from hypothesis import example, given, settings
from hypothesis import strategies as st

from core.auth import Caller
from core.budgets import LEASE_WAIT_SECONDS, Budgets, Reservation, day_window, minute_window, month_window
from core.config.model import CallerKey, Limits
from core.errors import GatewayError
from core.leases import IDLE_SECONDS
from core.models.prices import money
from core.usage_table import DAY_ROW, MINUTE_ROW, Counts, TableAddress, UsageTable
from tests.support.azurite import AzuriteTable
from tests.support.held_threads import HeldThreads, quiet
from tests.support.silent_store import SilentStore

# 2023-11-14T22:13:20Z, and moments around it: none on a minute's edge, nor on a multiple of another period.
MOMENTS = [1_700_000_000.0, 1_700_000_030.5, 1_700_000_059.999, 1_700_000_061.0, 1_700_003_599.25, 1_699_920_001.0]


def caller(limits: Limits | None) -> Caller:
    return Caller("alice", CallerKey("alice", "alice-key", limits=limits), "alice-key")


async def reserve(
    budgets: Budgets, caller: Caller, tokens: int, micros: int = 0
) -> tuple[Reservation | None, dict[str, str]]:
    """Budgets.reserve, its headers as text."""
    reservation, headers = await budgets.reserve(caller, tokens, micros)
    return reservation, {name.decode(): value.decode() for name, value in headers}


@pytest.mark.parametrize("now", MOMENTS)
def test_windows_are_utc_minutes_and_days(now: float) -> None:
    row, ends = minute_window(now)
    assert row == time.strftime(MINUTE_ROW, time.gmtime(now))
    assert ends % 60 == 0 and ends - 60 <= now < ends
    day, day_ends = day_window(now)
    assert day == time.strftime(DAY_ROW, time.gmtime(now))
    assert day_ends % 86400 == 0 and day_ends - 86400 <= now < day_ends


@pytest.fixture
def tables() -> Iterator[AzuriteTable]:
    with AzuriteTable() as service:
        yield service


def test_a_store_that_comes_back_is_logged_once_and_its_next_outage_again(
    tables: AzuriteTable, caplog: pytest.LogCaptureFixture
) -> None:
    budgets = Budgets(UsageTable(TableAddress("usagelog", connection_string=tables.connection_string), None))
    alice = caller(Limits(tokens_per_minute=100_000))

    async def call_and_sync() -> None:
        reservation, _ = await reserve(budgets, alice, 10)
        assert reservation is not None
        budgets.settle(reservation, Counts(1, 5))  # the use changed: the sync writes it
        await budgets.sync()

    def logged(text: str) -> int:
        return sum(record.getMessage().startswith(text) for record in caplog.records)

    async def scenario() -> None:
        await call_and_sync()
        tables.stop()
        await call_and_sync()
        await call_and_sync()
        assert (logged("usage table unreachable"), logged("usage table reachable again")) == (1, 0)
        tables.start()
        await call_and_sync()
        await call_and_sync()
        assert (logged("usage table unreachable"), logged("usage table reachable again")) == (1, 1)
        tables.stop()
        await call_and_sync()
        assert (logged("usage table unreachable"), logged("usage table reachable again")) == (2, 1)
        await budgets.aclose()

    with caplog.at_level(logging.WARNING, logger="aoai_gateway"):
        asyncio.run(scenario())
    messages = {record.getMessage() for record in caplog.records}
    assert "usage table reachable again: counts are shared again" in messages
    down = next(message for message in messages if message.startswith("usage table unreachable"))
    assert re.fullmatch(
        r"usage table unreachable \(.+\): admitting against the last shared counts until it answers", down
    )
    assert "(None)" not in down  # names what failed


def test_a_clean_shutdown_writes_what_was_used_and_hands_back_what_is_held(tables: AzuriteTable) -> None:
    address = TableAddress("usageflush", connection_string=tables.connection_string)
    moment = time.time()
    budgets = Budgets(UsageTable(address, None), clock=lambda: moment)

    async def scenario() -> None:
        reservation, _ = await reserve(budgets, caller(Limits(tokens_per_minute=100_000)), 500)
        assert reservation is not None
        budgets.settle(reservation, Counts(1, 42))
        await budgets.aclose()

    asyncio.run(scenario())
    entity = TableClient.from_connection_string(tables.connection_string, "usageflush").list_entities()
    (shares,) = [orjson.loads(e["shares"]) for e in entity]
    assert list(shares.values()) == [[0, 0, 1, 42, round(moment, 3), 0, 0]]  # no claim held; the use; when; no cost


def test_a_call_no_wait_can_make_fit_is_told_so_in_openais_terms() -> None:
    budgets = Budgets(None, clock=lambda: MOMENTS[1])
    with pytest.raises(GatewayError) as refused:
        asyncio.run(reserve(budgets, caller(Limits(tokens_per_minute=500, tokens_per_day=400)), 450))
    error = refused.value
    assert (error.status, error.type, error.code) == (429, "tokens", "rate_limit_exceeded")
    assert error.message == (
        "Request too large for caller key alice: Limit 400 tokens, Requested 450. The prompt, or its max_tokens "
        "(max_completion_tokens, max_output_tokens; the key's reserveOutputTokens when it sets none), must be "
        "reduced for it to fit."
    )
    assert error.headers["x-ratelimit-limit-tokens"] == "400" and error.headers["x-ratelimit-remaining-tokens"] == "400"


def test_a_reload_that_removes_a_keys_limits_mid_call_settles_without_error() -> None:
    async def scenario() -> None:
        budgets = Budgets(None, clock=lambda: MOMENTS[1])  # one window throughout
        limited = caller(Limits(tokens_per_minute=1000))
        reservation, _ = await reserve(budgets, limited, 500)
        assert reservation is not None
        budgets.configure((CallerKey("alice", "alice-key"),))  # the reload: alice has no limits any more
        budgets.settle(reservation, Counts(1, 20))  # the call in flight ends
        assert await reserve(budgets, caller(None), 500) == (None, {})
        budgets.configure((CallerKey("alice", "alice-key", limits=Limits(tokens_per_minute=1000)),))
        _, headers = await reserve(budgets, limited, 100)  # limited again: a fresh window, the call fits
        assert int(headers["x-ratelimit-remaining-tokens"]) >= 1000 - 20 - 100

    asyncio.run(scenario())


def test_a_reload_that_changes_a_keys_limits_mid_call_settles_the_call_in_the_new_limits() -> None:
    async def scenario() -> None:
        budgets = Budgets(None, clock=lambda: MOMENTS[1])  # one window throughout
        reservation, _ = await reserve(budgets, caller(Limits(tokens_per_minute=1000)), 500)
        assert reservation is not None
        raised = caller(Limits(tokens_per_minute=2000))  # the reload: alice may spend more
        budgets.configure((raised.key,))  # type: ignore[arg-type]
        _, during = await reserve(budgets, raised, 10)
        assert during["x-ratelimit-remaining-tokens"] == str(2000 - 500 - 10)  # what was reserved stays reserved
        budgets.settle(reservation, Counts(1, 20))  # the first call ends: it cost 20 tokens, not 500
        _, after = await reserve(budgets, raised, 10)
        assert after["x-ratelimit-remaining-tokens"] == str(2000 - 20 - 10 - 10)

    asyncio.run(scenario())


def test_a_store_too_slow_to_grant_a_lease_admits_after_the_wait_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    """A store that takes the connection and never answers: the call waits LEASE_WAIT_SECONDS for its lease, no
    longer, then is admitted against what was left (fail open), and the log says the store was too busy."""
    with SilentStore() as store, caplog.at_level(logging.WARNING, logger="aoai_gateway"):
        budgets = Budgets(UsageTable(TableAddress("usageslow", connection_string=store.connection_string), None))
        alice = caller(Limits(requests_per_minute=10))

        async def scenario() -> tuple[float, dict[str, str], dict[str, str]]:
            started = time.monotonic()
            _, first = await reserve(budgets, alice, 0)
            waited = time.monotonic() - started
            _, second = await reserve(budgets, alice, 0)  # the claim taken locally holds it: no second wait
            return waited, first, second

        waited, first, second = asyncio.run(scenario())
    assert LEASE_WAIT_SECONDS - 0.1 <= waited < LEASE_WAIT_SECONDS + 1.5
    assert (first["x-ratelimit-remaining-requests"], second["x-ratelimit-remaining-requests"]) == ("9", "8")
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == (
        f"usage table too busy with other instances' writes (no lease within {LEASE_WAIT_SECONDS:g} s): "
        "admitting against the last shared counts until it answers"
    )


def test_a_spent_limit_is_refused_before_the_body_is_read_in_openais_terms() -> None:
    budgets = Budgets(None, clock=lambda: MOMENTS[1])  # 50.5 s into the minute: it resets in 9.5 s
    alice = caller(Limits(requests_per_minute=2, tokens_per_minute=1000))
    for _ in range(2):
        budgets.check(alice)
        asyncio.run(reserve(budgets, alice, 100))
    budgets.check(caller(None))  # a key without limits is never refused
    with pytest.raises(GatewayError) as refused:
        budgets.check(alice)
    error = refused.value
    assert (error.status, error.type, error.code) == (429, "requests", "rate_limit_exceeded")
    assert error.message == (
        "Rate limit reached for caller key alice on requests per min (RPM): Limit 2, Used 2, Requested 1. "
        "Please try again in 10s."
    )
    assert error.headers == {
        "x-ratelimit-limit-requests": "2",
        "x-ratelimit-remaining-requests": "0",
        "x-ratelimit-reset-requests": "10s",
        "x-ratelimit-limit-tokens": "1000",
        "x-ratelimit-remaining-tokens": "800",
        "x-ratelimit-reset-tokens": "10s",
        "retry-after": "10",
    }


def test_a_spent_token_limit_is_refused_before_the_body_asking_for_no_tokens_yet() -> None:
    """Before its body is read a call asks for no tokens of a spent token limit (its 429 says `Requested 0`), and
    a window that ends within a second still asks the caller to wait a whole second, never 0."""
    budgets = Budgets(None, clock=lambda: 1_700_000_039.75)  # a quarter second before 22:14:00Z
    alice = caller(Limits(tokens_per_minute=100))
    asyncio.run(reserve(budgets, alice, 100))
    with pytest.raises(GatewayError) as refused:
        budgets.check(alice)
    error = refused.value
    assert (error.status, error.type, error.code) == (429, "tokens", "rate_limit_exceeded")
    assert error.message.startswith(
        "Rate limit reached for caller key alice on tokens per min (TPM): Limit 100, Used 100, Requested 0. "
    )
    assert error.headers["retry-after"] == "1"
    assert error.headers["x-ratelimit-remaining-tokens"] == "0"


def test_a_call_whose_cost_alone_passes_a_cost_limit_is_told_so_in_money() -> None:
    """A reservation that costs more than the smaller cost limit can never fit: OpenAI's insufficient_quota, in
    the currency; one that costs exactly the limit but has too many tokens is told about its tokens."""
    budgets = Budgets(None, clock=lambda: MOMENTS[1])
    alice = caller(Limits(tokens_per_minute=1000, cost_per_day=5_000_000, cost_per_month=2_500_000))
    with pytest.raises(GatewayError) as refused:
        asyncio.run(reserve(budgets, alice, 10, micros=2_500_001))
    error = refused.value
    assert (error.status, error.type, error.code) == (429, "insufficient_quota", "insufficient_quota")
    assert error.message == (
        "Request too large for caller key alice: Limit 2.50, Requested 2.500001 at its model's price. The prompt, or "
        "its max_tokens (max_completion_tokens, max_output_tokens; the key's reserveOutputTokens when it sets none), "
        "must be reduced for it to fit."
    )
    assert error.headers["x-gateway-cost-limit"] == "2.50" and error.headers["x-ratelimit-limit-tokens"] == "1000"
    with pytest.raises(GatewayError) as tokens:
        asyncio.run(reserve(budgets, alice, 1001, micros=2_500_000))
    assert (tokens.value.type, tokens.value.code) == ("tokens", "rate_limit_exceeded")
    assert tokens.value.message.startswith("Request too large for caller key alice: Limit 1000 tokens, Requested 1001.")


_OPTIONAL = st.none() | st.integers(min_value=1, max_value=400)


@settings(max_examples=150, deadline=None)
@given(
    limits=st.builds(
        Limits,
        requests_per_minute=_OPTIONAL,
        tokens_per_minute=_OPTIONAL,
        tokens_per_day=_OPTIONAL,
        cost_per_day=_OPTIONAL,
        cost_per_month=_OPTIONAL,
    ),
    calls=st.lists(
        st.tuples(
            st.sampled_from([0.0, 0.5, 7.25, 59.0, 3600.0, 86_400.0]),  # how long after the last call it comes
            st.integers(min_value=0, max_value=100),  # tokens reserved
            st.integers(min_value=0, max_value=100),  # micros reserved
            st.integers(min_value=0, max_value=100),  # tokens spent
        ),
        min_size=1,
        max_size=12,
    ),
)
@example(  # a tie: in the next minute 50 tokens are left of the minute's 60 and of the day's 100
    limits=Limits(tokens_per_minute=60, tokens_per_day=100),
    calls=[(0.0, 40, 0, 40), (60.0, 10, 0, 10)],
)
def test_the_headers_name_for_each_kind_the_limit_with_the_least_left(
    limits: Limits, calls: list[tuple[float, int, int, int]]
) -> None:
    """After each admitted call, from a count kept apart: each kind's headers are its limit with the least left
    (never below 0) once the call is counted in, the shorter window's on a tie, and when that window ends; with
    the clock moving across minutes and days, each window counts only its own calls."""
    now = MOMENTS[0]
    budgets = Budgets(None, clock=lambda: now)
    alice = caller(limits)
    used: dict[tuple[str, str], int] = {}  # (window row, what) -> used, as the oracle counts it
    for pause, tokens, micros, spent in calls:
        now += pause
        minute, minute_ends = minute_window(now)
        day, day_ends = day_window(now)
        month = time.strftime("%Y-%m", time.gmtime(now))
        month_ends = float(_month_end(now))
        try:
            reservation, headers = asyncio.run(reserve(budgets, alice, tokens, micros))
        except GatewayError:
            continue
        assert reservation is not None
        for row, what, amount in ((minute, "requests", 1), (minute, "tokens", tokens), (day, "tokens", tokens),
                                  (day, "cost", micros), (month, "cost", micros)):  # fmt: skip
            used[(row, what)] = used.get((row, what), 0) + amount
        windows = {
            "requests": [(limits.requests_per_minute, used[(minute, "requests")], minute_ends)],
            "tokens": [
                (limits.tokens_per_minute, used[(minute, "tokens")], minute_ends),
                (limits.tokens_per_day, used[(day, "tokens")], day_ends),
            ],
            "cost": [
                (limits.cost_per_day, used[(day, "cost")], day_ends),
                (limits.cost_per_month, used[(month, "cost")], month_ends),
            ],
        }
        expected: dict[str, str] = {}
        for kind, candidates in windows.items():
            limited = [(limit, max(limit - so_far, 0), ends) for limit, so_far, ends in candidates if limit is not None]
            if not limited:
                continue
            limit, left, ends = min(limited, key=lambda candidate: candidate[1])  # the first on a tie
            if kind == "cost":
                expected |= {"x-gateway-cost-limit": money(limit), "x-gateway-cost-remaining": money(left)}
                expected["x-gateway-cost-reset"] = _reset(ends - now)
            else:
                expected |= {f"x-ratelimit-limit-{kind}": str(limit), f"x-ratelimit-remaining-{kind}": str(left)}
                expected[f"x-ratelimit-reset-{kind}"] = _reset(ends - now)
        assert headers == expected
        budgets.settle(reservation, Counts(1, spent, micros))
        for row, what, amount in ((minute, "tokens", spent - tokens), (day, "tokens", spent - tokens)):
            used[(row, what)] = max(used[(row, what)] + amount, 0)


def _reset(seconds: float) -> str:
    """OpenAI's reset format: whole seconds rounded up, at least one, as `45s`, `6m0s`, `2h30m0s`."""
    whole = max(math.ceil(seconds), 1)
    if whole >= 3600:
        return f"{whole // 3600}h{whole % 3600 // 60}m{whole % 60}s"
    return f"{whole // 60}m{whole % 60}s" if whole >= 60 else f"{whole}s"


def _month_end(now: float) -> int:
    import calendar

    year, month = time.gmtime(now)[:2]
    return calendar.timegm((year + month // 12, month % 12 + 1, 1, 0, 0, 0))


@pytest.mark.parametrize("together", [True, False], ids=["answers-together", "answers-one-by-one"])
def test_a_write_decided_before_a_growth_never_lands_after_it(tables: AzuriteTable, together: bool) -> None:
    """A call that needs more of its lease while the sync is writing that lease (here handing back an idle
    lease's claim) is admitted on the claim it asked for, whatever order the store and the loop take the two writes
    in: a loop too busy to run between their answers (seen under load: a 429 on a month's limit of 10.00 with
    0.0036 used), or one answer at a time (the table left claiming less than the instance admitted, which the
    other instances would then take)."""
    address = TableAddress("usageorder", connection_string=tables.connection_string)
    moment = time.time()
    budgets = Budgets(UsageTable(address, None), clock=lambda: moment)
    alice = caller(Limits(cost_per_month=10_000_000))  # 10.00
    held = HeldThreads()

    async def scenario() -> dict[str, str]:
        nonlocal moment
        asyncio.get_running_loop().set_default_executor(held)
        first, _ = await budgets.reserve(alice, 10, micros=300)
        second, _ = await budgets.reserve(alice, 10, micros=300)
        assert first is not None and second is not None
        budgets.settle(first, Counts(1, 8, 200))
        moment += IDLE_SECONDS + 0.5  # idle: the sync hands the unused claim back
        await budgets.sync()
        budgets.settle(second, Counts(1, 8, 200))  # the use changed: the next sync writes it, handing back again
        held.hold()
        sync = asyncio.ensure_future(budgets.sync())
        await quiet()
        call = asyncio.ensure_future(reserve(budgets, alice, 10, micros=300))  # its lease holds nothing: it asks
        await quiet()
        await held.release(together=together)  # the newest write reaches the store first
        _, headers = await call
        await sync
        return headers

    headers = asyncio.run(scenario())
    assert headers["x-gateway-cost-remaining"] == money(10_000_000 - 200 - 200 - 300)
    month, _, _ = month_window(moment)
    (entity,) = TableClient.from_connection_string(tables.connection_string, "usageorder").query_entities(
        f"RowKey eq '{month}'"
    )
    (share,) = orjson.loads(entity["shares"]).values()
    claim_cost, used_cost = share[5], share[6]
    assert claim_cost >= 200 + 200 + 300 > used_cost  # what the instance admitted stays claimed in the table
    asyncio.run(budgets.aclose())


@pytest.mark.parametrize("growth", ["answered", "too-slow"])
def test_a_lease_handed_back_while_a_call_waits_for_another_is_asked_for_again(
    tables: AzuriteTable, growth: str
) -> None:
    """A call waiting for one lease (the day's, all of the limit claimed already) while the sync hands another back
    (the month's, idle) looks at every lease again when the wait ends, and asks for the month's again: whether the
    day's growth answered (nothing more to grant, but a call settled below its reservation meanwhile, so the call
    fits the day) or did not answer in time (admitted against what was left). Before, the call got a 429 on the
    month's limit with next to nothing used: the refusal test_budgets_shared met under load."""
    address = TableAddress("usagewait", connection_string=tables.connection_string)
    moment = time.time()
    budgets = Budgets(UsageTable(address, None), clock=lambda: moment)
    alice = caller(Limits(cost_per_day=1000, cost_per_month=10_000_000))  # 0.001 a day, 10.00 a month
    held = HeldThreads()

    async def scenario() -> dict[str, str]:
        nonlocal moment
        asyncio.get_running_loop().set_default_executor(held)
        first, _ = await budgets.reserve(alice, 10, micros=600)
        await budgets.reserve(alice, 10, micros=300)  # the day's lease grows to the whole limit
        assert first is not None
        moment += IDLE_SECONDS + 0.5  # idle: the sync hands back what the leases hold unused
        held.hold()
        call = asyncio.ensure_future(reserve(budgets, alice, 10, micros=300))  # 900 of 1000 used: it asks
        await quiet()
        sync = asyncio.ensure_future(budgets.sync())  # the day's lease is being written: the month's is handed back
        await quiet()
        budgets.settle(first, Counts(1, 8, 100))  # room in the day's claim after all
        if growth == "answered":
            await held.release(together=False)  # the sync's writes land first, then the day's growth
        else:
            await held.release(together=False, newest=2)  # the sync's writes; the day's growth still held
            await asyncio.sleep(LEASE_WAIT_SECONDS + 0.5)
            await held.release(together=False)
        _, headers = await call
        await sync
        await budgets.aclose()
        return headers

    headers = asyncio.run(scenario())
    assert headers["x-gateway-cost-remaining"] == money(1000 - 100 - 300 - 300)  # the day's, the smaller
