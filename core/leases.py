"""One instance's lease on one caller key's window (a UTC minute, or day): the part of the key's limits it
may spend, taken from the usage table (core/usage_table.py) before it admits against it.

Each instance holds a claim on the window; the claims of all instances never add up to more than a limit, since
each is written with an ETag-conditional write that reads the others' first. An instance admits a call only
when what it has used, in-flight reservations included, plus the call's reservation fits its claim; when it does
not, the instance asks for more: what it needs and a slice sized to its recent rate (Doorman's and Envoy's
global rate limits lease the same way). An instance that goes idle hands back what it did not use; one that
stops writing altogether loses its unused claim after LEASE_TTL_SECONDS. Without a table, an instance's claim
is the whole limit.
"""

from __future__ import annotations

from collections.abc import Callable

from core.usage_table import Counts, Share, WindowUsage

# An instance renews the claim it holds unused at least this often; others may take it back after the TTL.
LEASE_TTL_SECONDS = 15.0
RENEW_SECONDS = 5.0
# An instance that admitted nothing for this long hands its unused claim back.
IDLE_SECONDS = 2.0
# A slice covers this many seconds of the instance's recent rate, so a busy instance asks about once a slice.
SLICE_SECONDS = 2.0
# A slice is at least this share of what no instance has claimed (split among the instances writing the window),
# so a key that turns busy at once gets room for more than the call that asked.
FLOOR_SHARE = 16


class WindowLease:
    """This instance's view of one key's window: its claim, its use, and the others' use as last read."""

    __slots__ = (
        "caller",
        "row",
        "starts_at",
        "ends_at",
        "limit",
        "claim",
        "used",
        "others",
        "in_flight",
        "reserved",
        "last_reserved",
        "written",
        "renewed_at",
        "writing",
        "first_reserved",
        "pending",
        "peers",
        "others_hold",
        "models",
    )

    def __init__(self, caller: str, row: str, starts_at: float, ends_at: float, limit: Counts, local: bool) -> None:
        self.caller = caller
        self.row = row
        self.starts_at = starts_at
        self.ends_at = ends_at
        # 0: the dimension is not limited in this window (a day window limits no requests, a month window only cost).
        self.limit = limit
        self.claim = limit if local else Counts()
        self.used = Counts()  # settled usage and in-flight reservations
        self.others = Counts()  # what the other instances had used when last read
        self.in_flight = 0
        self.reserved = Counts()  # everything this instance admitted in the window: its rate
        self.last_reserved = 0.0
        self.first_reserved = 0.0  # since when `reserved` counts: a key busy from mid-window has its own rate
        self.pending = Counts()  # what the calls waiting for this claim to grow need, together
        self.peers = 0  # the other instances writing this window, as last read
        self.others_hold = Counts()  # what they may spend, claims included, as last read
        self.written: Share | None = None  # this instance's share as last written
        self.renewed_at = 0.0
        # The write of this lease under way (an asyncio.Task): a growth, the sync's, the flush's. One at a time, so that
        # they land in the order they were decided: a write decided earlier never undoes a later one.
        self.writing: object = None
        self.models: dict[str, int] = {}  # of the cost used, each model's (settled calls)

    def fits(self, cost: Counts) -> bool:
        """Whether `cost` fits this instance's claim."""
        limit, claim, used = self.limit, self.claim, self.used
        return (
            _fits(limit.requests, claim.requests, used.requests, cost.requests)
            and _fits(limit.tokens, claim.tokens, used.tokens, cost.tokens)
            and _fits(limit.cost, claim.cost, used.cost, cost.cost)
        )

    def fits_kind(self, kind: str, cost: Counts) -> bool:
        """Whether `cost` fits the claim in one dimension: "requests", "tokens" or "cost"."""
        if kind == "requests":
            return _fits(self.limit.requests, self.claim.requests, self.used.requests, cost.requests)
        if kind == "cost":
            return _fits(self.limit.cost, self.claim.cost, self.used.cost, cost.cost)
        return _fits(self.limit.tokens, self.claim.tokens, self.used.tokens, cost.tokens)

    def exceeds_limit(self, cost: Counts) -> bool:
        """Whether `cost` alone is more than the window's limit: it can never be admitted."""
        limit = self.limit
        return (0 < limit.requests < cost.requests) or (0 < limit.tokens < cost.tokens) or (0 < limit.cost < cost.cost)

    def spent(self) -> bool:
        """Whether a limited dimension is used up, as far as this instance knows (its use and the others')."""
        limit, used, others = self.limit, self.used, self.others
        return (
            0 < limit.requests <= used.requests + others.requests
            or 0 < limit.tokens <= used.tokens + others.tokens
            or 0 < limit.cost <= used.cost + others.cost
        )

    @property
    def shared_used(self) -> Counts:
        """The key's use in the window as this instance knows it: its own, and the others' as last read."""
        return self.used + self.others

    def reserve(self, cost: Counts, now: float) -> None:
        if self.reserved == Counts():
            self.first_reserved = now
        self.used += cost
        self.reserved += cost
        self.in_flight += 1
        self.last_reserved = now

    def settle(self, reserved: Counts, spent: Counts, model: str | None = None) -> None:
        """A call admitted here ended: its reservation gives way to what it really cost (of `model`'s)."""
        if model is not None and spent.cost:
            self.models[model] = self.models.get(model, 0) + spent.cost
        self.used = Counts(max(self.used.requests - reserved.requests + spent.requests, 0),
                           max(self.used.tokens - reserved.tokens + spent.tokens, 0),
                           max(self.used.cost - reserved.cost + spent.cost, 0))  # fmt: skip
        self.in_flight -= 1

    def local_claim(self, *, shared: bool = False) -> None:
        """The store cannot be asked: admit against what the shared view had left (fail open). `shared`: the
        store answers but too slowly for this call (other instances are busy with the same window): only this
        instance's part of what was left, so that the instances, all in the same case, do not each spend it all."""
        if shared:  # what the others hold is theirs to spend, used or not
            left = self.limit - self.others_hold - self.used
            parts = self.peers + 1
            left = Counts(left.requests // parts, left.tokens // parts, left.cost // parts)
        else:
            left = self.limit - self.others - self.used
        used = self.used
        self.claim = Counts(used.requests + max(left.requests, 0), used.tokens + max(left.tokens, 0),
                            used.cost + max(left.cost, 0))  # fmt: skip

    # -- what to write

    def wanted(self, need: Counts, now: float) -> Callable[[WindowUsage], Share]:
        """How to decide this instance's share from the others' as stored: the claim grown to hold `need`
        on top of what is used, and a slice of the recent rate; never more than the others leave."""
        used, limit, models = self.used, self.limit, dict(self.models)
        elapsed = max(now - (self.first_reserved or now), 0.5)
        reserved = self.reserved
        rate_slice = Counts(int(reserved.requests / elapsed * SLICE_SECONDS),
                            int(reserved.tokens / elapsed * SLICE_SECONDS),
                            int(reserved.cost / elapsed * SLICE_SECONDS))  # fmt: skip

        def decide(others: WindowUsage) -> Share:
            held = others.claimed()
            parts = FLOOR_SHARE * (len(others.shares) + 1)
            floor = Counts(max(limit.requests - held.requests - used.requests, 0) // parts,
                           max(limit.tokens - held.tokens - used.tokens, 0) // parts,
                           max(limit.cost - held.cost - used.cost, 0) // parts)  # fmt: skip
            want = used + need + Counts(max(rate_slice.requests, floor.requests), max(rate_slice.tokens, floor.tokens),
                                        max(rate_slice.cost, floor.cost))  # fmt: skip
            claim = Counts(_granted(limit.requests, used.requests, want.requests, held.requests),
                           _granted(limit.tokens, used.tokens, want.tokens, held.tokens),
                           _granted(limit.cost, used.cost, want.cost, held.cost))  # fmt: skip
            return Share(claim, used, now, models)

        return decide

    def sync_wanted(self, now: float) -> Callable[[WindowUsage], Share] | None:
        """What the periodic sync writes, if anything: the use as it is now; the unused claim handed back
        when idle or over, renewed while held; None when nothing changed and nothing is held."""
        written = self.written
        idle = now - self.last_reserved > IDLE_SECONDS or now >= self.ends_at
        holds = _unused(self.claim, self.used)
        if written is None:
            if self.used == Counts() and self.in_flight == 0:
                return None  # nothing was admitted here (a call refused before it went upstream)
        elif written.used == self.used and (not holds or (not idle and now - self.renewed_at < RENEW_SECONDS)):
            return None
        if idle:
            used, models = self.used, dict(self.models)

            def release(others: WindowUsage) -> Share:
                return Share(Counts(), used, now, models)

            return release
        return self.wanted(Counts(), now)

    def written_as(self, share: Share, others: WindowUsage, now: float) -> None:
        """A write went through: the claim granted (less what was settled meanwhile is fine: it only grows
        the unused part), the others' use as read."""
        self.written = share
        self.claim = share.claim
        self.others = others.used
        self.peers = len(others.shares)
        self.others_hold = others.claimed()
        self.renewed_at = now

    @property
    def done(self) -> bool:
        """Ended, nothing in flight, and its last use written with nothing held: it may be forgotten."""
        written = self.written
        return self.in_flight == 0 and (written is None or (written.used == self.used and written.claim == Counts()))


def _fits(limit: int, claim: int, used: int, cost: int) -> bool:
    return limit == 0 or used + cost <= claim


def _granted(limit: int, used: int, want: int, held: int) -> int:
    """A dimension's claim: what is wanted, within what the others leave, never below what is used."""
    if limit == 0:
        return 0
    return max(used, min(want, limit - held))


def _unused(claim: Counts, used: Counts) -> bool:
    return claim.requests > used.requests or claim.tokens > used.tokens or claim.cost > used.cost
