"""An instance's lease on a key's window: how much it asks the table for, and what it admits when the table cannot
answer in time."""

from __future__ import annotations

from core.leases import FLOOR_SHARE, IDLE_SECONDS, RENEW_SECONDS, SLICE_SECONDS, WindowLease
from core.usage_table import Counts, Share, WindowUsage

START = 1_000_000.0


LIMIT = Counts(600, 20_000)
NOTHING = Counts()


def lease(limit: Counts = LIMIT) -> WindowLease:
    return WindowLease("alice", "m-1", START, START + 60, limit, local=False)


def others(*claims: Counts, used: Counts = NOTHING) -> WindowUsage:
    return WindowUsage({f"peer{n}": Share(claim, used, START) for n, claim in enumerate(claims)})


def test_a_key_that_turns_busy_late_in_the_window_asks_for_its_own_rate() -> None:
    busy = lease()
    late = START + 50  # averaged over the window, 10 calls in its last second would be a rate of 0.2/s
    for n in range(10):
        busy.reserve(Counts(1, 10), late + n / 10)
    share = busy.wanted(Counts(1, 10), late + 1.0)(others())
    assert share.claim.requests >= 10 + 1 + 10 * SLICE_SECONDS  # used, the call, 2 s at 10 calls a second


def test_a_slice_is_at_least_a_share_of_what_nobody_claimed() -> None:
    first = lease()
    share = first.wanted(Counts(1, 75), START + 1)(others(Counts(100, 4000)))
    unclaimed = Counts(600 - 100, 20_000 - 4000)
    parts = FLOOR_SHARE * 2  # this instance and one other
    assert share.claim == Counts(1 + unclaimed.requests // parts, 75 + unclaimed.tokens // parts)


def test_the_calls_waiting_together_are_asked_for_together() -> None:
    waiting = lease(Counts(600, 0))
    waiting.pending = Counts(40, 0)  # forty calls arrived while the first growth was on its way
    share = waiting.wanted(waiting.pending, START + 1)(others(Counts(500, 0)))
    assert share.claim.requests == 40 + (600 - 500) // (FLOOR_SHARE * 2)
    crowded = waiting.wanted(waiting.pending, START + 1)(others(Counts(590, 0)))
    assert crowded.claim.requests == 10  # never more than the others leave


def test_a_slow_table_admits_only_this_instances_part_of_what_was_left() -> None:
    slow = lease()
    slow.written_as(
        Share(Counts(10, 500), Counts(), START), others(Counts(50, 0), Counts(50, 0), used=Counts(20, 0)), START
    )
    slow.reserve(Counts(10, 100), START + 1)
    slow.local_claim(shared=True)
    left = 600 - 100 - 10  # the limit, what the others hold (their claims), this instance's use
    assert slow.claim.requests == 10 + left // 3
    down = lease()
    down.written_as(Share(Counts(10, 500), Counts(), START), others(NOTHING, used=Counts(20, 0)), START)
    down.local_claim()  # the store does not answer at all: fail open on everything left
    assert down.claim.requests == 600 - 20


def test_a_cost_fits_only_within_the_claim_in_each_limited_dimension() -> None:
    held = lease(Counts(600, 0))  # a day window limits tokens only; here a minute limiting requests only
    held.written_as(Share(Counts(5, 0), NOTHING, START), others(), START)
    held.reserve(Counts(3, 900), START)
    assert held.fits(Counts(2, 10_000))  # 3 + 2 requests within the claim of 5; tokens are not limited
    assert not held.fits(Counts(3, 0))
    assert held.fits_kind("requests", Counts(2, 0)) and not held.fits_kind("requests", Counts(3, 0))
    tokens = lease(Counts(0, 1000))
    tokens.written_as(Share(Counts(0, 300), NOTHING, START), others(), START)
    tokens.reserve(Counts(1, 200), START)
    assert tokens.fits(Counts(50, 100)) and not tokens.fits(Counts(0, 101))
    assert tokens.fits_kind("tokens", Counts(0, 100)) and not tokens.fits_kind("tokens", Counts(0, 101))


def test_the_sync_writes_only_what_changed_hands_back_when_idle_and_renews_what_it_holds() -> None:
    fresh = lease()
    assert fresh.sync_wanted(START + 1) is None  # nothing admitted here: nothing to write
    quick = lease()
    quick.reserve(Counts(1, 100), START)
    quick.settle(Counts(1, 100), Counts(1, 30))  # a call that ended before the first sync: its use goes out
    written = quick.sync_wanted(START + 0.5)
    assert written is not None and written(others()).used == Counts(1, 30)
    busy = lease()
    busy.reserve(Counts(1, 100), START + 1)
    first = busy.sync_wanted(START + 1.5)
    assert first is not None  # in flight, never written: its use goes out
    busy.written_as(first(others()), others(), START + 1.5)
    assert busy.written is not None and busy.claim.requests > 1  # a claim with room, held unused
    assert busy.sync_wanted(START + 2) is None  # nothing changed, renewed just now, not idle
    share = first(others())
    busy.written_as(share, others(), START + 2 - RENEW_SECONDS)  # as if written RENEW_SECONDS ago
    renewal = busy.sync_wanted(START + 2)  # held unused this long, still busy: renewed
    assert renewal is not None and renewal(others()).claim.requests > 1

    # Idle (nothing admitted for longer than IDLE_SECONDS): the unused claim is handed back, the use kept.
    busy.written_as(share, others(), START + 2)  # renewed
    assert busy.sync_wanted(START + 1 + IDLE_SECONDS) is None  # not yet: exactly IDLE_SECONDS
    release = busy.sync_wanted(START + 1.01 + IDLE_SECONDS)
    assert release is not None and release(others()) == Share(NOTHING, Counts(1, 100), START + 1.01 + IDLE_SECONDS)
    busy.written_as(release(others()), others(), START + 4)
    assert busy.sync_wanted(START + 10) is None  # handed back, nothing held, nothing new

    # The use changed since the last write (a call settled): written, though nothing is held.
    busy.settle(Counts(1, 100), Counts(1, 40))
    again = busy.sync_wanted(START + 11)
    assert again is not None and again(others()).used == Counts(1, 40)

    # A window that is over hands back at once, however recently it admitted.
    ending = lease()
    ending.reserve(Counts(1, 10), START + 59.9)
    over = ending.sync_wanted(START + 60)
    assert over is not None and over(others()).claim == NOTHING


def test_a_claim_is_unused_when_either_dimension_has_room() -> None:
    tokens_left = lease()
    tokens_left.reserve(Counts(1, 100), START + 10)  # requests all used (1 of 1), tokens not
    tokens_left.written_as(Share(Counts(1, 500), Counts(1, 100), START), others(), START)
    assert tokens_left.sync_wanted(START + 11) is not None  # renewed: it holds tokens
    requests_left = lease()
    requests_left.reserve(Counts(1, 100), START + 10)  # tokens all used, requests not
    requests_left.written_as(Share(Counts(5, 100), Counts(1, 100), START), others(), START)
    assert requests_left.sync_wanted(START + 11) is not None
    spent = lease()
    spent.reserve(Counts(2, 100), START + 10)
    spent.written_as(Share(Counts(2, 100), Counts(2, 100), START), others(), START)
    assert spent.sync_wanted(START + 11) is None  # holds nothing unused: nothing to renew


def test_a_slice_is_the_recent_rate_over_slice_seconds() -> None:
    busy = lease()
    busy.reserve(Counts(10, 1000), START)
    held = others(Counts(500, 15_000))  # the floor, a share of what nobody claimed, is below the rate here
    share = busy.wanted(Counts(1, 10), START + 4)(held)
    # used, the call, and 2 s of the rate since the first reservation (10 calls, 1000 tokens in 4 s)
    assert share.claim == Counts(10 + 1 + 5, 1000 + 10 + 500)
    early = busy.wanted(Counts(1, 10), START + 1)(held)  # one second in: the rate of that second
    assert early.claim == Counts(10 + 1 + 20, 1000 + 10 + 2000)


def test_what_is_admitted_without_the_store_is_what_was_left_in_each_dimension() -> None:
    slow = lease()
    slow.written_as(Share(Counts(10, 500), NOTHING, START), others(Counts(50, 1000), Counts(50, 1000)), START)
    slow.reserve(Counts(10, 100), START + 1)
    slow.local_claim(shared=True)
    assert slow.claim == Counts(10 + (600 - 100 - 10) // 3, 100 + (20_000 - 2000 - 100) // 3)
    down = lease()
    down.written_as(Share(Counts(10, 500), NOTHING, START), others(NOTHING, used=Counts(20, 700)), START)
    down.reserve(Counts(5, 300), START + 1)
    down.local_claim()
    assert down.claim == Counts(600 - 20, 20_000 - 700)  # its own use, and all that was left
    over = lease(Counts(10, 1000))
    over.written_as(Share(Counts(5, 500), NOTHING, START), others(NOTHING, used=Counts(10, 1000)), START)
    over.reserve(Counts(2, 50), START + 1)
    over.local_claim()
    assert over.claim == Counts(2, 50)  # nothing was left: no more than it already used


def test_the_floor_is_a_share_of_what_neither_the_others_nor_this_instance_use() -> None:
    steady = lease()
    steady.reserve(Counts(50, 2000), START)
    share = steady.wanted(Counts(1, 75), START + 59)(others(Counts(100, 4000)))  # a slow rate: the floor wins
    parts = FLOOR_SHARE * 2
    floor = Counts((600 - 100 - 50) // parts, (20_000 - 4000 - 2000) // parts)
    assert share.claim == Counts(50 + 1 + floor.requests, 2000 + 75 + floor.tokens)


def test_a_limit_of_one_is_granted_and_an_unlimited_dimension_is_never_claimed() -> None:
    single = lease(Counts(1, 0))  # one request a minute, tokens not limited
    share = single.wanted(Counts(1, 500), START)(others())
    assert share.claim == Counts(1, 0)
