"""Which members of a pool a request tries, in order (Caddy's selection policies, APIM's pools).

Only members whose health lets them be tried are listed; the failover loop takes them in turn. When
every member not cooling down has its breaker open, those are listed (Envoy's panic threshold):
a breaker benches a member only while another can serve.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from core.config.model import Pool, PoolMember
from core.upstream.health import Health


class Selector:
    """Orders a pool's available members per its strategy; keeps the round-robin turns."""

    def __init__(self, health: Health, rng: random.Random | None = None) -> None:
        self.health = health
        self._rng = rng or random.Random()
        self._turns: dict[str, int] = {}  # pool id -> the next round-robin start

    def order(self, pool_id: str, pool: Pool, now: float) -> list[PoolMember]:
        health = self.health
        available = [member for member in pool.members if health.available(member.model, now)]
        if not available:  # the panic rule: breakers alone never take the last members out
            available = [member for member in pool.members if health.usable(member.model, now)]
        if len(available) < 2:
            return available
        if pool.strategy == "priority":
            # The lowest priority number first; members that tie share by weight (APIM's model).
            shuffled = self._weighted_shuffle(available)
            return sorted(shuffled, key=lambda member: member.priority)
        if pool.strategy == "weighted":
            return self._weighted_shuffle(available)
        if pool.strategy == "round-robin":
            turn = self._turns.get(pool_id, 0)
            self._turns[pool_id] = turn + 1
            start = turn % len(available)
            return available[start:] + available[:start]
        return self._most_remaining(available)

    def _weighted_shuffle(self, members: Sequence[PoolMember]) -> list[PoolMember]:
        """A random order in which each member comes first in proportion to its weight
        (Efraimidis-Spirakis: sort by u ** (1 / weight))."""
        keyed = [(self._rng.random() ** (1.0 / member.weight), index) for index, member in enumerate(members)]
        keyed.sort(reverse=True)
        return [members[index] for _, index in keyed]

    def _most_remaining(self, members: Sequence[PoolMember]) -> list[PoolMember]:
        """The most x-ratelimit-remaining-tokens (then -requests) first; a member that has not
        answered yet counts as having plenty, so it gets tried and reports. A count it never sent, or
        that could not be read, is unknown and counts as none left, as a negative one does."""

        def remaining(member: PoolMember) -> tuple[float, float]:
            health = self.health.of(member.model)
            if not health.reported:
                return (float("inf"), float("inf"))
            tokens, requests = health.remaining_tokens, health.remaining_requests
            return (0 if tokens is None else tokens, 0 if requests is None else requests)

        return sorted(members, key=remaining, reverse=True)
