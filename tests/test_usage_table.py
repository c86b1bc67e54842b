"""The shared usage table on Azurite's table service: windows long over are deleted, so the table
holds about two days per key instead of growing by one entity per key and minute for ever."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import orjson
import pytest
from azure.data.tables import TableClient

from core.budgets import day_window, minute_window, month_window
from core.usage_table import Counts, Share, TableAddress, UsageTable, WindowUsage, partition_key
from tests.support.azurite import AzuriteTable

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
