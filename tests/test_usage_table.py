"""The shared usage table on Azurite's table service: windows long over are deleted, so the table
holds about two days per key instead of growing by one entity per key and minute for ever."""

from __future__ import annotations

import asyncio
import time

import pytest
from azure.data.tables import TableClient

from core.budgets import day_window, minute_window
from core.usage_table import Counts, Share, TableAddress, UsageTable, partition_key
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
    old = [minute_window(now - 3 * DAY)[0], minute_window(now - 2 * DAY - 120)[0], day_window(now - 3 * DAY)[0]]
    recent = [minute_window(now - 600)[0], day_window(now - DAY)[0]]
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
