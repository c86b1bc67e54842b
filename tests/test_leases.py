"""An instance's lease on a key's window: how much it asks the table for, and what it admits when the table cannot
answer in time."""

from __future__ import annotations

from core.leases import FLOOR_SHARE, SLICE_SECONDS, WindowLease
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
