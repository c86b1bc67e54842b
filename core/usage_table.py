"""The usage every instance shares: one Azure Table storage entity per caller key and window.

An entity holds each instance's share of its window (core/leases.py): its claim, the part of the key's limits
it may spend, and what it has spent, with when it last wrote; and what instances that stopped writing spent.
Every write is an ETag-conditional read-modify-write, so two instances never lose each other's counts and the
claims never add up to more than a limit: the loser of a race rereads and decides again.

The table heals: it is created when missing (again, when it is deleted while the gateway runs), and a 403 on
creating it reads as "it exists" (the Bicep creates the table and grants a role scoped to it, which may not
create tables). Failures come out as StoreError, which says whether the store was unreachable, refused the
identity, or stayed too busy with other writers. azure-data-tables is imported only when a table is configured
(cold start), and its calls run in a worker thread (the SDK's sync client uses the app's sync credential).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

import orjson

if TYPE_CHECKING:
    from azure.data.tables import TableClient

DEFAULT_TABLE_NAME = "gatewayusage"
# Conflicting writers retry this many times before the write waits for the next sync.
_WRITE_ATTEMPTS = 12
# The pause after the n-th conflicting write: random, up to _BACKOFF_SECONDS x 2^n, at most _BACKOFF_CAP_SECONDS.
_BACKOFF_SECONDS = 0.005
_BACKOFF_CAP_SECONDS = 0.16
# A store that does not answer fails the write quickly: counting goes on locally meanwhile.
_TIMEOUT_SECONDS = 5
# Windows that ended longer ago than this are deleted: nothing reads a window after its day
# (budgets read the current minute and day, `core usage` the same).
KEEP_SECONDS = 2 * 86400
# Row keys: a window's start, UTC, in a form that sorts by time within its kind (the first letter).
MINUTE_ROW = "m%Y%m%dT%H%M"
DAY_ROW = "d%Y%m%d"
MONTH_ROW = "M%Y%m"  # cost limits per calendar month
# Month windows are kept this long after they end: `core usage` shows this month's and the last.
KEEP_MONTH_SECONDS = 62 * 86400
# Counts are Int64 in the table; no window of one key comes near this.
MAX_COUNT = 2**53
# Entries kept per window: a property holds 64 KiB, about 700 entries; a day window collects one per instance.
MAX_SHARES = 200


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


class Counts(NamedTuple):
    """What a window counts. A named tuple, not a frozen dataclass: as immutable, and made in a fraction of the
    instructions (a frozen dataclass sets each field through object.__setattr__), which a limited key's calls
    pay a dozen times each."""

    requests: int = 0
    tokens: int = 0
    cost: int = 0  # money, in micro-units of the prices' currency (core/models/prices.py)

    def __add__(self, other: Counts) -> Counts:  # type: ignore[override]  # fields add up; a tuple's + joins
        return Counts(self.requests + other.requests, self.tokens + other.tokens, self.cost + other.cost)

    def __sub__(self, other: Counts) -> Counts:
        return Counts(self.requests - other.requests, self.tokens - other.tokens, self.cost - other.cost)


@dataclass(frozen=True, slots=True)
class Share:
    """One instance's part of a window: what it may spend, what it spent, when it last wrote (epoch seconds)."""

    claim: Counts
    used: Counts
    renewed_at: float
    # Of `used.cost`, what each model's settled calls cost (public model ids): for `core usage`.
    models: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WindowUsage:
    """A window as stored: the live instances' shares, and what instances that stopped writing spent."""

    shares: dict[str, Share] = field(default_factory=dict)
    retired: Counts = Counts()  # noqa: RUF009 (a named tuple: immutable, so one default serves every instance)

    @property
    def used(self) -> Counts:
        return sum((share.used for share in self.shares.values()), self.retired)

    def by_model(self) -> dict[str, int]:
        """What each model's calls cost in the window, as the live shares tell it (folded into `retired`, a share
        no longer tells its models)."""
        total: dict[str, int] = {}
        for share in self.shares.values():
            for model, cost in share.models.items():
                total[model] = total.get(model, 0) + cost
        return total

    def without(self, instance: str) -> WindowUsage:
        return WindowUsage({name: s for name, s in self.shares.items() if name != instance}, self.retired)

    def claimed(self) -> Counts:
        """What the live shares may spend at most: the larger of each one's claim and its use."""
        total = Counts()
        for share in self.shares.values():
            claim, used = share.claim, share.used
            total += Counts(
                max(claim.requests, used.requests), max(claim.tokens, used.tokens), max(claim.cost, used.cost)
            )
        return total

    def expired(self, now: float, ttl: float) -> WindowUsage:
        """The shares not renewed within `ttl` hold no more than they used: the rest of their claims is free
        again. Their use stays in their own entry, which their instance overwrites if it comes back; beyond
        MAX_SHARES entries (a day of restarts), the longest silent are folded into `retired` for good."""
        shares = {
            name: share if share.renewed_at > now - ttl or share.claim == share.used else
            Share(share.used, share.used, share.renewed_at, share.models)
            for name, share in self.shares.items()
        }  # fmt: skip
        retired = self.retired
        if len(shares) > MAX_SHARES:
            oldest = sorted(shares, key=lambda name: shares[name].renewed_at)[: len(shares) - MAX_SHARES]
            for name in (name for name in oldest if shares[name].renewed_at <= now - ttl):
                retired += shares.pop(name).used
        return WindowUsage(shares, retired)


StoreProblem = Literal["unreachable", "denied", "busy", "failed"]


class StoreError(Exception):
    """The usage table could not be read or written: `problem` says why, in a word the log can use."""

    def __init__(self, problem: StoreProblem, detail: str) -> None:
        super().__init__(detail)
        self.problem = problem


class UsageTable:
    def __init__(self, settings: TableAddress, credential: Any) -> None:
        self.settings = settings
        self._credential = credential
        self._client: TableClient | None = None

    async def update(
        self, caller: str, window: str, instance: str, decide: Callable[[WindowUsage], Share], ttl: float
    ) -> WindowUsage:
        """Write `instance`'s share of the (caller, window) entity as `decide` makes it from the other
        instances' shares as stored, those not renewed within `ttl` expired (`decide` may run more than
        once, on a worker thread: it must only read what it is given). The window as written."""
        return await asyncio.to_thread(self._guarded, self._update, caller, window, instance, decide, ttl)

    async def read(self, caller: str, windows: list[str]) -> dict[str, Counts]:
        """What each window's instances have spent so far."""
        return {window: usage.used for window, usage in (await self.read_usage(caller, windows)).items()}

    async def read_usage(self, caller: str, windows: list[str]) -> dict[str, WindowUsage]:
        """Each window as stored (an empty one when there is none)."""
        return await asyncio.to_thread(self._guarded, self._read, caller, windows)

    def _guarded(self, operation: Callable[..., Any], *args: Any) -> Any:
        """`operation`, once more after re-creating the table when it was deleted; failures as StoreError."""
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ResourceNotFoundError,
            ServiceRequestError,
            ServiceResponseError,
        )

        try:
            for attempt in range(2):
                try:
                    return operation(*args)
                except ResourceNotFoundError as missing:
                    if attempt or getattr(missing, "error_code", None) != "TableNotFound":
                        raise
                    self._client = None  # the table was deleted under us: create it again and retry
        except StoreError:
            raise
        except (ServiceRequestError, ServiceResponseError, TimeoutError, OSError) as error:
            raise StoreError("unreachable", _first_line(error)) from None
        except ClientAuthenticationError as error:
            raise StoreError("denied", _first_line(error)) from None
        except HttpResponseError as error:
            problem: StoreProblem = "denied" if error.status_code in (401, 403) else "failed"
            raise StoreError(problem, f"{error.status_code}: {_first_line(error)}") from None
        raise AssertionError("unreachable: the loop returns or raises")

    def _table(self) -> TableClient:
        if self._client is None:
            from azure.core.exceptions import HttpResponseError, ResourceExistsError
            from azure.data.tables import TableClient

            options: dict[str, Any] = {"retry_total": 0, "connection_timeout": _TIMEOUT_SECONDS,
                                       "read_timeout": _TIMEOUT_SECONDS}  # fmt: skip
            name = self.settings.table_name
            if self.settings.connection_string is not None:
                client = TableClient.from_connection_string(self.settings.connection_string, name, **options)
            else:
                assert self.settings.endpoint is not None
                client = TableClient(self.settings.endpoint, name, credential=self._credential, **options)
            try:
                client.create_table()
            except ResourceExistsError:
                pass
            except HttpResponseError as error:
                # A role scoped to the table (what the Bicep grants) may not create tables: the table is there.
                if error.status_code != 403:
                    raise
            self._client = client
        return self._client

    def _update(
        self, caller: str, window: str, instance: str, decide: Callable[[WindowUsage], Share], ttl: float
    ) -> WindowUsage:
        from azure.core import MatchConditions
        from azure.core.exceptions import (
            HttpResponseError,
            ResourceExistsError,
            ResourceModifiedError,
            ResourceNotFoundError,
        )
        from azure.data.tables import UpdateMode

        table = self._table()
        keys = {"PartitionKey": partition_key(caller), "RowKey": window}
        for attempt in range(_WRITE_ATTEMPTS):
            try:
                entity = table.get_entity(partition_key=keys["PartitionKey"], row_key=window)
            except ResourceNotFoundError as missing:
                if getattr(missing, "error_code", None) == "TableNotFound":
                    raise
                stored = WindowUsage()
                written = _with_share(stored, instance, decide(stored))
                try:
                    table.create_entity({**keys, **_properties(caller, written)})
                except ResourceExistsError:
                    continue  # another instance created it first: write into theirs
                # A key's new window: the moment to drop its old ones (one or two per minute, steady state).
                # Housekeeping only: the write went through, whatever pruning meets.
                with contextlib.suppress(HttpResponseError):
                    self._prune(table, caller)
                return written
            stored = _window_usage(entity).expired(time.time(), ttl)
            written = _with_share(stored, instance, decide(stored.without(instance)))
            try:
                table.update_entity(
                    {**keys, **_properties(caller, written)}, mode=UpdateMode.REPLACE,
                    etag=entity.metadata["etag"], match_condition=MatchConditions.IfNotModified,
                )  # fmt: skip
            except ResourceModifiedError:
                # Another instance wrote since our read. Many instances busy with one key write its one entity
                # at once: a random pause, growing, spreads their next tries apart.
                time.sleep(random.uniform(0, min(_BACKOFF_CAP_SECONDS, _BACKOFF_SECONDS * 2**attempt)))
                continue
            return written
        raise StoreError("busy", f"the usage entity {window} kept changing under {_WRITE_ATTEMPTS} attempts")

    def _prune(self, table: TableClient, caller: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        key = partition_key(caller)
        now = time.time()
        for row_format, keep in ((MINUTE_ROW, KEEP_SECONDS), (DAY_ROW, KEEP_SECONDS), (MONTH_ROW, KEEP_MONTH_SECONDS)):
            kind, older = row_format[0], time.strftime(row_format, time.gmtime(now - keep))
            query = f"PartitionKey eq '{key}' and RowKey ge '{kind}' and RowKey lt '{older}'"
            for entity in table.query_entities(query, select=["RowKey"]):
                with contextlib.suppress(ResourceNotFoundError):  # another instance pruned it first
                    table.delete_entity(partition_key=key, row_key=entity["RowKey"])

    def _read(self, caller: str, windows: list[str]) -> dict[str, WindowUsage]:
        from azure.core.exceptions import ResourceNotFoundError

        table = self._table()
        found: dict[str, WindowUsage] = {}
        for window in windows:
            try:
                found[window] = _window_usage(table.get_entity(partition_key(caller), window))
            except ResourceNotFoundError as missing:
                if getattr(missing, "error_code", None) == "TableNotFound":
                    raise
                found[window] = WindowUsage()
        return found


def partition_key(caller: str) -> str:
    """Key names may hold characters Table storage refuses in keys (/ \\ # ?): hex-encoded."""
    return caller.encode().hex()


def _with_share(stored: WindowUsage, instance: str, share: Share) -> WindowUsage:
    return WindowUsage({**stored.without(instance).shares, instance: share}, stored.retired)


def _properties(caller: str, usage: WindowUsage) -> dict[str, Any]:
    from azure.data.tables import EdmType, EntityProperty

    used = usage.used
    # Cost after the renewal time, then the cost per model when there is any: an entry of five numbers (written
    # before cost limits) reads as costing nothing.
    shares = {
        name: [s.claim.requests, s.claim.tokens, s.used.requests, s.used.tokens, round(s.renewed_at, 3),
               s.claim.cost, s.used.cost, *([dict(s.models)] if s.models else [])]
        for name, s in usage.shares.items()
    }  # fmt: skip
    # Int64: a day's tokens can exceed Int32, Table storage's default for Python ints. `requests` and
    # `tokens` are every instance's total, for people and `core usage` reading the table.
    return {
        "caller": caller,
        "requests": EntityProperty(_clamped(used.requests), EdmType.INT64),
        "tokens": EntityProperty(_clamped(used.tokens), EdmType.INT64),
        "retiredRequests": EntityProperty(_clamped(usage.retired.requests), EdmType.INT64),
        "retiredTokens": EntityProperty(_clamped(usage.retired.tokens), EdmType.INT64),
        "cost": EntityProperty(_clamped(used.cost), EdmType.INT64),  # micro-units
        "retiredCost": EntityProperty(_clamped(usage.retired.cost), EdmType.INT64),
        "shares": orjson.dumps(shares).decode(),
    }


def _window_usage(entity: Mapping[str, Any]) -> WindowUsage:
    """An entity as written by _properties; one written before shares existed holds only totals: retired."""
    if "shares" not in entity:
        return WindowUsage(retired=Counts(_int(entity.get("requests")), _int(entity.get("tokens"))))
    shares: dict[str, Share] = {}
    try:
        raw = orjson.loads(str(entity["shares"]))
    except orjson.JSONDecodeError:
        raw = {}
    for name, values in raw.items() if isinstance(raw, dict) else ():
        if not isinstance(values, list) or len(values) not in (5, 7, 8):
            continue
        numbers, models = values[:7], values[7] if len(values) == 8 else {}
        if all(_is_number(v) for v in numbers) and isinstance(models, dict):
            claim_requests, claim_tokens, used_requests, used_tokens, renewed_at, *cost = numbers
            claim_cost, used_cost = cost or (0, 0)
            shares[str(name)] = Share(
                Counts(_clamped(claim_requests), _clamped(claim_tokens), _clamped(claim_cost)),
                Counts(_clamped(used_requests), _clamped(used_tokens), _clamped(used_cost)),
                float(renewed_at),
                {str(model): _clamped(spent) for model, spent in models.items() if _is_number(spent)},
            )
    retired = Counts(
        _int(entity.get("retiredRequests")), _int(entity.get("retiredTokens")), _int(entity.get("retiredCost"))
    )
    return WindowUsage(shares, retired)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _clamped(value: float) -> int:
    return min(max(int(value), 0), MAX_COUNT)


def _int(value: Any) -> int:
    """Int64 properties come back as EntityProperty (value, type)."""
    value = getattr(value, "value", value)
    return _clamped(value) if _is_number(value) else 0


def _first_line(error: BaseException) -> str:
    text = str(error)
    return text.splitlines()[0][:200] if text else type(error).__name__
