"""The shared usage table on Azurite's table service: windows long over are deleted, so the table
holds about two days per key instead of growing by one entity per key and minute for ever; every instance's
counts, tokens too, are read back as written; the endpoint with the app's identity (what Azure uses) reaches it;
a store that never answers fails within the read timeout."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest
from azure.data.tables import EdmType, EntityProperty, TableClient, UpdateMode

from core.budgets import day_window, minute_window, month_window
from core.usage_table import (
    _BACKOFF_CAP_SECONDS,
    _BACKOFF_SECONDS,
    _TIMEOUT_SECONDS,
    _WRITE_ATTEMPTS,
    MAX_SHARES,
    Counts,
    Share,
    StoreError,
    TableAddress,
    UsageTable,
    WindowUsage,
    _window_usage,
    partition_key,
)
from tests.support.azurite import STORAGE_SCOPE, AzuriteTable, FakeStorageCredential
from tests.support.silent_store import SilentStore

TABLE = "usageprune"
DAY = 86400


@pytest.fixture
def tables():
    with AzuriteTable() as service:
        yield service


def test_a_new_window_deletes_the_keys_windows_that_ended_two_days_ago(tables) -> None:
    client = TableClient.from_connection_string(tables.connection_string, TABLE)
    client.create_table()
    now = time.time()
    old = [
        minute_window(now - 3 * DAY)[0],
        minute_window(now - 2 * DAY - 120)[0],
        day_window(now - 3 * DAY)[0],
        month_window(now - 70 * DAY)[0],
    ]
    # A month window stays while `core usage` may show it: this month's and the last.
    recent = [minute_window(now - 600)[0], day_window(now - DAY)[0], month_window(now - 35 * DAY)[0]]
    for row in old + recent:
        client.create_entity({"PartitionKey": partition_key("alice"), "RowKey": row, "requests": 1})
    client.create_entity({"PartitionKey": partition_key("bob"), "RowKey": old[0], "requests": 1})

    table = UsageTable(TableAddress(TABLE, connection_string=tables.connection_string), credential=None)
    current = minute_window(now)[0]
    share = Share(Counts(), Counts(1, 5), now)
    written = asyncio.run(table.update("alice", current, "instance", lambda others: share, ttl=15))
    assert written.used == Counts(1, 5)

    left = {e["RowKey"] for e in client.query_entities(f"PartitionKey eq '{partition_key('alice')}'")}
    assert left == {*recent, current}
    # Another key's windows are its own business: pruned when that key next opens a window.
    assert [e["RowKey"] for e in client.query_entities(f"PartitionKey eq '{partition_key('bob')}'")] == [old[0]]


def test_a_share_written_before_cost_limits_reads_as_costing_nothing_and_cost_is_kept(tables) -> None:
    client = TableClient.from_connection_string(tables.connection_string, TABLE)
    client.create_table()
    now = time.time()
    row = day_window(now)[0]
    # As an instance without cost limits wrote it: five numbers a share.
    shares = orjson.dumps({"old": [0, 100, 2, 40, now]}).decode()
    client.create_entity({"PartitionKey": partition_key("alice"), "RowKey": row, "shares": shares})
    table = UsageTable(TableAddress(TABLE, connection_string=tables.connection_string), credential=None)
    seen: list[Counts] = []

    def decide(others: WindowUsage) -> Share:
        seen.append(others.used)
        return Share(Counts(0, 0, 5000), Counts(1, 10, 1234), now)

    written = asyncio.run(table.update("alice", row, "new", decide, ttl=15))
    assert seen == [Counts(2, 40, 0)]
    assert written.used == Counts(3, 50, 1234)
    assert asyncio.run(table.read("alice", [row])) == {row: Counts(3, 50, 1234)}
    assert client.get_entity(partition_key("alice"), row)["cost"].value == 1234

    # Each instance's cost per model is kept with its share, and summed over the instances.
    def by_model(models: dict[str, int]) -> Callable[[WindowUsage], Share]:
        return lambda others: Share(Counts(), Counts(1, 10, sum(models.values())), now, models)

    asyncio.run(table.update("alice", row, "new", by_model({"gpt-4o": 1000, "embed": 234}), ttl=15))
    asyncio.run(table.update("alice", row, "third", by_model({"gpt-4o": 66}), ttl=15))
    [usage] = asyncio.run(table.read_usage("alice", [row])).values()
    assert usage.by_model() == {"gpt-4o": 1066, "embed": 234} and usage.used.cost == 1300


def test_every_instances_token_counts_are_read_back_so_no_sync_overwrites_the_others(tables) -> None:
    """Each instance writes its own share and reads the others': the tokens read back must be the tokens written,
    or each write would replace the shared total by its own use and token budgets would stop being shared."""
    table = UsageTable(TableAddress(TABLE, connection_string=tables.connection_string), credential=None)
    now = time.time()
    window = minute_window(now)[0]
    seen: list[WindowUsage] = []

    def first(others: WindowUsage) -> Share:
        return Share(Counts(10, 900), Counts(3, 700), now)

    def second(others: WindowUsage) -> Share:
        seen.append(others)
        return Share(Counts(5, 400), Counts(2, 250), now)

    asyncio.run(table.update("alice", window, "one", first, ttl=15))
    written = asyncio.run(table.update("alice", window, "two", second, ttl=15))
    assert seen[-1].used == Counts(3, 700)
    assert seen[-1].claimed() == Counts(10, 900)  # what the first may still spend is not the second's to take
    assert written.used == Counts(5, 950)
    assert asyncio.run(table.read("alice", [window])) == {window: Counts(5, 950)}
    rewritten = asyncio.run(table.update("alice", window, "one", first, ttl=15))
    assert rewritten.used == Counts(5, 950)  # the first's second write keeps the second's tokens
    raw = TableClient.from_connection_string(tables.connection_string, TABLE).get_entity(partition_key("alice"), window)
    # Every instance's total, as Int64 (a day's tokens exceed Int32), for people and `core usage` reading the table.
    assert {name: (raw[name].value, raw[name].edm_type) for name in ("requests", "tokens", "retiredRequests")} == {
        "requests": (5, EdmType.INT64),
        "tokens": (950, EdmType.INT64),
        "retiredRequests": (0, EdmType.INT64),
    }
    assert raw["caller"] == "alice" and raw["retiredTokens"].value == 0
    assert orjson.loads(raw["shares"]) == {
        "one": [10, 900, 3, 700, round(now, 3), 0, 0],  # then no cost claimed, none used
        "two": [5, 400, 2, 250, round(now, 3), 0, 0],
    }

    # What instances that stopped writing spent, and a window written before shares existed, count too.
    client = TableClient.from_connection_string(tables.connection_string, TABLE)
    entity = client.get_entity(partition_key("alice"), window)
    entity["retiredRequests"] = EntityProperty(4, EdmType.INT64)
    entity["retiredTokens"] = EntityProperty(3000, EdmType.INT64)
    client.update_entity(entity, mode=UpdateMode.REPLACE)
    older = minute_window(now - 60)[0]
    totals = {"requests": EntityProperty(7, EdmType.INT64), "tokens": EntityProperty(5000, EdmType.INT64)}
    client.create_entity({"PartitionKey": partition_key("alice"), "RowKey": older, "caller": "alice", **totals})
    assert asyncio.run(table.read("alice", [window, older])) == {window: Counts(9, 3950), older: Counts(7, 5000)}
    again = asyncio.run(table.update("alice", window, "two", second, ttl=15))
    assert again.retired == Counts(4, 3000) and again.used == Counts(9, 3950)  # a write keeps what retired spent


def test_the_endpoint_and_the_apps_identity_reach_the_table(monkeypatch) -> None:
    """What Azure uses: the table's endpoint and a token from the app's identity (Azurite's basic OAuth, over
    HTTPS). The identity is asked for storage's scope; the table is created, written and read."""
    credential = FakeStorageCredential()
    with AzuriteTable(oauth=True) as service:
        assert service.cert_path is not None
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(service.cert_path))
        table = UsageTable(TableAddress(TABLE, endpoint=service.endpoint), credential=credential)
        now = time.time()
        window = minute_window(now)[0]
        written = asyncio.run(table.update("alice", window, "one", lambda _: Share(Counts(), Counts(1, 42), now), 15))
        assert written.used == Counts(1, 42)
        assert asyncio.run(table.read("alice", [window])) == {window: Counts(1, 42)}
        assert credential.scopes and set(credential.scopes) == {(STORAGE_SCOPE,)}
        shared_key = TableClient.from_connection_string(service.connection_string, TABLE)
        assert [(e["caller"], e["tokens"].value) for e in shared_key.list_entities()] == [("alice", 42)]

        # Without a token Azurite accepts (another audience), the store refuses the identity: "denied".
        refused = UsageTable(TableAddress(TABLE, endpoint=service.endpoint),
                             credential=FakeStorageCredential(audience="https://vault.azure.net"))  # fmt: skip
        with pytest.raises(StoreError) as denied:
            asyncio.run(refused.read("alice", [window]))
        assert denied.value.problem == "denied"


@pytest.mark.parametrize("address", ["connection string", "endpoint"])
def test_a_store_that_accepts_and_never_answers_fails_within_the_read_timeout(address: str) -> None:
    """A store whose port takes connections but never answers (a hung proxy, a stopped VM behind a load balancer):
    the read fails as "unreachable" within _TIMEOUT_SECONDS, so the sync goes on counting locally; it must not wait
    for the HTTP client's default of minutes. Over HTTPS (the endpoint) the TLS handshake is what never ends."""
    with SilentStore() as store:
        if address == "endpoint":
            table = UsageTable(TableAddress(TABLE, endpoint=store.endpoint), credential=FakeStorageCredential())
        else:
            table = UsageTable(TableAddress(TABLE, connection_string=store.connection_string), credential=None)
        outcome, elapsed = _read_in_a_thread(table)
        assert store.held, "the client never connected"
    assert outcome, f"the read still waits after {elapsed:.1f} s"
    error = outcome[0]
    assert isinstance(error, StoreError) and error.problem == "unreachable", error
    assert elapsed < _TIMEOUT_SECONDS + 3


def _read_in_a_thread(table: UsageTable) -> tuple[list[BaseException | dict[str, Counts]], float]:
    """A read, its outcome (none while it still waits after the timeout and a margin) and how long it took."""
    outcome: list[BaseException | dict[str, Counts]] = []

    def read() -> None:
        try:
            outcome.append(asyncio.run(table.read("alice", ["m"])))
        except BaseException as error:  # the outcome is checked below
            outcome.append(error)

    started = time.monotonic()
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(_TIMEOUT_SECONDS + 5)
    return outcome, time.monotonic() - started


def test_shares_not_renewed_within_the_ttl_keep_only_what_they_used() -> None:
    now, ttl = 1_000_000.0, 15.0
    usage = WindowUsage(
        {
            "live": Share(Counts(10, 900), Counts(2, 100), now - 1),
            "edge": Share(Counts(10, 900), Counts(3, 300), now - ttl),  # exactly ttl ago: expired
            "silent": Share(Counts(10, 900), Counts(4, 400), now - 60),
            "spent": Share(Counts(5, 50), Counts(5, 50), now - 60),  # holds nothing unused: unchanged
        },
        Counts(1, 10),
    )
    expired = usage.expired(now, ttl)
    assert expired == WindowUsage(
        {
            "live": Share(Counts(10, 900), Counts(2, 100), now - 1),
            "edge": Share(Counts(3, 300), Counts(3, 300), now - ttl),
            "silent": Share(Counts(4, 400), Counts(4, 400), now - 60),
            "spent": Share(Counts(5, 50), Counts(5, 50), now - 60),
        },
        Counts(1, 10),
    )
    assert expired.used == usage.used == Counts(15, 860)
    # What an instance reads as the others' use: every share but its own, and what the retired spent.
    assert usage.without("live").used == Counts(13, 760)
    assert Counts(5, 50) - Counts(2, 20) == Counts(3, 30)


def test_beyond_max_shares_the_longest_silent_are_folded_into_retired() -> None:
    now, ttl = 1_000_000.0, 15.0
    shares = {f"old{n}": Share(Counts(1, 10), Counts(1, 10), now - 100 - n) for n in range(5)}
    shares |= {f"live{n}": Share(Counts(1, 10), Counts(1, 10), now - 1 - n / 1000) for n in range(MAX_SHARES - 2)}
    expired = WindowUsage(shares, Counts(2, 20)).expired(now, ttl)
    # Three too many: the three silent longest go, their use kept in `retired`; the live ones all stay.
    assert set(shares) - set(expired.shares) == {"old4", "old3", "old2"}
    assert len(expired.shares) == MAX_SHARES
    assert expired.retired == Counts(2 + 3, 20 + 30)
    assert expired.used == WindowUsage(shares, Counts(2, 20)).used
    crowded = {f"live{n}": Share(Counts(1, 10), Counts(1, 10), now - n / 1000) for n in range(MAX_SHARES + 1)}
    edge = {"edge": Share(Counts(1, 10), Counts(1, 10), now - ttl)} | dict(list(shares.items())[5:])
    edge |= {"new1": Share(Counts(1, 10), Counts(1, 10), now), "new2": Share(Counts(1, 10), Counts(1, 10), now)}
    assert "edge" not in WindowUsage(edge).expired(now, ttl).shares  # silent exactly ttl long: folded too
    # Too many, but none silent: none is folded, however many they are.
    assert len(WindowUsage(crowded).expired(now, ttl).shares) == MAX_SHARES + 1
    assert len(WindowUsage(dict(list(crowded.items())[:MAX_SHARES])).expired(now, ttl).shares) == MAX_SHARES


def test_a_stored_window_is_read_whatever_another_writer_put_in_it() -> None:
    def stored(shares: str, **totals: Any) -> WindowUsage:
        return _window_usage({"shares": shares, **totals})

    good = [1, 10, 1, 5, 1000.0]
    assert stored(orjson.dumps({"a": good}).decode()).used == Counts(1, 5)
    assert stored("not json").shares == {} and stored("[1, 2]").shares == {}
    odd = {"short": [1, 10, 1, 5], "text": [1, 10, "1", 5, 1000.0], "flag": [1, 10, True, 5, 1000.0], "x": "1"}
    assert stored(orjson.dumps({**odd, "a": good}).decode()).shares.keys() == {"a"}
    retired = {"retiredRequests": EntityProperty(3, EdmType.INT64), "retiredTokens": 7}
    assert stored("{}", **retired).retired == Counts(3, 7)
    assert stored("{}", retiredRequests="3", retiredTokens=None).retired == Counts(0, 0)


def test_the_table_is_found_from_the_app_settings() -> None:
    assert TableAddress.from_environ({}) is None
    assert TableAddress.from_environ({"USAGE_TABLE_ENDPOINT": " ", "USAGE_TABLE_CONNECTION_STRING": ""}) is None
    endpoint = TableAddress.from_environ({"USAGE_TABLE_ENDPOINT": " https://acct.table.core.windows.net "})
    assert endpoint == TableAddress("gatewayusage", "https://acct.table.core.windows.net", None)
    assert endpoint.label == "table gatewayusage at https://acct.table.core.windows.net"
    local = TableAddress.from_environ({"USAGE_TABLE_CONNECTION_STRING": " UseDevelopmentStorage=true ",
                                       "USAGE_TABLE_NAME": " mine "})  # fmt: skip
    assert local == TableAddress("mine", None, "UseDevelopmentStorage=true")
    assert local.label == "table mine"  # the connection string is a secret: never in a label


def test_a_write_that_meets_another_instances_write_reads_again_and_keeps_both(tables) -> None:
    """Two instances write one window at once: the loser of the race (its ETag no longer matches) reads again and
    decides from what the winner wrote, so neither instance's share is lost; the same when both create the window."""
    table = UsageTable(TableAddress(TABLE, connection_string=tables.connection_string), credential=None)
    rival = UsageTable(TableAddress(TABLE, connection_string=tables.connection_string), credential=None)
    now = time.time()

    def racing(window: str, rival_share: Share) -> tuple[Callable[[WindowUsage], Share], list[WindowUsage]]:
        """`decide` for "two" that lets "three" write the window between its read and its write, the first time."""
        seen: list[WindowUsage] = []

        def decide(others: WindowUsage) -> Share:
            seen.append(others)
            if len(seen) == 1:  # a worker thread: no event loop here, the rival's write runs to its end
                asyncio.run(rival.update("alice", window, "three", lambda _: rival_share, ttl=15))
            return Share(Counts(5, 400), Counts(2, 250), now)

        return decide, seen

    # The window exists: the rival's write changes its ETag between this instance's read and its write.
    window = minute_window(now)[0]
    asyncio.run(table.update("alice", window, "one", lambda _: Share(Counts(10, 900), Counts(3, 700), now), 15))
    decide, seen = racing(window, Share(Counts(1, 100), Counts(1, 30), now))
    written = asyncio.run(table.update("alice", window, "two", decide, ttl=15))
    assert [usage.used for usage in seen] == [Counts(3, 700), Counts(4, 730)]  # the second read has the rival's
    assert set(written.shares) == {"one", "two", "three"} and written.used == Counts(6, 980)
    assert asyncio.run(table.read("alice", [window])) == {window: Counts(6, 980)}

    # A new window: the rival creates it first; this instance writes into theirs.
    later = minute_window(now + 60)[0]
    decide, seen = racing(later, Share(Counts(1, 100), Counts(1, 30), now))
    written = asyncio.run(table.update("alice", later, "two", decide, ttl=15))
    assert [usage.used for usage in seen] == [Counts(), Counts(1, 30)]
    assert set(written.shares) == {"two", "three"}
    assert asyncio.run(table.read("alice", [later])) == {later: Counts(3, 280)}


def test_a_window_that_keeps_changing_under_every_attempt_is_busy_and_the_backoff_stays_short(tables) -> None:
    """Other writers win every race: after _WRITE_ATTEMPTS reads and writes the update gives up as "busy" (the sync
    counts locally meanwhile), and its pauses between attempts, capped, keep the whole of it short."""
    table = UsageTable(TableAddress(TABLE, connection_string=tables.connection_string), credential=None)
    client = TableClient.from_connection_string(tables.connection_string, TABLE)
    now = time.time()
    window = minute_window(now)[0]
    asyncio.run(table.update("alice", window, "one", lambda _: Share(Counts(10, 900), Counts(3, 700), now), 15))
    attempts: list[float] = []

    def decide(others: WindowUsage) -> Share:
        attempts.append(time.monotonic())
        entity = client.get_entity(partition_key("alice"), window)  # another writer, each time in between
        client.update_entity(entity, mode=UpdateMode.REPLACE)
        return Share(Counts(5, 400), Counts(2, 250), now)

    started = time.monotonic()
    with pytest.raises(StoreError) as busy:
        asyncio.run(table.update("alice", window, "two", decide, ttl=15))
    elapsed = time.monotonic() - started
    assert busy.value.problem == "busy"
    assert str(busy.value) == f"the usage entity {window} kept changing under {_WRITE_ATTEMPTS} attempts"
    assert len(attempts) == _WRITE_ATTEMPTS
    # The pauses: random, at most 5 ms doubling per attempt and never above 160 ms: 1.3 s for all of them at most.
    pauses = sum(min(2**n * _BACKOFF_SECONDS, _BACKOFF_CAP_SECONDS) for n in range(_WRITE_ATTEMPTS))
    assert pauses < 1.3 and elapsed < pauses + 3, elapsed
    assert set(_window_usage(client.get_entity(partition_key("alice"), window)).shares) == {"one"}


def test_a_table_deleted_under_a_read_or_a_write_is_created_again(tables) -> None:
    """Someone deletes the table while the gateway runs: the next read finds empty windows and the table is there
    again at once; the next write goes through into the new table."""
    table = UsageTable(TableAddress(TABLE, connection_string=tables.connection_string), credential=None)
    client = TableClient.from_connection_string(tables.connection_string, TABLE)
    now = time.time()
    window = minute_window(now)[0]
    asyncio.run(table.update("alice", window, "one", lambda _: Share(Counts(), Counts(1, 5), now), 15))
    client.delete_table()
    assert asyncio.run(table.read("alice", [window])) == {window: Counts()}
    assert list(client.list_entities()) == []  # the read created the table again: listing it does not fail
    client.delete_table()
    written = asyncio.run(table.update("alice", window, "one", lambda _: Share(Counts(), Counts(2, 9), now), 15))
    assert written.used == Counts(2, 9)
    assert asyncio.run(table.read("alice", [window])) == {window: Counts(2, 9)}
