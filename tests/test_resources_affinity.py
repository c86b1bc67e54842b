"""Region affinity: ids are found by asking every group once, then remembered."""

import asyncio

import pytest

from core.config.model import ResourceBackend
from core.errors import GatewayError
from core.resources.affinity import ABSENT_SECONDS, ResourceLocator


def resource(group: str) -> ResourceBackend:
    return ResourceBackend(
        group, f"https://{group}.example/openai", "2025-04-01-preview", "2025-04-01-preview", "dated", "api-key", ()
    )


EAST, WEST = resource("east"), resource("west")


def probe_with(holdings: dict[str, int], calls: list[tuple[str, str]]):
    async def probe(target: ResourceBackend, path: str) -> int:
        calls.append((target.group, path))
        answer = holdings.get(target.group, 404)
        if answer == 0:
            raise GatewayError(502, "unreachable")
        return answer

    return probe


def test_probe_finds_the_holder_once_then_remembers() -> None:
    locator = ResourceLocator()
    calls: list[tuple[str, str]] = []
    probe = probe_with({"west": 200}, calls)
    assert asyncio.run(locator.locate("threads", "thread_1", [EAST, WEST], probe)) is WEST
    assert asyncio.run(locator.locate("threads", "thread_1", [EAST, WEST], probe)) is WEST
    assert calls == [("east", "threads/thread_1"), ("west", "threads/thread_1")]


def test_remembered_ids_need_no_probe_and_a_single_group_none_at_all() -> None:
    locator = ResourceLocator()
    calls: list[tuple[str, str]] = []
    locator.remember(["asst_9"], "west")
    assert asyncio.run(locator.locate("assistants", "asst_9", [EAST, WEST], probe_with({}, calls))) is WEST
    assert asyncio.run(locator.locate("assistants", "asst_x", [EAST], probe_with({}, calls))) is EAST
    assert calls == []


def test_absent_everywhere_goes_to_the_primary_for_its_own_404() -> None:
    locator = ResourceLocator()
    assert asyncio.run(locator.locate("files", "file-x", [EAST, WEST], probe_with({}, []))) is EAST


def test_an_unanswered_group_is_a_502_not_a_wrong_404() -> None:
    with pytest.raises(GatewayError) as raised:
        asyncio.run(ResourceLocator().locate("files", "file-x", [EAST, WEST], probe_with({"west": 0}, [])))
    error = raised.value
    assert (error.status, error.type, error.code) == (502, "api_error", "upstream_unreachable")
    assert error.message == "Could not tell which group holds `file-x`: west did not answer."


def test_the_cache_is_bounded_least_recent_first() -> None:
    locator = ResourceLocator(max_entries=2)
    calls: list[tuple[str, str]] = []
    locator.remember(["a", "b", "c"], "west")
    probe = probe_with({"west": 200}, calls)
    assert asyncio.run(locator.locate("files", "c", [EAST, WEST], probe)) is WEST
    assert asyncio.run(locator.locate("files", "b", [EAST, WEST], probe)) is WEST
    assert calls == []  # kept: as many as max_entries, not one fewer
    asyncio.run(locator.locate("files", "a", [EAST, WEST], probe))
    assert ("west", "files/a") in calls  # evicted, so asked again


def test_nowhere_is_remembered_for_a_while_and_forgotten_when_the_id_shows_up() -> None:
    now = [1000.0]
    locator = ResourceLocator(clock=lambda: now[0])
    calls: list[tuple[str, str]] = []
    probe = probe_with({}, calls)
    for _ in range(3):
        assert asyncio.run(locator.locate("threads", "thread_x", [EAST, WEST], probe)) is EAST
    assert len(calls) == 2  # looked for once
    now[0] += ABSENT_SECONDS
    assert asyncio.run(locator.locate("threads", "thread_x", [EAST, WEST], probe)) is EAST
    assert len(calls) == 4  # looked for again once "nowhere" is stale
    locator.remember(["thread_x"], "west")  # an answer shows where it is after all
    assert asyncio.run(locator.locate("threads", "thread_x", [EAST, WEST], probe)) is WEST
    assert len(calls) == 4


def test_an_unanswered_lookup_is_not_remembered_as_nowhere() -> None:
    locator = ResourceLocator()
    calls: list[tuple[str, str]] = []
    with pytest.raises(GatewayError):
        asyncio.run(locator.locate("files", "file-x", [EAST, WEST], probe_with({"west": 0}, calls)))
    assert asyncio.run(locator.locate("files", "file-x", [EAST, WEST], probe_with({"west": 200}, calls))) is WEST
