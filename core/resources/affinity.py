"""Region affinity: which assistants group holds an object (assistant, thread, file...).

Objects live in the Azure resource that created them, and every Functions instance
must agree on where without shared memory. Ids are Azure's own (not rewritten),
so the answer is found, not stored: ids seen in answers are remembered per
process, and an unknown id is looked up with a GET on each group at once. The
group that has it serves the call; if none has it, the primary answers with its
own 404; if a group cannot be asked, the caller gets a 502 rather than a wrong 404.

So an unknown id costs one GET per group. That no group holds it is remembered for ABSENT_SECONDS: a client that
asks again (a retry, or made-up ids reused to make the gateway call Azure for it) costs one call, the primary's.
An id is created by Azure and never reused, so "nowhere" only turns wrong when another instance creates it in
that time (and Azure's ids are random: it does not happen), or a group briefly answered 404 for what it holds.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence

from core.config.model import ResourceBackend
from core.errors import GatewayError, truncated

StatusOf = Callable[[ResourceBackend, str], Awaitable[int]]  # (resource, path) -> the HTTP status of a GET
_ABSENT = frozenset({400, 404})  # Azure answers 400 for some malformed ids
ABSENT_SECONDS = 30.0


class ResourceLocator:
    def __init__(self, max_entries: int = 50_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._groups: OrderedDict[str, str] = OrderedDict()  # object id -> group, least recent first
        self._absent: OrderedDict[str, float] = OrderedDict()  # object id -> when "nowhere" expires, oldest first
        self._max_entries = max_entries
        self._clock = clock

    def remember(self, object_ids: Sequence[str], group: str) -> None:
        for object_id in object_ids:
            self._groups[object_id] = group
            self._groups.move_to_end(object_id)
            self._absent.pop(object_id, None)
        while len(self._groups) > self._max_entries:
            self._groups.popitem(last=False)

    def _known_absent(self, object_id: str) -> bool:
        expires = self._absent.get(object_id)
        if expires is None:
            return False
        if expires > self._clock():
            return True
        del self._absent[object_id]
        return False

    def _remember_absent(self, object_id: str) -> None:
        self._absent[object_id] = self._clock() + ABSENT_SECONDS
        self._absent.move_to_end(object_id)
        while len(self._absent) > self._max_entries:
            self._absent.popitem(last=False)

    async def locate(
        self, family: str, object_id: str, resources: Sequence[ResourceBackend], status_of: StatusOf
    ) -> ResourceBackend:
        if len(resources) == 1:
            return resources[0]
        by_group = {resource.group: resource for resource in resources}
        known = self._groups.get(object_id)
        if known in by_group:
            self._groups.move_to_end(object_id)
            return by_group[known]
        if self._known_absent(object_id):
            return resources[0]
        path = f"{family}/{object_id}"
        answers = await asyncio.gather(*(status_of(resource, path) for resource in resources), return_exceptions=True)
        unanswered = []
        for resource, answer in zip(resources, answers, strict=True):
            if answer == 200:
                self.remember([object_id], resource.group)
                return resource
            if not isinstance(answer, int) or answer not in _ABSENT:
                unanswered.append(resource.group)
        if unanswered:
            raise GatewayError(
                502,
                f"Could not tell which group holds `{truncated(object_id)}`: {', '.join(unanswered)} did not answer.",
                type="api_error",
                code="upstream_unreachable",
            )
        self._remember_absent(object_id)
        return resources[0]
