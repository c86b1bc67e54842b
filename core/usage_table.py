"""The usage counts every instance shares: one Azure Table storage entity per caller key and window.

An instance merges its own deltas with a read-modify-write that is ETag-conditional, so two
instances writing at once never lose each other's counts: the loser of a race rereads and
retries. azure-data-tables is imported only when a table is configured (cold start), and its
calls run in a worker thread (the SDK's sync client uses the app's sync credential).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from azure.data.tables import TableClient

DEFAULT_TABLE_NAME = "gatewayusage"
# Conflicting writers retry this many times before the delta waits for the next sync.
_MERGE_ATTEMPTS = 5
# A store that does not answer fails the sync quickly: counting goes on locally meanwhile.
_TIMEOUT_SECONDS = 5
# Windows that ended longer ago than this are deleted: nothing reads a window after its day
# (budgets read the current minute and day, `core usage` the same).
KEEP_SECONDS = 2 * 86400
# Row keys: a window's start, UTC, in a form that sorts by time within its kind (the first letter).
MINUTE_ROW = "m%Y%m%dT%H%M"
DAY_ROW = "d%Y%m%d"


@dataclass(frozen=True, slots=True)
class TableAddress:
    """Where the table is: an endpoint reached with the app's identity, or a connection string."""

    table_name: str
    endpoint: str | None = None
    connection_string: str | None = None  # local runs and Azurite; a secret: never logged

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> TableAddress | None:
        endpoint = environ.get("USAGE_TABLE_ENDPOINT", "").strip() or None
        connection_string = environ.get("USAGE_TABLE_CONNECTION_STRING", "").strip() or None
        if endpoint is None and connection_string is None:
            return None
        name = environ.get("USAGE_TABLE_NAME", "").strip() or DEFAULT_TABLE_NAME
        return cls(name, endpoint, connection_string)

    @property
    def label(self) -> str:
        return f"table {self.table_name} at {self.endpoint}" if self.endpoint else f"table {self.table_name}"


@dataclass(frozen=True, slots=True)
class Counts:
    requests: int = 0
    tokens: int = 0


class UsageTable:
    def __init__(self, settings: TableAddress, credential: Any) -> None:
        self.settings = settings
        self._credential = credential
        self._client: TableClient | None = None

    async def merge(self, caller: str, window: str, delta: Counts) -> Counts:
        """Add `delta` to the (caller, window) entity; the total every instance wrote."""
        return await asyncio.to_thread(self._merge, caller, window, delta)

    async def read(self, caller: str, windows: list[str]) -> dict[str, Counts]:
        return await asyncio.to_thread(self._read, caller, windows)

    def _table(self) -> TableClient:
        if self._client is None:
            from azure.core.exceptions import ResourceExistsError
            from azure.data.tables import TableClient

            options: dict[str, Any] = {"retry_total": 0, "connection_timeout": _TIMEOUT_SECONDS,
                                       "read_timeout": _TIMEOUT_SECONDS}  # fmt: skip
            name = self.settings.table_name
            if self.settings.connection_string is not None:
                client = TableClient.from_connection_string(self.settings.connection_string, name, **options)
            else:
                assert self.settings.endpoint is not None
                client = TableClient(self.settings.endpoint, name, credential=self._credential, **options)
            with contextlib.suppress(ResourceExistsError):
                client.create_table()
            self._client = client
        return self._client

    def _merge(self, caller: str, window: str, delta: Counts) -> Counts:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        table = self._table()
        keys = {"PartitionKey": partition_key(caller), "RowKey": window}
        for _ in range(_MERGE_ATTEMPTS):
            try:
                entity = table.get_entity(partition_key=keys["PartitionKey"], row_key=window)
            except ResourceNotFoundError:
                if delta == Counts():
                    return Counts()
                try:
                    table.create_entity({**keys, **_properties(caller, delta)})
                except ResourceExistsError:
                    continue  # another instance created it first: merge into theirs
                # A key's new window: the moment to drop its old ones (one or two per minute, steady state).
                self._prune(table, caller)
                return delta
            total = _counts(entity)
            if delta == Counts():
                return total
            total = Counts(total.requests + delta.requests, total.tokens + delta.tokens)
            try:
                table.update_entity(
                    {**keys, **_properties(caller, total)}, mode=UpdateMode.MERGE,
                    etag=entity.metadata["etag"], match_condition=MatchConditions.IfNotModified,
                )  # fmt: skip
            except ResourceModifiedError:
                continue  # another instance wrote since our read
            return total
        raise TimeoutError(f"the usage entity for {window} kept changing under {_MERGE_ATTEMPTS} attempts")

    def _prune(self, table: TableClient, caller: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        key = partition_key(caller)
        cutoff = time.gmtime(time.time() - KEEP_SECONDS)
        for row_format in (MINUTE_ROW, DAY_ROW):
            kind, older = row_format[0], time.strftime(row_format, cutoff)
            query = f"PartitionKey eq '{key}' and RowKey ge '{kind}' and RowKey lt '{older}'"
            for entity in table.query_entities(query, select=["RowKey"]):
                with contextlib.suppress(ResourceNotFoundError):  # another instance pruned it first
                    table.delete_entity(partition_key=key, row_key=entity["RowKey"])

    def _read(self, caller: str, windows: list[str]) -> dict[str, Counts]:
        from azure.core.exceptions import ResourceNotFoundError

        table = self._table()
        found: dict[str, Counts] = {}
        for window in windows:
            try:
                found[window] = _counts(table.get_entity(partition_key=partition_key(caller), row_key=window))
            except ResourceNotFoundError:
                found[window] = Counts()
        return found


def partition_key(caller: str) -> str:
    """Key names may hold characters Table storage refuses in keys (/ \\ # ?): hex-encoded."""
    return caller.encode().hex()


def _properties(caller: str, counts: Counts) -> dict[str, Any]:
    from azure.data.tables import EdmType, EntityProperty

    # Int64: a day's tokens can exceed Int32, Table storage's default for Python ints.
    return {
        "caller": caller,
        "requests": EntityProperty(counts.requests, EdmType.INT64),
        "tokens": EntityProperty(counts.tokens, EdmType.INT64),
    }


def _counts(entity: Mapping[str, Any]) -> Counts:
    return Counts(_int(entity.get("requests")), _int(entity.get("tokens")))


def _int(value: Any) -> int:
    """Int64 properties come back as EntityProperty (value, type)."""
    value = getattr(value, "value", value)
    return int(value or 0)
